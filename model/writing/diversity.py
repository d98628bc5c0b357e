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
        self._chains: Any = None  # the prior copies as a tensor, made on the first call's device

    def _prior_chains(self, opening: Any, length: int) -> Any:
        """The prior copies read as rows of the batch: each after the prompt's last token (`opening`, a 1-element
        tensor) and cut to `length` positions, as far as a sibling in the same batch would have written by now,
        so that a copy written before the batch weighs exactly as it would have weighed written in it. Positions a
        short copy never reached hold -1, a token id no row writes."""
        import torch

        if self._chains is None:
            longest = max(len(row) for row in self.prior)
            self._chains = torch.full((len(self.prior), 1 + longest), -1, dtype=torch.long, device=opening.device)
            for i, row in enumerate(self.prior):
                self._chains[i, 1 : 1 + len(row)] = torch.tensor(row, dtype=torch.long)
        chains = self._chains[:, :length].clone()
        if chains.shape[1] < length:
            chains = torch.nn.functional.pad(chains, (0, length - chains.shape[1]), value=-1)
        chains[:, 0] = opening
        return chains

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        span = self.rows if self.rows is not None else range(input_ids.shape[0])
        rows = input_ids[span.start : span.stop, self.start :]
        if (rows.shape[0] < 2 and not self.prior) or self.penalty <= 0:
            return scores
        # Done for all of a set's rows at once, with no value read back to Python: on a GPU each read would wait
        # for the device, once per row and step. Earlier rows are the prior copies, then the batch's own rows.
        n, length = rows.shape
        earlier = torch.cat([self._prior_chains(rows[0, :1], length), rows]) if self.prior else rows
        m = earlier.shape[0] - n
        previous, following = earlier[:, :-1], earlier[:, 1:]  # bigram (previous[j, k], following[j, k])
        positions = torch.arange(m + n, device=rows.device)
        above = positions[None, :] < (m + torch.arange(n, device=rows.device))[:, None]  # row j is earlier than i
        # hit[i, j, k]: an earlier row j wrote the token row i just wrote at k, followed by following[j, k]
        hit = (previous[None] == rows[:, -1, None, None]) & above[:, :, None] & (following >= 0)[None]
        followers = following.clamp_min(0).reshape(1, -1).expand(n, -1)
        counts = torch.zeros(n, scores.shape[1], device=scores.device)
        counts.scatter_add_(1, followers, hit.reshape(n, -1).to(counts.dtype))
        scores[span.start : span.stop] -= self.penalty * (counts > 0).to(scores.dtype)
        return scores
