"""A learned reward: how likely the team is to like a copy, read off the base model's hidden states and its words.

Features are the base model's last hidden states over the copy's tokens (adapters switched off, so the features
do not move when the adapter changes), pooled two ways: the mean (what the copy is about) and the maximum (whether
some token stands out: an emoji, a figure, a word of a family), plus the log of its token count (length); then
which tokens and token pairs the copy contains, hashed into WORD_BUCKETS columns. A logistic regression on those,
trained on the candidates the team liked (label 1) and disliked (label 0), scores new candidates; the writer
writes 2n and shows the n it scores best (model/writing/rerank.py), still subject to every check. The reward is
judged by its AUROC on the retrain's held-out (newest) reactions.

Why the words as well: many tastes are about words (a season, quality, family), and a small model's pooled states
blur a rare word among the rest, while a linear model on word presence learns it from a handful of examples. Why
not always: a taste of tone (a register) is read better from the states alone, and a thousand extra columns on a
few hundred reactions cost it some accuracy. So each retrain chooses, by cross-validation on its training
reactions (never the held-out ones, which judge the result), whether the reward reads the words too.
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
CV_FOLDS = 5
L2 = 1.0  # weight decay on standardised features: with a few hundred examples and ~2 x hidden features
FEATURE_BATCH = 32
MIN_AUROC = 0.6  # a reward that ranks held-out reactions worse than this is not used
MIN_CLASS = 5  # liked and disliked held-out candidates needed, each, to judge a reward
MAX_EXAMPLES = 2000  # the newest labelled candidates a reward is trained on


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
        for prompt, text in zip(prompts[start : start + FEATURE_BATCH], texts[start : start + FEATURE_BATCH],
                                strict=True):  # fmt: skip
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
            out.append([*copy.mean(0).tolist(), *copy.max(0).values.tolist(), math.log1p(len(c_ids)),
                        *word_columns(c_ids)])  # fmt: skip
    return out


def auroc(scores: list[float], labels: list[int]) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


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


def feature_sets(width: int) -> list[tuple[str, int]]:
    """The feature sets a reward may read, as (name, leading columns): the hidden states alone, and with the words
    (rows of other widths, as a scripted backend gives, are one set)."""
    if width <= WORD_BUCKETS:
        return [(FEATURES, width)]
    return [(FEATURES, width - WORD_BUCKETS), (WORD_FEATURES, width)]


def cross_validated_auroc(features: list[list[float]], labels: list[int], folds: int = CV_FOLDS) -> float | None:
    """The mean AUROC of rewards trained on all but one of `folds` consecutive folds and scored on the one left;
    None when no fold has both classes on both sides. Consecutive, because examples come in request order and the
    candidates of one request share a brief: split across folds, they would flatter whichever set reads words."""
    found = []
    for k in range(folds):
        test = set(range(k * len(labels) // folds, (k + 1) * len(labels) // folds))
        train_x = [row for i, row in enumerate(features) if i not in test]
        train_y = [y for i, y in enumerate(labels) if i not in test]
        test_y = [labels[i] for i in sorted(test)]
        if len(set(train_y)) < 2 or len(set(test_y)) < 2:
            continue
        fold = train_reward(train_x, train_y, base_model="")
        found.append(auroc(fold.score([features[i] for i in sorted(test)]), test_y))
    return sum(a for a in found if a is not None) / len(found) if found else None


def choose_features(features: list[list[float]], labels: list[int]) -> tuple[str, int, dict[str, float | None]]:
    """The feature set whose cross-validated AUROC on the training reactions is highest (the smaller set on a tie
    or when it cannot be told): its name, its width and every set's figure."""
    sets = feature_sets(len(features[0]))
    if len(sets) == 1:
        return *sets[0], {}
    figures = {name: cross_validated_auroc([row[:width] for row in features], labels) for name, width in sets}
    name, width = max(sets, key=lambda s: (figures[s[0]] or 0.0, -s[1]))
    return name, width, {k: _rounded(v) for k, v in figures.items()}


