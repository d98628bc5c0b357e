"""Sampling each row of a batch on its own terms, so that requests can share one `generate` call (issue 19).

transformers samples a batch with one temperature, one top-p and one random stream: a request's candidates would
then depend on which other requests share its batch. `RowSampler` is a logits processor that picks each row's next
token itself, with that row's temperature, top-k, top-p and its own `torch.Generator`, and leaves only that token
open; `generate` then runs greedy and takes it. `RowLimits` stops each row at its own length, or as soon as its
request is cancelled. A row's tokens depend on its own prompt, settings and seed alone, up to the floating-point
noise of computing it beside other rows (padding to a longer prompt, another batch size in the matrix products).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_TEMPERATURE = 2.0  # the OpenAI API's ceiling; a calibrated adapter never samples hotter


def scaled_temperature(temperature: float, scale: float) -> float:
    """The temperature a version samples at: the request's times the version's calibrated factor, capped."""
    return min(MAX_TEMPERATURE, temperature * scale)


NUCLEUS_GUESS = 256  # tokens ranked first for top-k/top-p; a row whose nucleus is larger is ranked in full


@dataclass(frozen=True)
class RowSampling:
    """How one row is sampled: temperature 0 is greedy; top_k 0 keeps every token."""

    temperature: float
    top_p: float = 1.0
    top_k: int = 0


@dataclass
class Job:
    """One request's share of a batch: its prompts and how to write them. `avoid` holds copies already in the set
    being written (the sibling penalty keeps these apart from them too); `cancelled`, when given, is asked at every
    step, and once it answers True the job's rows stop where they are."""

    prompts: list[str]
    max_tokens: int = 96
    temperature: float = 0.9
    top_p: float = 0.95
    seed: int | None = None
    stop: list[str] | None = None
    avoid: Sequence[str] = ()
    cancelled: Callable[[], bool] | None = field(default=None, compare=False)


