"""Example raters for `copybot simulate`: stand-ins for a team's taste that the model is never told.

A rater is `rate(brief: dict, candidates: list[str]) -> list[str | None]` and returns one Slack reaction name per
candidate: '+1', '-1', 'trophy' or None (no reaction). The brief dict has product, event, age_group and channel.

A rater may carry a `brief_filter` attribute, a dict from brief field to the allowed values, which limits the
briefs the simulation samples to the ones the rater has an opinion on (for example, young audiences only).
"""

from __future__ import annotations

import re
from typing import Any

from model.postprocess import EMOJI

YOUNG = ("10대", "20대")
# A concrete figure: a 1-99% discount (100% is an absolute claim, not a discount), a price or saving in won,
# "1+1", or an instalment offer.
DISCOUNT_FIGURE = re.compile(
    r"(?<!\d)[1-9]\d?\s*(?:%|퍼센트|프로)|\d[\d,]*\s*(?:만\s*)?(?:천\s*)?원|\d\s*\+\s*\d|\d+\s*개월\s*무이자|반값"
)


def react(liked: list[bool]) -> list[str | None]:
    """The first liked copy wins (🏆), other liked copies get 👍, the rest 👎 — how a tidy team reacts."""
    out: list[str | None] = []
    for ok in liked:
        out.append(("+1" if "trophy" in out else "trophy") if ok else "-1")
    return out


def emoji_for_young(brief: dict[str, Any], candidates: list[str]) -> list[str | None]:
    """Likes copies with emoji for 10s and 20s audiences; no opinion on other audiences."""
    if brief.get("age_group") not in YOUNG:
        return [None] * len(candidates)
    return react([bool(EMOJI.search(text)) for text in candidates])


emoji_for_young.brief_filter = {"age_group": YOUNG, "channel": ("sns", "push", "banner")}  # type: ignore[attr-defined]


def concrete_discount(brief: dict[str, Any], candidates: list[str]) -> list[str | None]:
    """Likes copies that name a concrete figure (30%, 5,000원, 1+1, 3개월 무이자) over vague promises."""
    return react([bool(DISCOUNT_FIGURE.search(text)) for text in candidates])
