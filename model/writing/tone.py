"""Tone by age: profiles loaded from data, and Kiwi-based detection of a copy's speech register."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from model.datafiles import load_json

REGISTERS = ("formal", "polite", "casual", "plain", "noun", "unknown")

# Kiwi tags that carry no register and may trail the real ending: punctuation, symbols, emoji, foreign text.
TRAILING_TAGS = ("SF", "SP", "SS", "SSO", "SSC", "SE", "SO", "SW", "SL", "SH", "SN", "SB", "W_EMOJI", "W_URL")

_kiwi_lock = threading.Lock()


@dataclass(frozen=True)
class ToneProfile:
    """How copy for one age group should sound."""

    age_group: str
    registers: tuple[str, ...]
    preferred: str
    emoji: bool
    hints: str

    def accepts(self, register: str) -> bool:
        """True when a copy in this register fits the profile (noun endings fit every age)."""
        return register in self.registers or register in _always_match()


def _profile_data() -> dict[str, Any]:
    return load_json("tone_profiles.json")


def _always_match() -> tuple[str, ...]:
    return tuple(_profile_data()["always_match"])


@lru_cache(maxsize=1)
def tone_profiles() -> dict[str, ToneProfile]:
    """All profiles keyed by age group, in the order of the data file."""
    raw = _profile_data()["profiles"]
    return {
        age: ToneProfile(
            age_group=age,
            registers=tuple(p["registers"]),
            preferred=p["preferred"],
            emoji=bool(p["emoji"]),
            hints=p["hints"],
        )
        for age, p in raw.items()
    }


def profile_for(age_group: str) -> ToneProfile:
    """The profile of a canonical age group such as '20대'."""
    return tone_profiles()[age_group]


def register_name(register: str) -> str:
    """The Korean name of a register, e.g. 'formal' -> '하십시오체'."""
    names: dict[str, str] = _profile_data()["register_names"]
    return names.get(register, register)


def _endings() -> dict[str, Any]:
    return load_json("endings.json")


@lru_cache(maxsize=1)
def _kiwi() -> Any:
    from kiwipiepy import Kiwi

    return Kiwi(num_workers=2)  # batches (corpus imports) are analysed on two threads


def _ending_register(form: str) -> str | None:
    table = _endings()
    for suffix, register in table["suffix_rules"]:
        if form.endswith(suffix):
            return str(register)
    if form in table["plain"]:
        return "plain"
    if form in table["casual"]:
        return "casual"
    return None


def _sentence_register(tokens: list[Any]) -> str | None:
    """Register of one sentence: its last ending decides, so inverted order ('떠나요 제주로') still reads polite."""
    closing_ec = set(_endings()["closing_ec"])
    content = [t for t in tokens if t.tag not in TRAILING_TAGS]
    found: str | None = None
    for i, tok in enumerate(content):
        is_last = i == len(content) - 1
        if tok.tag == "EF":
            found = _ending_register(tok.form) or found
        elif tok.tag == "JX" and tok.form.endswith("요") and is_last:
            found = "polite"  # '이거요', '바로요': the polite 요 particle closing a fragment
        elif tok.tag == "EC" and is_last and tok.form in closing_ec:
            found = "casual"  # Kiwi tags some closing 반말 endings ('해', '끝났니') as EC
    return found


def _has_hangul(text: str) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for ch in text)


def detect_register(text: str) -> str:
    """Classify a copy as formal, polite, casual, plain, noun or unknown from its sentence-final endings."""
    return detect_registers([text])[0]


def detect_registers(texts: list[str]) -> list[str]:
    """`detect_register` for many texts at once; Kiwi analyses the batch in parallel (imports, evaluation)."""
    return [
        _register_of(sentences) if _has_hangul(text) else "unknown"
        for text, sentences in zip(texts, analyse_sentences(texts), strict=True)
    ]


def analyse_sentences(texts: list[str]) -> list[list[list[Any]]]:
    """Each text's sentences as lists of Kiwi tokens (`.form`, `.tag`); [] for a text without Hangul, which is not
    analysed (nor is the analyser loaded, seconds the first time, when no text has any)."""
    korean = [i for i, t in enumerate(texts) if t and _has_hangul(t)]
    out: list[list[list[Any]]] = [[] for _ in texts]
    if not korean:
        return out
    with _kiwi_lock:  # Kiwi objects are not documented as thread-safe
        analysed = list(_kiwi().split_into_sents([texts[i] for i in korean], return_tokens=True))
    for i, sentences in zip(korean, analysed, strict=True):
        out[i] = [list(s.tokens or []) for s in sentences]
    return out


def _register_of(sentences: list[list[Any]]) -> str:
    found = [r for s in sentences if (r := _sentence_register(s)) is not None]
    if not found:
        return "noun"
    counts = Counter(found)
    top = max(counts.values())
    # ties go to the register that appears last, since the closing line carries the call to action
    return next(r for r in reversed(found) if counts[r] == top)


def warm_up() -> None:
    """Load Kiwi's model now (about a second and a half) so the first request does not pay for it."""
    detect_register("준비했습니다.")
