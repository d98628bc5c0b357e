"""Reranking: write 2n candidates, show the n the learned reward scores best, without giving up any check.

The shown set is chosen in tiers, so that the reward can never buy its way past a check: first candidates in the
audience's register with no compliance flag, then flagged ones, then register mismatches; within a tier, by
reward. A candidate that shares most of its character bigrams with one already chosen waits until the end.

The reward can also narrow the set without any near copy: it likes one feature, and the copies that carry it share
the feature's wording. So the shown set must be at least as varied (distinct-2) as the set shown without
reranking, the pool's first n: when the reward's choice is less varied, a chosen copy is swapped for an unchosen
one of the same tier, the swap that costs the least reward among those that reach the floor (or, when none does,
the one that gains the most variety), until the floor is met or no swap helps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.errors import ModelSideError
from model.writing.brief import Brief
from model.writing.diversity import distinct_2
from model.writing.reward_model import RewardModel, reward_prompt

log = logging.getLogger(__name__)

POOL_FACTOR = 2  # candidates written per candidate shown
RETRY_FEATURES_S = 600.0  # after the host gave no features, the pool stays single this long before trying again
NEAR_COPY = 0.5  # bigram Jaccard overlap at which a candidate counts as a near copy of a chosen one


@dataclass(frozen=True)
class Option:
    """A written candidate the chooser may show: its text, its tier (0 best) and its reward score."""

    text: str
    tier: int
    score: float


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def choose(options: list[Option], n: int) -> list[int]:
    """Indices of the n options to show: by tier, then by score; within a tier, near copies of options already
    chosen come after the others (a near copy still goes before anything of a worse tier); then swapped within
    tiers until the set is as varied as the pool's first n (see the module's docstring)."""
    grams = [_bigrams(o.text) for o in options]
    chosen: list[int] = []
    for tier in sorted({o.tier for o in options}):
        order = sorted((i for i, o in enumerate(options) if o.tier == tier), key=lambda i: (-options[i].score, i))
        fresh: list[int] = []
        near: list[int] = []
        for i in order:
            (near if any(_overlap(grams[i], grams[j]) >= NEAR_COPY for j in chosen + fresh) else fresh).append(i)
        chosen += fresh + near
        if len(chosen) >= n:
            break
    chosen = chosen[:n]
    floor = distinct_2([o.text for o in options[:n]])
    return _vary(options, chosen, floor)


def _vary(options: list[Option], chosen: list[int], floor: float) -> list[int]:
    """Swap chosen options for unchosen ones of the same tier until the texts' distinct-2 reaches `floor`."""
    chosen = list(chosen)

    def variety(picked: list[int]) -> float:
        return distinct_2([options[i].text for i in picked])

    current = variety(chosen)
    for _ in range(len(chosen)):
        if current >= floor:
            break
        swaps = []  # (reaches the floor, -reward lost or variety gained, position, replacement, variety)
        for pos, i in enumerate(chosen):
            for j in range(len(options)):
                if j in chosen or options[j].tier != options[i].tier:
                    continue
                trial = [*chosen[:pos], j, *chosen[pos + 1 :]]
                v = variety(trial)
                if v >= floor:
                    swaps.append((1, options[j].score - options[i].score, pos, j, v))
                elif v > current:
                    swaps.append((0, v - current, pos, j, v))
        if not swaps:
            break
        _, _, pos, j, current = max(swaps, key=lambda s: (s[0], s[1], -s[2], -s[3]))
        chosen[pos] = j
    return chosen


@dataclass
class Reranker:
    """The reward model in `path` (reloaded when the file changes), for base model `base_model`."""

    path: Path
    base_model: str
    factor: int = POOL_FACTOR
    _loaded: tuple[float, RewardModel | None] = field(default=(-1.0, None), repr=False)
    # why candidates are not reranked although a reward is in force ("" while they are): for the log, once, and for
    # `/copy status`
    unavailable: str = field(default="", repr=False)
    _unavailable_at: float = field(default=0.0, repr=False)

    def current(self) -> RewardModel | None:
        """The reward now in force, or None (no file yet, or trained on another base model)."""
        try:
            stamp = self.path.stat().st_mtime
        except OSError:
            return None
        if stamp != self._loaded[0]:
            reward = RewardModel.load(self.path)
            if reward is not None and reward.base_model != self.base_model:
                log.warning("reward model at %s was trained on %s, not %s; not reranking", self.path,
                            reward.base_model, self.base_model)  # fmt: skip
                reward = None
            self._loaded = (stamp, reward)
        return self._loaded[1]

    def scores(self, backend: Any, brief: Brief, texts: list[str], registers: list[str]) -> list[float] | None:
        """Reward scores of the texts, or None when there is no reward or the backend cannot give features."""
        reward = self.current()
        features_of = getattr(backend, "features", None)
        if reward is None:
            return None
        if features_of is None:
            self._off("the model backend gives no hidden-state features")
            return None
        prompts = [reward_prompt(brief, r) for r in registers]
        try:
            features = features_of(prompts, texts)
        except ModelSideError as exc:  # a host without /v1/embeddings (vLLM), or one that failed this time
            self._off(f"the model host gave no features ({exc})")
            return None
        self.unavailable = ""
        return reward.score(features)

    def _off(self, why: str) -> None:
        """Note why candidates go unreranked; logged once per reason, shown by `/copy status`."""
        if why != self.unavailable:
            log.warning("%s; candidates are not reranked (docs/gpu-host.md says how to serve features)", why)
        self.unavailable, self._unavailable_at = why, time.monotonic()

    def worth_a_pool(self) -> bool:
        """Whether to write the larger pool: a reward is in force, and features did not fail in the last
        RETRY_FEATURES_S (a host without them would otherwise cost twice the writing on every request)."""
        failed_lately = self.unavailable and time.monotonic() - self._unavailable_at < RETRY_FEATURES_S
        return self.current() is not None and not failed_lately
