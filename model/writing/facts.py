"""The figures and offer claims a text states, so that a copy's can be checked against its brief's: every one a
candidate states must come from the brief (issue 38). An invented discount is a false advertisement (표시·광고의
공정화에 관한 법률 §3), and it is the first thing a marketer deletes.

What counts as a fact, each normalised so that two spellings of one figure are equal:

- a percentage: "20%", "20 %", "20퍼센트", "20프로"; "반값" and "반액" are 50 %;
- an amount in won: "29,000원", "2만 9천원", "2.9만원", "3만원대" (30,000);
- a bundle: "1+1", "2 + 1";
- a date: "11월 30일", "11/30" (a month and a day that exist);
- free delivery ("무료배송", "배송비 무료", "무배"), a gift ("사은품", "증정"), points ("적립");
- any other number written in digits, with the word after it: "16개월", "40리터", "딱 3일", "선착순 100명".

A copy's fact is given when the brief states it: the same percentage, amount, bundle, date or kind of benefit,
and for any other number, the same number anywhere in the brief ("2벌 구매 시" gives "2벌 사면"). A discount
computed from two amounts of the brief (a regular and a sale price) counts as given, rounded either way; so do
the days of a period the brief gives ("12월 1일~12월 3일" gives "딱 3일").

Numbers written in Korean words ("한 팩 더", "세 잔") are not read: they are rarely an offer's figure, and
reading them would flag "한 번" and "한 땀 한 땀".
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from model.writing.brief import Brief

_MAN_CHEON = re.compile(r"(?:(\d+(?:\.\d+)?)\s*만)?\s*(?:(\d+)\s*천)?\s*(\d+)?\s*원")
_WON = re.compile(r"(\d+(?:\.\d+)?\s*만\s*(?:\d+\s*천\s*)?(?:\d+\s*)?원|\d+\s*천\s*원|\d+\s*원)(대)?")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|퍼센트|프로|퍼(?![가-힣]))")
_HALF = re.compile(r"반값|반액")
_BUNDLE = re.compile(r"(\d+)\s*\+\s*(\d+)")
_DATE = re.compile(r"(\d{1,2})\s*월\s*(\d{1,2})\s*일|(?<![\d.])(\d{1,2})\s*/\s*(\d{1,2})(?![\d/])")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_KEYWORDS = {
    "free_shipping": re.compile(r"무료\s*배송|배송비\s*무료|무배(?![가-힣])"),
    "gift": re.compile(r"사은품|증정"),
    "points": re.compile(r"적립"),
}
_UNIT = re.compile(r"\s*([가-힣A-Za-z]{1,3})")
UNGROUNDED = "ungrounded"  # the code of its flag
UNGROUNDED_REASON = "브리프에 없는 수치·혜택이에요. 브리프에 적거나 문구에서 빼 주세요 (표시·광고법 §3 거짓·과장 광고)"
_LEAP_YEAR = 2024  # a date without a year exists when it exists in some year: 2월 29일 included


@dataclass(frozen=True)
class Fact:
    """One figure or claim: its kind (percent, won, bundle, date, number, free_shipping, gift, points), its value
    as compared, and the words it was written in (for the message that names it)."""

    kind: str
    value: str
    text: str


def facts(text: str) -> list[Fact]:
    """Every fact `text` states, in order of appearance."""
    text = unicodedata.normalize("NFKC", text or "")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 29,000 -> 29000
    found: list[tuple[int, Fact]] = []
    taken = [False] * len(text)

    def take(match: re.Match[str], fact: Fact) -> None:
        found.append((match.start(), fact))
        for i in range(match.start(), match.end()):
            taken[i] = True

    for m in _WON.finditer(text):
        take(m, Fact("won", str(_won_value(m.group(1))), m.group(0).strip()))
    for m in _PERCENT.finditer(text):
        if not taken[m.start()]:
            take(m, Fact("percent", _number(m.group(1)), m.group(0).strip()))
    for m in _HALF.finditer(text):
        take(m, Fact("percent", "50", m.group(0)))
    for m in _BUNDLE.finditer(text):
        if not taken[m.start()]:
            take(m, Fact("bundle", f"{int(m.group(1))}+{int(m.group(2))}", m.group(0)))
    for m in _DATE.finditer(text):
        month, day = (int(g) for g in (m.group(1) or m.group(3), m.group(2) or m.group(4)))
        if not taken[m.start()] and _exists(month, day):
            take(m, Fact("date", f"{month:02d}-{day:02d}", m.group(0)))
    for kind, pattern in _KEYWORDS.items():
        for m in pattern.finditer(text):
            take(m, Fact(kind, "", m.group(0)))
    for m in _NUMBER.finditer(text):
        if not any(taken[m.start() : m.end()]):
            unit = _UNIT.match(text, m.end())
            take(m, Fact("number", _number(m.group(0)), m.group(0) + (unit.group(1) if unit else "")))
    return [fact for _, fact in sorted(found, key=lambda pair: pair[0])]


def ungrounded(copy: str, brief_texts: Iterable[str]) -> list[Fact]:
    """The facts of `copy` that the brief (its fields' texts: product, event, notes, the offer) does not give."""
    given = facts(" \n ".join(t for t in brief_texts if t))
    keys = {(f.kind, f.value) for f in given} | _derived(given)
    numbers = {_number(n) for f in given for n in _NUMBER.findall(f.value.replace("-", " ").replace("+", " "))}
    out = []
    for fact in facts(copy):
        if (fact.kind, fact.value) in keys:
            continue
        if fact.kind == "number" and fact.value in numbers:
            continue
        out.append(fact)
    return out


def _derived(given: list[Fact]) -> set[tuple[str, str]]:
    """Facts the brief gives by arithmetic: the discount of any two of its amounts (either rounding), and the days
    of a period between two of its dates."""
    out: set[tuple[str, str]] = set()
    amounts = sorted({int(f.value) for f in given if f.kind == "won"})
    for i, low in enumerate(amounts):
        for high in amounts[i + 1 :]:
            off = 100 * (high - low) / high
            out |= {("percent", str(math.floor(off))), ("percent", str(math.ceil(off))), ("percent", str(round(off)))}
    dates = [f.value for f in given if f.kind == "date"]
    for first, last in itertools.pairwise(dates):
        start, end = (date(_LEAP_YEAR, *(int(p) for p in d.split("-"))) for d in (first, last))
        if end >= start:
            out.add(("number", str((end - start).days + 1)))
    return out


def _won_value(raw: str) -> int:
    m = _MAN_CHEON.fullmatch(raw.strip())
    if m is None:  # the pattern that found it has the same shape
        return 0
    man, cheon, rest = m.groups()
    if man is None and cheon is None:
        return int(rest or 0)
    return round(float(man or 0) * 10_000) + int(cheon or 0) * 1_000 + int(rest or 0)


def _number(raw: str) -> str:
    value = float(raw)
    return str(int(value)) if value == int(value) else str(value)


def _exists(month: int, day: int) -> bool:
    try:
        date(_LEAP_YEAR, month, day)
    except ValueError:
        return False
    return True


def brief_texts(brief: Brief) -> list[str]:
    """The texts of a brief that may give a copy its facts: every field a marketer fills in."""
    return [brief.product, brief.event, brief.age_group, brief.notes]


def flags_for(copy: str, brief: Brief) -> list[str]:
    """One flag per fact of `copy` that `brief` does not give, as "ungrounded: 'fact' — why", the shape of every
    flag a candidate carries."""
    return [f"{UNGROUNDED}: '{fact.text}' — {UNGROUNDED_REASON}" for fact in ungrounded(copy, brief_texts(brief))]
