"""Brand voice in the prompt: the k best-performing corpus copies for a brief, shown to an instruct model as
examples, the same way in training and in serving.

Which copies: those in the top quarter of their comparable group (the standings of model/corpus_standings.py),
written for the same channel and age group as the brief, and for the brief's category where at least k such
copies exist (a brief has no category: it is the category the corpus gives the brief's product most often).
Copies written for the very same brief (product, event, age group, channel) are never shown: in training, a
corpus copy replayed under its own brief would otherwise see itself in its prompt and learn to copy it; the same
rule holds in serving, so the two render the same prompt. Best standing first; ties by text, so the choice is
stable.

`brief_with_voice` puts the examples into a training example's brief (every example of a built dataset, through
model/training/dataset.map_briefs), so that a GPU host renders them without the corpus.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from model.corpus_standings import brief_key, standings

TOP_STANDING = 0.75
MAX_EXAMPLES = 10


class BrandVoice:
    """The examples for any brief, from the corpus rows (dicts with the corpus columns) it is built on."""

    def __init__(self, rows: list[dict[str, Any]], k: int) -> None:
        if not 0 <= k <= MAX_EXAMPLES:
            raise ValueError(f"the number of brand-voice examples must be between 0 and {MAX_EXAMPLES}, not {k}")
        self.k = k
        ranked = standings(rows) if k else [None] * len(rows)
        self._pool = sorted(((s, r) for r, s in zip(rows, ranked, strict=True) if s is not None and s >= TOP_STANDING),
                            key=lambda pair: (-pair[0], pair[1]["text"]))  # fmt: skip
        categories: dict[str, Counter[str]] = defaultdict(Counter)
        for row in rows:
            if row.get("category") and row.get("product"):
                categories[row["product"]][row["category"]] += 1
        self._category = {product: counts.most_common(1)[0][0] for product, counts in categories.items()}

    def examples_for(self, brief: Mapping[str, Any]) -> tuple[str, ...]:
        """Up to k example copies for a brief given as a mapping (product, event, age_group, channel)."""
        if not self.k:
            return ()
        own = brief_key(dict(brief))
        fitting = [r for _, r in self._pool if r.get("channel") == brief.get("channel")
                   and r.get("age_group") == brief.get("age_group") and brief_key(r) != own]  # fmt: skip
        category = self._category.get(brief.get("product") or "", "")
        same_category = [r for r in fitting if category and r.get("category") == category]
        chosen = same_category if len(same_category) >= self.k else fitting
        return tuple(r["text"] for r in chosen[: self.k])


def brief_with_voice(brief: dict[str, Any], voice: BrandVoice) -> dict[str, Any]:
    """A training example's brief with its examples (none when the voice has none for it)."""
    examples = voice.examples_for(brief)
    return {**brief, "examples": list(examples)} if examples else brief
