"""Continuous batching: a batch that new requests join, and finished ones leave, between steps (issue 19).

`LocalEngine.complete_batch` writes a fixed set of requests in one `generate` call, and the model takes no new
request until that call's longest row has ended: a request arriving a moment after a batch started waits for all
of it. `Decoding` runs the decode loop itself over a KV cache: `admit` reads the newcomers' prompts (one forward
pass over them, their first token sampled) and merges their cache into the running batch's, left-padded to the
longer of the two; `step` writes one token for every row; a request whose rows have all finished is answered
and its rows leave the cache. Each row is sampled, limited and stopped on its own request's terms exactly as in
`complete_batch` (model/writing/sampling.py), and keeps its own random stream, so a request writes what it would
write alone, up to the floating-point noise of computing beside other rows.

One adapter per decoding (its rows share the weights); the engine's lock is held for each step, not for the
whole run, so that adapter loads, hot swaps and the reward model's features go in between steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from model.writing.sampling import Job, RowSampler, RowSampling, job_rows, row_spans, scaled_temperature

# generation-config settings that `generate` turns into logits processors of its own, which a decoding would not
# apply: a model whose config sets any writes whole batches only
GENERATE_EXTRAS = ("suppress_tokens", "begin_suppress_tokens", "bad_words_ids", "sequence_bias", "no_repeat_ngram_size",
                   "min_length", "min_new_tokens", "forced_bos_token_id", "forced_eos_token_id")  # fmt: skip


def decodable(model: Any) -> bool:
    """Whether a model's batches can run as a `Decoding`: its KV cache is plain full-attention layers, whose rows
    can be merged and dropped freely (not sliding-window ones), and its generation config adds no GENERATE_EXTRAS."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    config = getattr(model, "generation_config", None)
    if any(getattr(config, name, None) for name in GENERATE_EXTRAS):
        return False
    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=model.config).layers)


@dataclass
class _Running:
    """One request in the batch: its rows' tokens so far (after its prompts' last token) and how they stop."""

    key: Hashable
    job: Job
    sampling: list[RowSampling]
    generators: list[Any]
    tokens: Any  # [rows, 1 + written]: the prompt's last token, then what each row wrote (pads once finished)
    deadline: float
    penalty: Any = None  # the sibling penalty over this request's rows (model/writing/diversity.py), if any

    @property
    def rows(self) -> int:
        return len(self.job.prompts)

    @property
    def written(self) -> int:
        return int(self.tokens.shape[1]) - 1


