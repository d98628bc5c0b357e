"""Fitting the learned reward: how likely the team is to like a copy, read off the base model's hidden states and
its words (the features, and scoring with a fitted reward, are model/writing/reward_model.py). A logistic
regression on those features, trained on the candidates the team liked (label 1) and disliked (label 0), scores
new candidates; the writer writes 2n and shows the n it scores best (model/writing/rerank.py), still subject to
every check. The reward is judged by its AUROC on the retrain's held-out (newest) reactions.

Why the words as well: many tastes are about words (a season, quality, family), and a small model's pooled states
blur a rare word among the rest, while a linear model on word presence learns it from a handful of examples. Why
not always: a taste of tone (a register) is read better from the states alone, and a thousand extra columns on a
few hundred reactions cost it some accuracy. So each retrain chooses, by cross-validation on its training
reactions (never the held-out ones, which judge the result), whether the reward reads the words too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from model.writing.brief import Brief
from model.writing.reward_model import FEATURES, WORD_BUCKETS, WORD_FEATURES, RewardModel, reward_prompt

CV_FOLDS = 5
L2 = 1.0  # weight decay on standardised features: with a few hundred examples and ~2 x hidden features
MIN_AUROC = 0.6  # a reward that ranks held-out reactions worse than this is not used
MIN_CLASS = 5  # liked and disliked held-out candidates needed, each, to judge a reward
MAX_EXAMPLES = 2000  # the newest labelled candidates a reward is trained on


def auroc(scores: list[float], labels: list[int]) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


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
