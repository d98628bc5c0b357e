"""Raters for `copybot simulate`: stand-ins for a team's taste that the model is never told.

A rater is `rate(brief: dict, candidates: list[str]) -> list[str | None]` and returns one Slack reaction name per
candidate: '+1', '-1', 'trophy' or None (no reaction). The brief dict has product, event, age_group and channel.

A rater may carry:
- `brief_filter`, a dict from brief field to the allowed values, which limits the briefs the simulation samples
  to the ones the rater has an opinion on (for example, young audiences only);
- `start_round(number)`, which the simulation calls before each round's requests and before each measurement
  (number 0 is the measurement before any feedback), so a taste can change over time;
- `start_simulation(seed)`, called once with the simulation's seed, for a rater with a random stream of its own,
  and then `getstate()` / `setstate(state)` (JSON values) so that a resumed simulation goes on with the stream
  where it was.

`SUITE` is the set of tastes `python -m benchmarks.learning` judges the loop on: different kinds of taste, so
that a change to the recipe that helps one and hurts another shows.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from typing import Any

from bot.learning.simulation_checkpoint import restore_stream, stream_state
from model.writing.postprocess import EMOJI
from model.writing.tone import detect_register

Rater = Callable[[dict[str, Any], list[str]], list[str | None]]

YOUNG = ("10대", "20대")
# A concrete figure: a 1-99% discount (100% is an absolute claim, not a discount), a price or saving in won,
# "1+1", or an instalment offer.
DISCOUNT_FIGURE = re.compile(
    r"(?<!\d)[1-9]\d?\s*(?:%|퍼센트|프로)|\d[\d,]*\s*(?:만\s*)?(?:천\s*)?원|\d\s*\+\s*\d|\d+\s*개월\s*무이자|반값"
)
SEASON_WORDS = re.compile(r"봄|여름|가을|겨울|시원|따뜻|포근|햇살|선선|무더위|장마")
FAMILY_WORDS = re.compile(r"가족|부모님|아이|엄마|아빠|아들|딸|자녀|효도")
PREMIUM_WORDS = re.compile(r"품질|정성|장인|프리미엄|명품|고급|엄선|품격|정품|전통")
SHORT_CHARS = 20  # a punchy line: at most this many characters
LONG_CHARS = 45  # a copy that tells a story: at least this many characters


def react(liked: list[bool]) -> list[str | None]:
    """The first liked copy wins (🏆), other liked copies get 👍, the rest 👎 — how a tidy team reacts."""
    out: list[str | None] = []
    for ok in liked:
        out.append(("+1" if "trophy" in out else "trophy") if ok else "-1")
    return out


def _coin(*parts: object) -> float:
    """A repeatable uniform draw in [0, 1) from the parts (Python's own hash() is salted per process)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def emoji_for_young(brief: dict[str, Any], candidates: list[str]) -> list[str | None]:
    """Surface token: likes copies with emoji for 10s and 20s audiences; no opinion on other audiences."""
    if brief.get("age_group") not in YOUNG:
        return [None] * len(candidates)
    return react([bool(EMOJI.search(text)) for text in candidates])


emoji_for_young.brief_filter = {"age_group": YOUNG, "channel": ("sns", "push", "banner")}  # type: ignore[attr-defined]


def concrete_discount(brief: dict[str, Any], candidates: list[str]) -> list[str | None]:
    """Numbers: likes copies that name a concrete figure (30%, 5,000원, 1+1, 3개월 무이자) over vague promises."""
    return react([bool(DISCOUNT_FIGURE.search(text)) for text in candidates])


def short_copy(brief: dict[str, Any], candidates: list[str]) -> list[str | None]:
    """Length: likes punchy copies of at most 20 characters."""
    return react([len(text) <= SHORT_CHARS for text in candidates])


def long_copy(brief: dict[str, Any], candidates: list[str]) -> list[str | None]:
    """Length, the other way: likes copies of at least 45 characters."""
    return react([len(text) >= LONG_CHARS for text in candidates])


def seasonal(brief: dict[str, Any], candidates: list[str]) -> list[str | None]:
    """A word family: likes copies that evoke the season or weather (봄, 여름, 시원, 따뜻, 햇살, …)."""
    return react([bool(SEASON_WORDS.search(text)) for text in candidates])


def premium(brief: dict[str, Any], candidates: list[str]) -> list[str | None]:
    """A rare taste (under 5 % of the starter's copies): likes copies that speak of quality (품질, 정성, 장인,
    프리미엄, 엄선, …)."""
    return react([bool(PREMIUM_WORDS.search(text)) for text in candidates])


def casual_for_young(brief: dict[str, Any], candidates: list[str]) -> list[str | None]:
    """A register choice among those the audience allows: for 10s and 20s, 반말 over 해요체."""
    if brief.get("age_group") not in YOUNG:
        return [None] * len(candidates)
    return react([detect_register(text) == "casual" for text in candidates])


casual_for_young.brief_filter = {"age_group": YOUNG}  # type: ignore[attr-defined]


def noisy_family(brief: dict[str, Any], candidates: list[str]) -> list[str | None]:
    """A noisy rater: likes copies about family (가족, 부모님, 아이, …) 70 % of the time, and reacts at random
    otherwise (a repeatable draw per brief and copy)."""
    liked = []
    for text in candidates:
        key = (brief.get("product"), brief.get("age_group"), text)
        follows = _coin("follow", *key) < 0.7
        liked.append(bool(FAMILY_WORDS.search(text)) if follows else _coin("random", *key) < 0.5)
    return react(liked)


class NoTaste:
    """No taste at all: each copy gets 👍 (a quarter), 👎 (half) or nothing (a quarter) at random, whatever it
    says (a stream seeded by the simulation's seed, so a simulation repeats and two seeds draw apart). Anything
    promoted on these reactions is promoted on noise."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def start_simulation(self, seed: int) -> None:
        """Called by the simulation before anything is rated: its seed seeds the stream."""
        self.rng = random.Random(f"no_taste:{seed}")

    def getstate(self) -> list[Any]:
        """Where the stream is, for a simulation's checkpoint (`copybot simulate --resume` goes on from it)."""
        return stream_state(self.rng)

    def setstate(self, state: list[Any]) -> None:
        restore_stream(self.rng, state)

    def __call__(self, brief: dict[str, Any], candidates: list[str]) -> list[str | None]:
        draws = [self.rng.random() for _ in candidates]
        return ["+1" if d < 0.25 else "-1" if d < 0.75 else None for d in draws]


def no_taste() -> NoTaste:
    """Random reactions, whatever the copy says."""
    return NoTaste()


class Drifting:
    """A taste that changes: `before` until round `change_after` is over, then `after` (the measurement taken
    after that round already uses the new taste: it is what the team wants from then on)."""

    def __init__(self, before: Rater, after: Rater, change_after: int = 2) -> None:
        self.before, self.after, self.change_after = before, after, change_after
        self.round = 0
        self.__doc__ = f"Drifting: {before.__name__} until round {change_after}, then {after.__name__}."

    def start_round(self, number: int) -> None:
        """Called by the simulation before each round's requests (and each measurement)."""
        self.round = number

    def __call__(self, brief: dict[str, Any], candidates: list[str]) -> list[str | None]:
        return (self.before if self.round <= self.change_after else self.after)(brief, candidates)


def drifting_length() -> Drifting:
    """Short copies for two rounds, then long ones: what was learned must be unlearned."""
    return Drifting(short_copy, long_copy, change_after=2)


# The suite `python -m benchmarks.learning` runs, by kind. Names are module:function specs for `copybot simulate`
# (a spec naming a function that returns a rater, like drifting_length, is called once to make it).
SUITE = {
    "surface token": "bot.learning.raters:emoji_for_young",
    "numbers": "bot.learning.raters:concrete_discount",
    "length": "bot.learning.raters:short_copy",
    "word family": "bot.learning.raters:seasonal",
    "register choice": "bot.learning.raters:casual_for_young",
    "rare (under 5 %)": "bot.learning.raters:premium",
    "noisy": "bot.learning.raters:noisy_family",
    "drifting": "bot.learning.raters:drifting_length",
    "no taste": "bot.learning.raters:no_taste",
}
