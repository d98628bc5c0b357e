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
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from model.corpus_standings import ScoreRules, brief_key, standings
from model.training.corpus_scores import score_pairs, sft_weight
from model.training.dataset import NotEnoughFeedback, RetrainDataset, corpus_example, example_context
from model.writing.brief import SUBJECT, brief_fields

HELDOUT_SHARE = 0.2  # of briefs
MIN_PAIRS = 10  # training pairs below which --from-corpus refuses without --force
BEST = 0.75  # standing of the held-out copies whose loss the gate and early stopping watch (the top quarter)


def heldout_brief(row: dict[str, Any], share: float = HELDOUT_SHARE) -> bool:
    """Whether the row's brief is held out: decided by a hash of the brief alone, so it is stable across runs."""
    digest = hashlib.sha256("\x1f".join(brief_key(row)).encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % 1000 < share * 1000


# Fields a scored copy needs before it can be ranked and paired, with how a message names them.
NEEDED = (("age_group", "an age group", "연령대"), ("channel", "a channel", "채널"))


def shortfall(
    rows: list[dict[str, Any]],
    counts: tuple[int, int, int],
    rules: ScoreRules | None = None,
    hints: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Why the corpus gives fewer than MIN_PAIRS training pairs (`counts`: copies ranked, pairs, training pairs), in
    terms of the user's own rows: no scores, scored copies without the age group or channel that ranking needs
    (with the unused column that has it, from `hints`), groups too small to rank, or too few copies of one brief
    far enough apart. (English, Korean)."""
    rules, hints = rules or ScoreRules(), hints or {}
    ranked, pairs, train_pairs = counts
    scored = [r for r in rows if r.get("score") is not None]
    head = f"{train_pairs} training pairs (need {MIN_PAIRS}): "
    korean_head = f"성과로 배울 수 있는 카피 쌍이 {train_pairs}개예요 (필요 {MIN_PAIRS}개). "
    force = "or use --force"
    if not scored:
        fix = hints.get("score") or "import a file with a score column (CTR, 성과, …), or --map COLUMN=score"
        return (
            f"{head}{len(rows)} copies in the corpus, but none has a score: {fix}; {force}",
            f"{korean_head}카피 {len(rows)}개 중 성과 점수가 있는 카피가 없어요. 점수 열(CTR, 성과 등)을 함께 가져와 주세요.",
        )
    for fld, name, korean in NEEDED:
        having = sum(1 for r in scored if r.get(fld))
        if having < len(scored) / 2:
            some = "none has" if having == 0 else f"only {having} have"
            fix = hints.get(fld) or f"import them again with a {fld.replace('_', ' ')} column (--map COLUMN={fld})"
            return (
                f"{head}{len(scored)} scored copies, but {some} {name}: {fix}; {force}",
                f"{korean_head}성과가 있는 카피 {len(scored)}개 중 {korean} 정보가 있는 카피는 {having}개예요. "
                f"{korean} 열을 연결해 다시 가져와 주세요.",
            )
    if ranked < MIN_PAIRS:
        return (
            f"{head}{len(scored)} scored copies, but only {ranked} can be ranked: a copy is ranked among "
            f"{rules.min_group} or more scored copies of its channel and measure; import more scored copies, {force}",
            f"{korean_head}순위를 매길 수 있는 카피가 {ranked}개뿐이에요. 같은 채널의 성과 카피를 더 가져와 주세요.",
        )
    held = f" ({pairs - train_pairs} of them held out or outside the train split)" if pairs > train_pairs else ""
    return (
        f"{head}{len(scored)} scored copies, {ranked} of them ranked, make {pairs} pairs{held}: a pair is two copies "
        f"of one brief (product, event, age group, channel) at least {rules.min_gap:.0%} of their group apart; "
        f"import more scored copies per brief, {force}",
        f"{korean_head}같은 브리프(상품, 행사, 연령대, 채널)의 성과 카피를 더 가져와 주세요.",
    )


def _pair(better: dict[str, Any], worse: dict[str, Any]) -> dict[str, Any]:
    return {
        **example_context(better, better["text"], better.get("register_detected")),
        "chosen": better["text"],
        "rejected": worse["text"],
    }


def build_corpus_dataset(
    rows: list[dict[str, Any]],
    rules: ScoreRules | None = None,
    *,
    force: bool = False,
    hints: Mapping[str, str] | None = None,
) -> RetrainDataset:
    """The from-corpus dataset from every corpus row (all splits); raises NotEnoughFeedback when the corpus has too
    few comparable scored copies to learn from, unless `force`, saying why (`shortfall`; `hints`: field -> what
    would fill it, from the import records)."""
    rules = rules or ScoreRules()
    usable = [r for r in rows if r.get("age_group")]
    standing = standings(usable, rules)
    ranked = dict(zip((id(r) for r in usable), standing, strict=True))
    train = [r for r in usable if r.get("split") == "train" and not heldout_brief(r)]
    pairs = score_pairs(usable, rules, standing)
    train_pairs = [(b, w) for b, w in pairs if not heldout_brief(b) and b["split"] == w["split"] == "train"]
    held_pairs = [(b, w) for b, w in pairs if heldout_brief(b)]
    if not force and len(train_pairs) < MIN_PAIRS:
        found = (sum(x is not None for x in standing), len(pairs), len(train_pairs))
        english, korean = shortfall(rows, found, rules, hints)
        raise NotEnoughFeedback(english, user_message=korean)
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
    counts = {
        "sft": len(data.sft),
        "sft_corpus": len(train),
        "sft_weighted": dict(sorted(weights.items())),
        "corpus_ranked": sum(s is not None for s in ranked.values()),
        "pairs": len(data.pairs),
        "heldout_pairs": len(data.heldout_pairs),
        "heldout_pair_requests": len(held_briefs),
        "heldout_sft": len(data.heldout_sft),
        "heldout_corpus": len(data.heldout_corpus),
    }
    blob = json.dumps([data.sft, data.pairs], ensure_ascii=False, sort_keys=True).encode("utf-8")
    data.summary = {
        "hash": hashlib.sha256(blob).hexdigest()[:16],
        "source": "corpus",
        "counts": counts,
        "rules": asdict(rules),
    }
    return data
