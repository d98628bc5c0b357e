"""The dataset of `copybot retrain --from-corpus`: an adapter from the team's scored corpus alone, no reactions.

- SFT: train-split copies, each as often as its standing among comparable copies says (model/training/corpus_scores.py:
  3 for the top quarter, 2 for the third, 1 for the bottom half, 2 when unscored or without a group).
- Pairs (DPO): two copies of one brief and measure at least `min_gap` apart in standing, both in the train split.
- Held out by brief: a stable fifth of the briefs (by a hash of product, event, age group and channel) never
  trains; their pairs are the gate's preference test ("does the adapter prefer the copy that performed better,
  on briefs it never saw?") and their top-quarter copies its validation loss (what early stopping watches, as
  held-out liked copies are for feedback). The validation split measures forgetting (corpus loss), as in every
  retrain.

Standings are computed once over every scored copy: a group's spread is a property of the archive, and a held-out
brief's copies are only ever compared with each other.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict
from typing import Any

from model.training.corpus_scores import ScoreRules, brief_key, score_pairs, sft_weight, standings
from model.training.dataset import NotEnoughFeedback, RetrainDataset, corpus_example, example_context
from model.writing.brief import SUBJECT, brief_fields

HELDOUT_SHARE = 0.2  # of briefs
MIN_PAIRS = 10  # training pairs below which --from-corpus refuses without --force
BEST = 0.75  # standing of the held-out copies whose loss the gate and early stopping watch (the top quarter)


def heldout_brief(row: dict[str, Any], share: float = HELDOUT_SHARE) -> bool:
    """Whether the row's brief is held out: decided by a hash of the brief alone, so it is stable across runs."""
    digest = hashlib.sha256("\x1f".join(brief_key(row)).encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % 1000 < share * 1000


def _pair(better: dict[str, Any], worse: dict[str, Any]) -> dict[str, Any]:
    return {**example_context(better, better["text"], better.get("register_detected")), "chosen": better["text"],
            "rejected": worse["text"]}  # fmt: skip


def build_corpus_dataset(
    rows: list[dict[str, Any]], rules: ScoreRules | None = None, *, force: bool = False
) -> RetrainDataset:
    """The from-corpus dataset from every corpus row (all splits); raises NotEnoughFeedback when the corpus has too
    few comparable scored copies to learn from, unless `force`."""
    rules = rules or ScoreRules()
    usable = [r for r in rows if r.get("age_group")]
    standing = standings(usable, rules)
    ranked = dict(zip((id(r) for r in usable), standing, strict=True))
    train = [r for r in usable if r.get("split") == "train" and not heldout_brief(r)]
    pairs = score_pairs(usable, rules, standing)
    train_pairs = [(b, w) for b, w in pairs if not heldout_brief(b) and b["split"] == w["split"] == "train"]
    held_pairs = [(b, w) for b, w in pairs if heldout_brief(b)]
    if not force and len(train_pairs) < MIN_PAIRS:
        scored = sum(s is not None for s in ranked.values())
        raise NotEnoughFeedback(
            f"the corpus has {scored} scored copies that can be ranked and {len(train_pairs)} training pairs "
            f"(need {MIN_PAIRS}): import more scored copies, several per brief (CTR, 성과, …), or use --force",
            user_message=f"성과가 있는 카피가 부족해요 (비교 가능한 쌍 {len(train_pairs)}개, 필요 {MIN_PAIRS}개).",
        )
    sft = [corpus_example(r) for r in train for _ in range(sft_weight(ranked[id(r)]))]
    held_briefs = {brief_key(b): b for b, _ in held_pairs}
    data = RetrainDataset(
        sft=sft,
        pairs=[_pair(b, w) for b, w in train_pairs],
        kto=[],
        kto_weights={"desirable_weight": 1.0, "undesirable_weight": 1.0},
        heldout_sft=[corpus_example(r) for r in usable if heldout_brief(r) and (ranked[id(r)] or 0) >= BEST],
        heldout_pairs=[_pair(b, w) for b, w in held_pairs],
        heldout_briefs=[brief_fields(b, SUBJECT) for b in held_briefs.values()],
        summary={},
        heldout_corpus=[corpus_example(r) for r in usable if r.get("split") == "validation"],
        replay=[corpus_example(r) for r in train][:256],
    )
    weights = Counter(sft_weight(ranked[id(r)]) for r in train)
    counts = {"sft": len(data.sft), "sft_corpus": len(train), "sft_weighted": dict(sorted(weights.items())),
              "corpus_ranked": sum(s is not None for s in ranked.values()), "pairs": len(data.pairs),
              "heldout_pairs": len(data.heldout_pairs), "heldout_pair_requests": len(held_briefs),
              "heldout_sft": len(data.heldout_sft), "heldout_corpus": len(data.heldout_corpus)}  # fmt: skip
    blob = json.dumps([data.sft, data.pairs], ensure_ascii=False, sort_keys=True).encode("utf-8")
    data.summary = {"hash": hashlib.sha256(blob).hexdigest()[:16], "source": "corpus", "counts": counts,
                    "rules": asdict(rules)}  # fmt: skip
    return data
