"""Keep the candidates of one batch from saying the same thing the same way.

Candidates are sampled side by side in one batch. As the adapter learns what the team likes, its distribution
sharpens and the samples start to share phrasing (distinct-2 falls). `SiblingBigramPenalty` lowers, for each row,
the logit of every token that would repeat a token bigram an earlier row of the batch already wrote. A liked
*property* (an emoji, a concrete discount) stays reachable; only its exact wording is discouraged from repeating,
so row 3 says "30% 할인" or "반값" where row 1 said "20% 할인". The penalty acts more the more the rows overlap, so a
model that has collapsed is pushed back hardest.
"""

from __future__ import annotations

from typing import Any


def distinct_2(texts: list[str]) -> float:
    """Distinct character bigrams over all bigrams in a batch of texts (1.0: no bigram repeats)."""
    grams = [t[i : i + 2] for t in texts for i in range(len(t) - 1)]
    return len(set(grams)) / max(1, len(grams))


class SiblingBigramPenalty:
    """A transformers logits processor: subtract `penalty` from tokens that would repeat an earlier row's bigram.

    `start` is the index of the prompt's last token (the batch is left-padded, so every row's prompt ends there);
    the first generated token pairs with it, which also keeps rows from all opening the same way."""

    def __init__(self, start: int, penalty: float) -> None:
        self.start, self.penalty = start, penalty

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        rows = input_ids[:, self.start :]
        if rows.shape[0] < 2 or self.penalty <= 0:
            return scores
        previous = rows[:, :-1]  # bigram (previous[j, k], following[j, k]) for every earlier position
        following = rows[:, 1:]
        last = rows[:, -1]
        for i in range(1, rows.shape[0]):
            # in rows 0..i-1, the tokens that followed the token row i just wrote
            hits = following[:i][previous[:i] == last[i]]
            if hits.numel():
                scores[i, hits.unique()] -= self.penalty
        return scores
