"""Only complete copies are shown: the rules that tell a text that is not a copy at all.

The writer writes a text that breaks any of these again and never shows it (model/writing/writer.py); the gate
counts what it could not show as unusable, and `python -m benchmarks.quality` reports each rule's share. Each rule
is narrow on purpose: none of them fires on any of the 936 human-written copies of the starter corpus
(tests/model/test_form.py checks that), since a rule that refuses good copy costs a retry and loses a candidate.

- **label_list**, a spec sheet or list of labels: at least two labels ("재질:", "<사양>") and either the text opens
  with one or two of them are empty. "상품명: 100% 폴리 에코백 재질: 면", "채점: 인기: 명예: 가격:",
  "<사양> 하드웨어 가죽 가격: 100000원". One label in running copy ("오늘의 특가: 린넨 셔츠") and an LMS that
  lists its offer after the copy ("여름 세일을 시작해요\\n▶ 기간: …\\n▶ 혜택: …") are copy.
- **loop**, a word or phrase repeated in a loop: a word of two or more characters that occurs three times or more
  and makes at least a fifth of the words (hashtags aside). "머리 어깨 머리 어깨 머리 어깨",
  "40리터짜기, 40리터짜기, 40리터짜기", "추석 연휴 한방샴푸, 한방샴푸 21% 할인 … 한방샴푸". Naming the product
  three times in a long LMS, "한 땀 한 땀" and "#크리스마스" after a copy that says 크리스마스 twice are copy.
- **cut_off**, cut mid-word or mid-ending (the length budget ran out): the last word of the last sentence ends in
  a case particle or a conjunction particle (이/가, 을/를, 의, 와/과), an adnominal ending (시원한), a verb or
  adjective stem with no ending (만나보, 드리), a prefix or a determiner (새, 모든), and the sentence has no
  final ending. "시원한 린넨 셔츠를", "올여름 가장 시원한", "지금 바로 만나보". Copy ends on nouns ("톤업 크림"),
  counters ("딱 3일"), adverbs ("지금 바로!"), 까지 ("오늘 자정까지") and adverbial endings ("더 시원하게"), so
  those stay.
- **no_ending**, no sentence or noun-phrase ending: not one Korean word, only symbols, numbers, Latin letters,
  emoji or hashtags. "#린넨 #여름세일", "100% !!!".
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from model.writing.tone import TRAILING_TAGS, analyse_sentences

FAULTS = {
    "label_list": "a spec sheet or a list of labels",
    "loop": "a word or phrase repeated in a loop",
    "cut_off": "cut off mid-word or mid-ending",
    "no_ending": "no sentence or noun-phrase ending",
}
# Kiwi tags that carry no word: punctuation, symbols, numbers, Latin and other scripts, emoji, hashtags, links.
_NO_WORD = frozenset((*TRAILING_TAGS, "W_EMAIL", "W_HASHTAG", "W_MENTION", "W_SERIAL"))
# What a word cut short ends in: case and conjunction particles, an adnominal ending, a bare stem, a prefix, a
# determiner (Kiwi's tags; the Sejong tag set).
_CUT_TAGS = frozenset(("JKS", "JKO", "JKG", "JC", "ETM", "VV", "VA", "VX", "VCP", "VCN", "XSV", "XSA", "XPN", "MM"))
_LABEL = re.compile(r"(?:^|(?<=\s))(?:[가-힣A-Za-z][가-힣A-Za-z ]{0,9}:(?!//)|<[가-힣A-Za-z ]{1,10}>)")
_WORD = re.compile(r"[\w%+]{2,}")
LOOP_REPEATS, LOOP_SHARE = 3, 0.2


def form_faults(text: str) -> list[str]:
    """The rules (FAULTS' keys) `text` breaks; [] for a complete copy."""
    return form_faults_many([text])[0]


def form_faults_many(texts: list[str]) -> list[list[str]]:
    """`form_faults` for many texts, analysed by Kiwi in one batch."""
    out: list[list[str]] = [[] for _ in texts]
    for faults, text in zip(out, texts, strict=True):
        if _is_label_list(text):
            faults.append("label_list")
        if _loops(text):
            faults.append("loop")
    for faults, sentences in zip(out, analyse_sentences(texts), strict=True):
        words = _last_words(sentences)
        if not words:
            faults.append("no_ending")
        elif words[-1].tag in _CUT_TAGS and not any(t.tag == "EF" for t in words):
            faults.append("cut_off")
    return out


def _is_label_list(text: str) -> bool:
    labels = list(_LABEL.finditer(text))
    if len(labels) < 2:
        return False
    opens = labels[0].start() == len(text) - len(text.lstrip())
    empty = sum(1 for m in labels if not text[m.end() :].lstrip() or _LABEL.match(text[m.end() :].lstrip()))
    return opens or empty >= 2


def _loops(text: str) -> bool:
    words = _WORD.findall(re.sub(r"#\S+", " ", text))
    if not words:
        return False
    _, top = Counter(words).most_common(1)[0]
    return top >= LOOP_REPEATS and top >= LOOP_SHARE * len(words)


def _last_words(sentences: list[list[Any]]) -> list[Any]:
    """The tokens that carry words in the last sentence that has any (a closing line of hashtags has none)."""
    for tokens in reversed(sentences):
        words = [t for t in tokens if t.tag not in _NO_WORD]
        if words:
            return words
    return []
