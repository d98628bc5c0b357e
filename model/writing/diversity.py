"""Keep the candidates of one batch from saying the same thing the same way.

Candidates are sampled side by side in one batch. As the adapter learns what the team likes, its distribution
sharpens and the samples start to share phrasing (distinct-2 falls). `SiblingBigramPenalty` lowers, for each row,
the logit of every token that would repeat a token bigram an earlier row of the batch already wrote. A liked
*property* (an emoji, a concrete discount) stays reachable; only its exact wording is discouraged from repeating,
so row 3 says "30% 할인" or "반값" where row 1 said "20% 할인". The penalty acts more the more the rows overlap, so a
model that has collapsed is pushed back hardest.

A set is not always written in one batch: during a live trial the champion and the challenger each write their
part, and a retry adds copies to a set that already holds some. `prior` rows are copies the set already holds;
they count as rows earlier than every row of the batch, read only as far as the batch has got (a sibling in the
batch has written no further either), so a set written in two calls is kept apart as much as one written in one,
and no more.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any


def distinct_2(texts: list[str]) -> float:
    """Distinct character bigrams over all bigrams in a batch of texts (1.0: no bigram repeats)."""
    grams = [t[i : i + 2] for t in texts for i in range(len(t) - 1)]
    return len(set(grams)) / max(1, len(grams))


class SiblingBigramPenalty:
    """A transformers logits processor: subtract `penalty` from tokens that would repeat an earlier row's bigram.

    `start` is the index of the prompt's last token (the batch is left-padded, so every row's prompt ends there);
    the first generated token pairs with it, which also keeps rows from all opening the same way. `prior` holds
    the token ids of copies written before this batch (without the prompt): rows earlier than every row. `rows`
    names the rows that make one set when a batch holds several requests (default: all of them); the others are
    left alone, so each request's candidates are kept apart from each other and from nobody else's."""

    def __init__(self, start: int, penalty: float, prior: Sequence[Sequence[int]] = (),
                 rows: range | None = None) -> None:  # fmt: skip
        self.start, self.penalty = start, penalty
        self.prior = [list(row) for row in prior if row]
        self.rows = rows

    def _prior_followers(self, opening: int, length: int) -> dict[int, set[int]]:
        """Token -> the tokens that followed it in a prior copy (read after the prompt's last token, `opening`),
        within its first `length` positions: as far as a sibling in the same batch would have written by now, so
        that a copy written before the batch weighs exactly as it would have weighed written in it."""
        table: dict[int, set[int]] = {}
        for row in self.prior:
            chain = [opening, *row][:length]
            for a, b in pairwise(chain):
                table.setdefault(a, set()).add(b)
        return table

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        span = self.rows if self.rows is not None else range(input_ids.shape[0])
        rows = input_ids[span.start : span.stop, self.start :]
        if (rows.shape[0] < 2 and not self.prior) or self.penalty <= 0:
            return scores
        previous = rows[:, :-1]  # bigram (previous[j, k], following[j, k]) for every earlier position
        following = rows[:, 1:]
        last = rows[:, -1]
        followers = self._prior_followers(int(rows[0, 0]), rows.shape[1]) if self.prior else {}
        for i in range(rows.shape[0]):
            # in rows 0..i-1, the tokens that followed the token row i just wrote; then in the prior copies
            hits = set(following[:i][previous[:i] == last[i]].tolist()) if i else set()
            hits.update(followers.get(int(last[i]), ()))
            if hits:
                scores[span.start + i, sorted(hits)] -= self.penalty
        return scores