def train_reward(features: list[list[float]], labels: list[int], *, base_model: str, l2: float = L2) -> RewardModel:
    """Fit the logistic regression (L-BFGS, class-balanced, L2 on the weights)."""
    import torch

    x = torch.tensor(features, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.float64)
    mean = x.mean(0)
    scale = x.std(0).clamp(min=1e-6)
    z = (x - mean) / scale
    positives = float(y.sum())
    weight = torch.where(y > 0, len(y) / (2 * max(positives, 1.0)), len(y) / (2 * max(len(y) - positives, 1.0)))
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Any:
        optimiser.zero_grad()
        logits = z @ w + b
        loss = (weight * torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")).mean()
        loss = loss + l2 * (w * w).sum() / len(y)
        loss.backward()
        return loss

    optimiser.step(closure)
    return RewardModel(w.detach().tolist(), float(b.detach()), mean.tolist(), scale.tolist(), base_model,
                       trained_on=len(labels))  # fmt: skip


def fit_reward(
    features_of: Any,
    train: list[dict[str, Any]],
    heldout: list[dict[str, Any]],
    *,
    base_model: str,
    current: RewardModel | None = None,
) -> tuple[RewardModel | None, dict[str, Any]]:
    """Train a reward on labelled examples ({brief, register, completion, label}: model/training/dataset.py) and
    choose what reranks from now on: the new reward or the current one, whichever ranks the held-out examples better, if that is at least MIN_AUROC;
    else none. The chosen new reward is refitted on all the examples. Returns (reward or None, what happened)."""
    train, heldout = train[-MAX_EXAMPLES:], heldout[-MAX_EXAMPLES:]
    labels = [int(bool(e["label"])) for e in train]
    held_labels = [int(bool(e["label"])) for e in heldout]
    info: dict[str, Any] = {"train": len(train), "heldout": len(heldout), "heldout_liked": sum(held_labels),
                            "auroc_new": None, "auroc_current": None, "chosen": "none"}  # fmt: skip
    if len(set(labels)) < 2:
        info["why"] = "the training reactions are all of one kind"
        return None, info

    def feats(rows: list[dict[str, Any]]) -> list[list[float]]:
        prompts = [reward_prompt(Brief(**e["brief"]), e["register"]) for e in rows]
        return features_of(prompts, [e["completion"] for e in rows]) if rows else []

    train_x, held_full = feats(train), feats(heldout)
    chosen, width, info["cv_auroc"] = choose_features(train_x, labels)
    info["features"] = chosen
    train_x, held_x = [row[:width] for row in train_x], [row[:width] for row in held_full]
    new = dataclasses.replace(train_reward(train_x, labels, base_model=base_model), features=chosen)
    if min(sum(held_labels), len(held_labels) - sum(held_labels)) < MIN_CLASS:
        info["why"] = f"fewer than {MIN_CLASS} liked or disliked held-out candidates to judge a reward on"
        return None, info
    info["auroc_new"] = _rounded(auroc(new.score(held_x), held_labels))
    if current is not None and current.base_model == base_model:
        info["auroc_current"] = _rounded(auroc(current.score(held_full), held_labels))
    best = max(("new", info["auroc_new"]), ("current", info["auroc_current"]), key=lambda kv: kv[1] or 0.0)
    if (best[1] or 0.0) < MIN_AUROC:
        info["why"] = f"no reward reaches AUROC {MIN_AUROC} on the held-out reactions"
        return None, info
    info["chosen"] = best[0]
    if best[0] == "current":
        assert current is not None
        return dataclasses.replace(current, auroc=best[1], heldout=len(heldout)), info
    refit = train_reward(train_x + held_x, labels + held_labels, base_model=base_model)
    return dataclasses.replace(refit, features=chosen, auroc=best[1], heldout=len(heldout)), info


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
