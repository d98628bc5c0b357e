"""How a scored corpus teaches: more weight for copies that performed well against comparable copies, and
preference pairs where two copies of one brief performed further apart than noise.

- **Comparable copies** share the channel and what the score measures (a CTR is never compared with an open
  rate). Within that, the first of (same age group and category), (same category), (same age group), (channel
  and measure alone) that holds at least `min_group` scored copies is the copy's group: a 20대 beauty SNS CTR is
  judged against 20대 beauty SNS CTRs when there are enough of them, else against beauty SNS CTRs. The category
  comes before the age group on the assumption that what is sold sets a score's level more than who it is sold
  to.
- **Standing**: a copy's mid-rank percentile in its group, 0 for the worst and 1 for the best (ties share one).
  Standings, not raw scores, are what the rules below use, so they work the same for a CTR of 0.8 % and a
  rating of 4.2 out of 5. Unscored copies, and copies whose every group is smaller than `min_group`, have no
  standing: they are neutral.
- **SFT weight** (how many times a copy appears): 1 in its group's bottom half, 2 in the third quarter, 3 in the
  top quarter; neutral copies 2, the middle, so that scoring some copies neither raises nor lowers the rest.
- **Pairs**: two copies of the same brief (product, event, age group, channel) and measure, both with a
  standing, whose standings differ by at least `min_gap`: a copy in the top quarter against one in the bottom
  quarter of the same group is a pair; two copies a few ranks apart are a tie, which is what noise looks like.

Rows are plain dicts with the corpus columns (text, product, event, category, age_group, channel, score,
score_measure); nothing here reads the store.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]
NEUTRAL_WEIGHT = 2


@dataclass(frozen=True)
class ScoreRules:
    """The settings of the rules above; each field's `metadata['help']` says what it does."""

    min_group: int = field(default=8, metadata={"help": "scored copies a comparable group needs to rank them"})
    min_gap: float = field(default=0.5, metadata={"help": "standing gap (0-1) that makes two copies a pair"})

    def __post_init__(self) -> None:
        if self.min_group < 2:
            raise ValueError("min_group must be at least 2")
        if not 0 < self.min_gap <= 1:
            raise ValueError("min_gap must be above 0 and at most 1")


def _scored(row: Row) -> bool:
    return row.get("score") is not None and bool(row.get("channel"))


def _group_keys(row: Row) -> list[tuple[str, ...]]:
    """The copy's candidate groups, narrowest first."""
    base = (row.get("channel") or "", row.get("score_measure") or "score")
    age, category = row.get("age_group") or "", row.get("category") or ""
    keys: list[tuple[str, ...]] = [(*base, "age+category", age, category)] if age and category else []
    keys += [(*base, "category", category)] if category else []
    keys += [(*base, "age", age)] if age else []
    return [*keys, base]


def standings(rows: list[Row], rules: ScoreRules | None = None) -> list[float | None]:
    """Each row's standing in its comparable group (see the module's text), or None when it is neutral."""
    rules = rules or ScoreRules()
    members: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        if _scored(row):
            for key in _group_keys(row):
                members[key].append(i)
    out: list[float | None] = []
    for i, row in enumerate(rows):
        group = next((members[k] for k in _group_keys(row) if len(members[k]) >= rules.min_group), None)
        out.append(_percentile(rows, group, i) if _scored(row) and group else None)
    return out


def _percentile(rows: list[Row], group: list[int], i: int) -> float:
    score = rows[i]["score"]
    below = sum(rows[j]["score"] < score for j in group)
    equal = sum(rows[j]["score"] == score for j in group)
    return round((below + (equal - 1) / 2) / (len(group) - 1), 4)


def sft_weight(standing: float | None) -> int:
    """How many times a copy appears in SFT: 1 (bottom half), 2 (third quarter, or neutral), 3 (top quarter)."""
    if standing is None:
        return NEUTRAL_WEIGHT
    return 3 if standing >= 0.75 else 2 if standing >= 0.5 else 1


def brief_key(row: Row) -> tuple[str, ...]:
    """What two copies must share to be written for the same brief."""
    return (row.get("product") or "", row.get("event") or "", row.get("age_group") or "", row.get("channel") or "")


def score_pairs(
    rows: list[Row], rules: ScoreRules | None = None, ranked: list[float | None] | None = None
) -> list[tuple[Row, Row]]:
    """(better, worse) copies of one brief and measure whose standings differ by at least `rules.min_gap`;
    `ranked` is `standings(rows, rules)` when the caller has it already."""
    rules = rules or ScoreRules()
    ranked = standings(rows, rules) if ranked is None else ranked
    briefs: dict[tuple[str, ...], list[tuple[float, Row]]] = defaultdict(list)
    for row, standing in zip(rows, ranked, strict=True):
        if standing is not None:
            briefs[(*brief_key(row), row.get("score_measure") or "score")].append((standing, row))
    pairs = []
    for copies in briefs.values():
        copies.sort(key=lambda c: -c[0])
        for i, (high, better) in enumerate(copies):
            for low, worse in copies[i + 1 :]:
                if high - low >= rules.min_gap - 1e-9:
                    pairs.append((better, worse))
    return pairs
