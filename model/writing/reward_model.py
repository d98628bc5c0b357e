"""The scoring half of the learned reward (fitting it is model/training/reward.py): the features a copy is scored
on and the logistic regression that scores them, which the writer reranks with (model/writing/rerank.py).

Features are the base model's last hidden states over the copy's tokens (adapters switched off, so the features
do not move when the adapter changes), pooled two ways: the mean (what the copy is about) and the maximum (whether
some token stands out: an emoji, a figure, a word of a family), plus the log of its token count (length); then
which tokens and token pairs the copy contains, hashed into WORD_BUCKETS columns.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from model.writing.brief import Brief
from model.writing.prompt import plain_prompt, prompt_ids, prompt_register

FEATURES = "mean+max+log_tokens/v1"  # the hidden-state columns, which every row starts with
WORD_BUCKETS = 1024  # hashed token and token-pair presence columns after them (any vocabulary size)
WORD_FEATURES = f"{FEATURES}+words{WORD_BUCKETS}/v2"
FEATURE_BATCH = 32


def reward_prompt(brief: Brief, register: str) -> str:
    """The context a copy is scored in: the plain prompt for its brief (without notes) and fitting register, for
    any base model; exactly the prompt of the retrain's labelled examples, so training and serving agree."""
    return plain_prompt(dataclasses.replace(brief, notes=""), prompt_register(brief.age_group, register))


def word_columns(ids: list[int]) -> list[float]:
    """1.0 in the bucket of each token and each pair of neighbouring tokens the copy contains, else 0.0."""
    row = [0.0] * WORD_BUCKETS
    for token in ids:
        row[token % WORD_BUCKETS] = 1.0
    for first, second in itertools.pairwise(ids):
        row[(first * 1_000_003 + second) % WORD_BUCKETS] = 1.0  # a large odd multiplier spreads the pairs
    return row


def copy_features(model: Any, tokenizer: Any, prompts: list[str], texts: list[str]) -> list[list[float]]:
    """Pooled last hidden states over each copy's tokens (after its prompt), log(1 + token count), and the word
    columns of its tokens."""
    import torch

    device = next(model.parameters()).device
    out: list[list[float]] = []
    for start in range(0, len(texts), FEATURE_BATCH):
        rows, spans = [], []
        for prompt, text in zip(
            prompts[start : start + FEATURE_BATCH], texts[start : start + FEATURE_BATCH], strict=True
        ):
            c_ids = tokenizer(text, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
            rows.append(prompt_ids(tokenizer, prompt) + c_ids)
            spans.append(c_ids)
        width = max(len(r) for r in rows)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)  # left padding
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
        with torch.inference_mode():
            hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1].float()
        for i, c_ids in enumerate(spans):
            copy = hidden[i, width - len(c_ids) :]
            out.append(
                [*copy.mean(0).tolist(), *copy.max(0).values.tolist(), math.log1p(len(c_ids)), *word_columns(c_ids)]
            )
    return out


@dataclass(frozen=True)
class RewardModel:
    """A logistic regression on standardised features; what it was trained on and how well it ranks held out."""

    weights: list[float]
    bias: float
    mean: list[float]
    scale: list[float]
    base_model: str
    features: str = FEATURES
    trained_on: int = 0
    auroc: float | None = None  # on the retrain's held-out reactions
    heldout: int = 0

    def score(self, features: list[list[float]]) -> list[float]:
        """The log-odds that the team likes each copy, read from the leading columns it was trained on (a reward
        of the hidden states alone ignores the word columns)."""
        width = len(self.weights)
        return [
            self.bias
            + sum(w * (x - m) / s for w, x, m, s in zip(self.weights, row[:width], self.mean, self.scale, strict=True))
            for row in features
        ]

    def save(self, path: Path) -> None:
        """Write atomically (a serving writer may be reading the old file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, staging = tempfile.mkstemp(prefix=".reward-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(self), handle)
        os.replace(staging, path)

    @classmethod
    def load(cls, path: Path) -> RewardModel | None:
        """The reward saved at `path`, or None when there is none (or it is unreadable)."""
        try:
            raw = json.loads(path.read_text("utf-8"))
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            return None