def row_seed(seed: int, row: int) -> int:
    """The random stream of a request's `row`-th candidate under the request's seed: independent of batchmates."""
    digest = hashlib.sha256(f"{seed}:{row}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


class RowSampler:
    """A transformers logits processor: choose each row's next token by its own `RowSampling` and generator, and
    mask every other token, so that greedy decoding takes the choice.

    The work is done for the whole batch at once (one softmax, one cumulative sum, one sort of the rows that
    truncate); only the uniform draw is made row by row, from the row's own generator. A token is chosen by inverse
    transform: the first whose cumulative probability exceeds the row's draw, in vocabulary order for a row that
    keeps every token and by falling probability for a row with top-k or top-p. Which order a row uses is its own
    setting's choice, never its batchmates': one draw picks another token in the other order."""

    def __init__(self, sampling: Sequence[RowSampling], generators: Sequence[Any], guess: int = NUCLEUS_GUESS) -> None:
        import torch

        if len(sampling) != len(generators):
            raise ValueError("one generator per row")
        self.generators, self.guess = list(generators), guess
        self.temperature = torch.tensor([s.temperature for s in sampling], dtype=torch.float32)
        self.top_p = torch.tensor([s.top_p for s in sampling], dtype=torch.float32)
        self.top_k = torch.tensor([s.top_k for s in sampling], dtype=torch.long)
        self.truncating = ((self.top_p < 1) | (self.top_k > 0)).nonzero().flatten()  # rows that sort

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        chosen = self.choose(scores.float())
        masked = torch.full_like(scores, float("-inf"))
        masked.scatter_(1, chosen[:, None], 0.0)
        return masked

    def choose(self, logits: Any) -> Any:
        """Each row's token id."""
        import torch

        device = logits.device
        temperature = self.temperature.to(device)
        greedy = logits.argmax(dim=-1)
        # one uniform number per row from its own generator, drawn on the CPU where every generator lives
        draws = torch.cat([torch.rand(1, generator=g) for g in self.generators]).to(device)
        probs = torch.softmax(logits / temperature.clamp_min(1e-6)[:, None], dim=-1)
        picked = _inverse_transform(probs, draws)
        if self.truncating.numel():
            rows = self.truncating.to(device)
            picked[rows] = self._truncated_pick(probs[rows], draws[rows], rows)
        return torch.where(temperature > 0, picked, greedy)

    def _truncated_pick(self, probs: Any, draws: Any, rows: Any) -> Any:
        """The picks of the rows with top-k or top-p: by falling probability (ties by token id), within the
        tokens the row's top-k and nucleus keep; the top token always stays.

        Only the `guess` most likely tokens are ranked first: a partial sort costs far less than sorting a large
        vocabulary (80 rows of 152k tokens on 2 CPU cores: 12 ms against 560 ms). A row whose kept tokens do not
        lie strictly inside them (the last kept one more likely than the least ranked, so that no token left out
        ties with a kept one) is ranked in full instead. Either way a row picks the same token."""
        import torch

        device = probs.device
        top_k, top_p = self.top_k.to(device)[rows], self.top_p.to(device)[rows]
        whole = probs.sum(-1)  # a row's total mass where it has no top-k (≈1)
        width = min(self.guess, probs.shape[1])
        values, ids = _ranked(*torch.topk(probs, width, dim=-1))
        kept = _nucleus(values, top_k, top_p, whole)
        count = (kept > 0).sum(-1)
        last_kept = values.gather(1, (count - 1).clamp_min(0)[:, None])[:, 0]
        inside = (top_k <= width) & (count < width) & (last_kept > values[:, -1])
        picked = ids.gather(1, _inverse_transform(kept, draws)[:, None])[:, 0]
        outside = (~inside).nonzero().flatten()
        if outside.numel():
            values, order = torch.sort(probs[outside], dim=-1, descending=True, stable=True)
            kept = _nucleus(values, top_k[outside], top_p[outside], whole[outside])
            picked[outside] = order.gather(1, _inverse_transform(kept, draws[outside])[:, None])[:, 0]
        return picked


def _ranked(values: Any, ids: Any) -> tuple[Any, Any]:
    """`torch.topk`'s result by falling probability and, among equal ones, by token id (as a stable sort of the
    whole row ranks them): topk leaves the order of ties open."""
    import torch

    ids, by_id = ids.sort(dim=-1)
    values, order = torch.sort(values.gather(1, by_id), dim=-1, descending=True, stable=True)
    return values, ids.gather(1, order)


def _nucleus(ranked: Any, top_k: Any, top_p: Any, whole: Any) -> Any:
    """Ranked probabilities with those outside the row's top-k and nucleus set to 0: a token stays while the mass
    ranked above it is under top_p of the total (the top-k's mass, or `whole` without a top-k). Computed from the
    ranked prefix alone, so that ranking a row in part or in full keeps the same tokens with the same weights."""
    import torch

    rank = torch.arange(ranked.shape[1], device=ranked.device)[None, :]
    ranked = ranked.masked_fill((top_k[:, None] > 0) & (rank >= top_k[:, None]), 0.0)
    cumulative = torch.cumsum(ranked, dim=-1)
    in_top_k = cumulative.gather(1, (top_k.clamp(1, ranked.shape[1]) - 1)[:, None])[:, 0]
    total = torch.where(top_k > 0, in_top_k, whole)
    before = cumulative - ranked  # mass ranked above each token
    return ranked.masked_fill(before >= (top_p * total)[:, None], 0.0)


def _inverse_transform(probs: Any, draws: Any) -> Any:
    """Per row, the index of the first entry whose cumulative probability exceeds the row's draw (in [0, 1)) times
    the row's total."""
    import torch

    cumulative = torch.cumsum(probs, dim=-1)
    index = torch.searchsorted(cumulative, draws[:, None] * cumulative[:, -1:], right=True)
    return index.clamp_max(probs.shape[1] - 1)[:, 0]


class RowLimits:
    """A transformers stopping criterion: row i is done after `lengths[i]` new tokens, or once `cancelled[i]`
    (shared by a job's rows) says so. Rows that finish early are padded by `generate` while the rest go on."""

    def __init__(self, prompt_length: int, lengths: Sequence[int],
                 cancelled: Sequence[Callable[[], bool] | None]) -> None:  # fmt: skip
        import torch

        self.prompt_length = prompt_length
        self.lengths = torch.tensor(list(lengths), dtype=torch.long)
        self.cancelled = list(cancelled)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        written = input_ids.shape[1] - self.prompt_length
        done = (written >= self.lengths).to(input_ids.device)
        asked: dict[int, bool] = {}  # a job's check is asked once per step, however many rows it has
        for check in self.cancelled:
            if check is not None and id(check) not in asked:
                asked[id(check)] = bool(check())
        stopped = [check is not None and asked[id(check)] for check in self.cancelled]
        return done | torch.tensor(stopped, dtype=torch.bool, device=input_ids.device)


class EarlyAnswers:
    """A transformers stopping criterion that stops nothing: as soon as every row of a job has finished (a stop
    token, or its own length), `answer(job, tokens)` gets those rows' new tokens, so a short request is answered
    while the batch's longer rows are still being written. A finished row's later tokens are only padding, so the
    answer is what the whole call returns for it."""

    def __init__(self, prompt_length: int, spans: Sequence[range], lengths: Sequence[int], stop_ids: Sequence[int],
                 answer: Callable[[int, Any], None]) -> None:  # fmt: skip
        import torch

        self.prompt_length, self.spans, self.answer = prompt_length, list(spans), answer
        self.lengths = torch.tensor(list(lengths), dtype=torch.long)
        self.stop_ids = torch.tensor(list(stop_ids), dtype=torch.long)
        self.answered: set[int] = set()

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        new = input_ids[:, self.prompt_length :]
        if len(self.answered) < len(self.spans):
            self._answer_finished(new)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def _answer_finished(self, new: Any) -> None:
        import torch

        finished = new.shape[1] >= self.lengths
        if self.stop_ids.numel():  # one transfer a step, not one per job (each would wait for a GPU)
            finished |= torch.isin(new, self.stop_ids.to(new.device)).any(dim=1).cpu()
        for job, span in enumerate(self.spans):
            if job not in self.answered and bool(finished[span.start : span.stop].all()):
                self.answered.add(job)
                self.answer(job, new[span.start : span.stop])


def job_rows(job: Job, temperature: float, top_k: int) -> tuple[list[RowSampling], list[Any]]:
    """How each of a job's rows samples (at `temperature`, the version's already), and its random stream: candidate
    i of a seeded request draws from (seed, i), so it never depends on what shares its batch."""
    n = len(job.prompts)
    seeds = [row_seed(job.seed, i) if job.seed is not None else None for i in range(n)]
    return [RowSampling(temperature, job.top_p, top_k)] * n, generators(seeds)


def row_spans(counts: Iterable[int]) -> list[range]:
    """The rows of consecutive groups of a batch, given how many rows each has: (3, 2) -> [0..3), [3..5)."""
    spans, first = [], 0
    for n in counts:
        spans.append(range(first, first + n))
        first += n
    return spans


def generators(seeds: Sequence[int | None]) -> list[Any]:
    """One CPU generator per row: seeded when the row's request gave a seed, else from torch's own stream."""
    import torch

    out = []
    for seed in seeds:
        generator = torch.Generator()
        generator.manual_seed(seed if seed is not None else int(torch.randint(0, 1 << 62, (1,))))
        out.append(generator)
    return out