class Decoding:
    """A running batch on one engine and adapter. Not thread-safe: one worker admits and steps it.

    `answer(key, texts)` hears a request's texts once all its rows are finished (a stop token, its `max_tokens`, or
    the engine's time limit per request); a request whose `cancelled` check answers True leaves with no answer,
    `dropped(key)` being told."""

    def __init__(self, engine: Any, adapter: str | None, answer: Callable[[Hashable, list[str]], None],
                 dropped: Callable[[Hashable], None] = lambda key: None) -> None:  # fmt: skip
        self.engine, self.adapter, self.answer, self.dropped = engine, adapter, answer, dropped
        # the adapter's weights as loaded now: a batch never goes on with others under the same name
        self.weights = engine.weights_of(adapter)
        self.requests: list[_Running] = []
        self.cache: Any = None
        self.mask: Any = None  # [rows, cached positions]: 1 where a row has a token, 0 for its left padding
        self.position: Any = None  # [rows]: each row's next position id
        self.last: Any = None  # [rows]: each row's last token
        self.unfinished: Any = None  # [rows] bool
        self._sampler: RowSampler | None = None  # for the rows of `requests`, made again when they change
        self._stops: Any = None  # the engine's stop token ids on the device

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.requests)

    @property
    def active(self) -> bool:
        return bool(self.requests)

    def admit(self, entries: Sequence[tuple[Hashable, Job]]) -> None:
        """Read the requests' prompts, sample their first tokens and add them to the batch."""
        engine = self.engine
        jobs = [job for _, job in entries]
        with engine.stepping(self.adapter, self.weights) as (model, scale):
            encoded = engine._encode(jobs)
            ids, mask = engine._padded([row for rows in encoded for row in rows])
            position = mask.cumsum(-1) - 1
            position.masked_fill_(mask == 0, 0)  # as generate does; padding is masked anyway
            cache = engine.new_cache()
            logits = _next_logits(model, engine, ids, mask, position, cache)
            now, added = time.monotonic(), []
            for (key, job), span in zip(entries, row_spans(len(job.prompts) for job in jobs), strict=True):
                temperature = scaled_temperature(job.temperature, scale)
                sampling, streams = job_rows(job, temperature, engine.top_k)
                added.append(_Running(key, job, sampling, streams, ids[span.start : span.stop, -1:],
                                      now + engine.max_time_s, engine.sibling_penalty(job, temperature)))  # fmt: skip
            tokens = self._choose(added, logits)
            self._merge(added, cache, mask, position[:, -1] + 1, tokens)
            self._finish_rows(added, tokens, offset=self.rows - int(tokens.shape[0]))
        self._sampler = None
        self._settle()

    def step(self) -> None:
        """Write one token for every row; answer and remove the requests that are done."""
        import torch

        with self.engine.stepping(self.adapter, self.weights) as (model, _):
            mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
            logits = _next_logits(model, self.engine, self.last[:, None], mask, self.position[:, None], self.cache)
            self.mask, self.position = mask, self.position + 1
            tokens = self._choose(self.requests, logits)
            tokens = torch.where(self.unfinished, tokens, self.engine.tokenizer.pad_token_id)
            self.last = tokens
            self._finish_rows(self.requests, tokens, offset=0)
        self._settle()

    def _choose(self, requests: Sequence[_Running], logits: Any) -> Any:
        """The next token of every row of `requests` (whose rows are `logits`' rows, in order); the sibling penalty
        acts within each request."""
        for running, span in zip(requests, _spans(requests), strict=True):
            if running.penalty is not None:  # it lowers the logits of the request's rows in place
                running.penalty(running.tokens, logits[span.start : span.stop])
        sampler = self._sampler if requests is self.requests and self._sampler is not None else None
        if sampler is None:
            sampler = RowSampler([s for r in requests for s in r.sampling], [g for r in requests for g in r.generators])
            if requests is self.requests:
                self._sampler = sampler
        return sampler.choose(logits)

    def _finish_rows(self, requests: Sequence[_Running], tokens: Any, offset: int) -> None:
        """Append each row's token (`tokens` holds the rows of `requests`, which start at row `offset` of the
        batch) to its request; a row that wrote a stop token or reached its request's length is finished."""
        import torch

        if self._stops is None:
            self._stops = torch.tensor(self.engine.stop_ids, dtype=torch.long, device=tokens.device)
        for running, span in zip(requests, _spans(requests), strict=True):
            own = tokens[span.start : span.stop]
            running.tokens = torch.cat([running.tokens, own[:, None]], dim=1)
            done = torch.isin(own, self._stops)
            if running.written >= running.job.max_tokens:
                done = torch.ones_like(done)
            self.unfinished[offset + span.start : offset + span.stop] &= ~done

    def _merge(self, added: list[_Running], cache: Any, mask: Any, position: Any, tokens: Any) -> None:
        """Append the newcomers' rows (their cache, mask, next positions and first tokens) to the batch's, both
        left-padded to the longer of the two. Each layer is joined into one new tensor in turn, so that at most one
        layer is held twice at a time."""
        import torch
        import torch.nn.functional as F

        unfinished = torch.ones(tokens.shape[0], dtype=torch.bool, device=tokens.device)
        if self.cache is None:
            self.cache, self.mask, self.position, self.last, self.unfinished = cache, mask, position, tokens, unfinished
            self.requests += added
            return
        width = max(self.mask.shape[1], mask.shape[1])
        old, new = width - self.mask.shape[1], width - mask.shape[1]  # padding each side needs
        rows = self.mask.shape[0]

        def joined(a: Any, b: Any) -> Any:  # cache tensors [rows, heads, positions, dim]
            out = a.new_zeros((rows + b.shape[0], a.shape[1], width, a.shape[3]))
            out[:rows, :, old:] = a
            out[rows:, :, new:] = b
            return out

        merged_mask = torch.cat([F.pad(self.mask, (old, 0)), F.pad(mask, (new, 0))])
        for mine, theirs in zip(self.cache.layers, cache.layers, strict=True):
            mine.keys, mine.values = joined(mine.keys, theirs.keys), joined(mine.values, theirs.values)
            theirs.keys = theirs.values = None  # freed as soon as joined
        self.mask = merged_mask
        self.position = torch.cat([self.position, position])
        self.last = torch.cat([self.last, tokens])
        self.unfinished = torch.cat([self.unfinished, unfinished])
        self.requests += added

    def _settle(self) -> None:
        """Answer the requests whose rows are all finished (or whose time is up), drop the withdrawn ones, and
        take their rows out of the batch."""
        import torch

        unfinished = self.unfinished.cpu()  # one transfer a step
        keep: list[int] = []
        now, staying = time.monotonic(), []
        for running, span in zip(self.requests, _spans(self.requests), strict=True):
            if running.job.cancelled is not None and running.job.cancelled():
                self.dropped(running.key)
            elif not bool(unfinished[span.start : span.stop].any()) or now >= running.deadline:
                self.answer(running.key, self.engine.texts_of(running.job, running.tokens[:, 1:]))
            else:
                keep += span
                staying.append(running)
        if len(staying) == len(self.requests):
            return
        self.requests, self._sampler = staying, None
        if not staying:
            self.cache = self.mask = self.position = self.last = self.unfinished = None
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.mask, self.position = self.mask[index], self.position[index]
        self.last, self.unfinished = self.last[index], self.unfinished[index]
        start = int(self.mask.any(dim=0).nonzero()[0])  # columns that are padding in every remaining row go
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[index, :, start:], layer.values[index, :, start:]
        self.mask = self.mask[:, start:]


def _spans(requests: Sequence[_Running]) -> list[range]:
    """Each request's rows in the batch (or in a group of newcomers)."""
    return row_spans(r.rows for r in requests)


def _next_logits(model: Any, engine: Any, ids: Any, mask: Any, position: Any, cache: Any) -> Any:
    """The model's float32 logits for each row's next token, as `generate` computes them (the last position only),
    the cache growing by the given tokens."""
    out = model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True, logits_to_keep=1,
                **{engine.cache_argument: cache})  # fmt: skip
    return out.logits[:, -1, :].float()
