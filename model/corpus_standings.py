"""Where a scored copy stands among comparable copies: the ranking that both training (model/training/corpus_scores.py,
what a scored corpus teaches) and serving (model/writing/voice.py, which copies show the brand's voice) read.

- **Comparable copies** share the channel and what the score measures (a CTR is never compared with an open
  rate). Within that, the first of (same age group and category), (same category), (same age group), (channel
  and measure alone) that holds at least `min_group` scored copies is the copy's group: a 20대 beauty SNS CTR is
  judged against 20대 beauty SNS CTRs when there are enough of them, else against beauty SNS CTRs. The category
  comes before the age group on the assumption that what is sold sets a score's level more than who it is sold
  to.
- **Standing**: a copy's mid-rank percentile in its group, 0 for the worst and 1 for the best (ties share one).
  Standings, not raw scores, are what the rules that read them use, so they work the same for a CTR of 0.8 % and a
  rating of 4.2 out of 5. Unscored copies, and copies whose every group is smaller than `min_group`, have no
  standing: they are neutral.

Rows are plain dicts with the corpus columns (text, product, event, category, age_group, channel, score,
score_measure); nothing here reads the store.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class ScoreRules:
    """The settings of the standings (`min_group`) and of the pairs training draws from them (`min_gap`,
    model/training/corpus_scores.py); each field's `metadata['help']` says what it does."""

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


def brief_key(row: Row) -> tuple[str, ...]:
    """What two copies must share to be written for the same brief."""
    return (row.get("product") or "", row.get("event") or "", row.get("age_group") or "", row.get("channel") or "")
