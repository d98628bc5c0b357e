"""How a scored corpus teaches: more weight for copies that performed well against comparable copies, and
preference pairs where two copies of one brief performed further apart than noise.

- **Comparable copies** and a copy's **standing** in its group: model/corpus_standings.py.
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

from model.corpus_standings import Row, ScoreRules, brief_key, standings

NEUTRAL_WEIGHT = 2


def sft_weight(standing: float | None) -> int:
    """How many times a copy appears in SFT: 1 (bottom half), 2 (third quarter, or neutral), 3 (top quarter)."""
    if standing is None:
        return NEUTRAL_WEIGHT
    return 3 if standing >= 0.75 else 2 if standing >= 0.5 else 1


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
