"""The retraining dataset: a pure function from feedback and corpus rows to SFT, preference and KTO examples.

- SFT: winners, positively rated candidates and human edits (edits repeated most), plus corpus replay at a
  set ratio so the model keeps its general voice instead of collapsing onto what was liked last week.
- Pairs (DPO): within a request, each better candidate against each worse one; an edit beats its original.
- Real results are the strongest signal (model/training/outcomes.py): of two sent copies of a request, the one
  whose CTR was better beyond noise is a pair repeated `outcome_pair_weight` times (and no emoji pair between the
  two is kept);
  a sent copy that won its request's test (beat another and lost to none), or stands above the middle of
  comparable sent copies, appears `outcome_weight` times in SFT, more than a winner. A copy marked as used counts
  as liked until its results come; then the results decide.
- KTO: rated candidates labelled desirable or undesirable, with class weights that balance the two.
- Held out: the newest share of requests (by time), and the corpus validation split (kept apart: it measures
  forgetting, while held-out feedback measures learning). No held-out request trains.

Examples carry the brief and the register they are prompted under, not a rendered prompt: `render_dataset` renders
them with the tokenizer of the model that trains or scores them (model/writing/prompt.py), so the dataset a bot builds
trains any base model, on a GPU host or here, on the prompt that model is served.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from model.corpus_standings import standings
from model.errors import ModelSideError
from model.training.corpus_scores import sft_weight
from model.training.feedback import RatedCandidate, RatedRequest
from model.training.outcomes import compare, score_row
from model.writing.brief import Brief
from model.writing.prompt import end_of_copy, has_chat_template, prompt_register, render_prompt
from model.writing.tone import detect_register

Example = dict[str, Any]
REPLAY_ANCHOR_COPIES = 256  # corpus copies the preference stage's anchor draws its batches from


class NotEnoughFeedback(ModelSideError):
    """Too little feedback to train on; the message says how much there is and how much is needed."""


@dataclass(frozen=True)
class DatasetConfig:
    """How the dataset is assembled. Every field has a help text in `metadata`."""

    replay_ratio: float = field(default=1.0, metadata={"help": "corpus replay examples per feedback SFT example"})
    edit_weight: int = field(default=3, metadata={"help": "times each human edit appears in SFT"})
    winner_weight: int = field(default=2, metadata={"help": "times each winner appears in SFT"})
    positive_weight: int = field(default=1, metadata={"help": "times each liked candidate appears in SFT"})
    outcome_weight: int = field(
        default=3, metadata={"help": "times a sent copy that did well in real results (won its request's test, or "
                                     "top half of comparable sends) appears in SFT"})  # fmt: skip
    outcome_pair_weight: int = field(
        default=3, metadata={"help": "times each pair decided by real results appears in DPO (emoji pairs: once)"}
    )
    heldout_share: float = field(default=0.2, metadata={"help": "newest share of rated requests held out"})
    min_liked: int = field(default=10, metadata={"help": "liked candidates and edits needed to train"})
    min_requests: int = field(default=5, metadata={"help": "rated requests needed to train"})
    seed: int = field(default=13, metadata={"help": "shuffling and replay sampling seed"})

    def __post_init__(self) -> None:
        if not 0 <= self.replay_ratio <= 10:
            raise ValueError("replay_ratio must be between 0 and 10")
        if not 0 < self.heldout_share < 1:
            raise ValueError("heldout_share must be between 0 and 1")
        if min(self.edit_weight, self.winner_weight, self.positive_weight, self.outcome_weight,
               self.outcome_pair_weight) < 1:  # fmt: skip
            raise ValueError("weights must be at least 1")


@dataclass
class RetrainDataset:
    """Everything one retrain needs, plus a summary for the registry and the report."""

    sft: list[Example]
    pairs: list[Example]
    kto: list[Example]
    kto_weights: dict[str, float]
    heldout_sft: list[Example]
    heldout_pairs: list[Example]
    heldout_briefs: list[dict[str, Any]]
    summary: dict[str, Any]
    heldout_corpus: list[Example] = field(default_factory=list)
    heldout_kto: list[Example] = field(default_factory=list)  # held-out rated candidates: the reward's test set
    replay: list[Example] = field(default_factory=list)  # the corpus copies replayed (also in `sft`)

    @property
    def eval_sft(self) -> list[Example]:
        """What early stopping watches: held-out liked copies and edits (what training should get better at), or
        the corpus validation split when no feedback is held out. Forgetting is the gate's corpus-loss check."""
        return self.heldout_sft or self.heldout_corpus


def example_context(brief: dict[str, Any], text: str, register: str | None = None) -> dict[str, Any]:
    """What an example's prompt is rendered from: the brief (without notes) and the register it is prompted under."""
    return {"brief": {"product": brief["product"], "event": brief.get("event", ""), "age_group": brief["age_group"],
                      "channel": brief.get("channel") or "sns"},
            "register": prompt_register(brief["age_group"], register or detect_register(text))}  # fmt: skip


def with_prompts(examples: list[Example], tokenizer: Any) -> list[Example]:
    """Examples as the trainers and the gate read them: each brief rendered into the prompt this tokenizer's model
    is served (model/writing/prompt.py), and under a chat template each copy ended with the end-of-turn marker that
    generation stops at. Other fields (completion, chosen, rejected, label) are kept."""
    end = end_of_copy(tokenizer) if has_chat_template(tokenizer) else ""
    out = []
    for e in examples:
        if "brief" not in e:  # rendered already (a client of the jobs API that sends prompts)
            out.append(e)
            continue
        rendered = {k: v for k, v in e.items() if k not in ("brief", "register")}
        brief = {**e["brief"], "examples": tuple(e["brief"].get("examples", ()))}  # JSON gives a list
        rendered["prompt"] = render_prompt(Brief(**brief), e["register"], tokenizer)
        for key in ("completion", "chosen", "rejected"):
            if key in rendered and end:
                rendered[key] += end
        out.append(rendered)
    return out


EXAMPLE_FIELDS = ("sft", "pairs", "kto", "heldout_sft", "heldout_pairs", "heldout_corpus", "heldout_kto", "replay")


def map_briefs(data: RetrainDataset, change: Callable[[dict[str, Any]], dict[str, Any]]) -> RetrainDataset:
    """The dataset with every example's brief, and every held-out brief, passed through `change`: how serving's
    additions to a brief reach the examples it trains on (the brand voice's examples, model/writing/voice.py; a framed
    channel's body budget, model/writing/frame.py), so that a model is trained on the prompt it is served."""
    changed: dict[str, Any] = {
        name: [{**e, "brief": change(e["brief"])} if "brief" in e else e for e in getattr(data, name)]
        for name in EXAMPLE_FIELDS
    }
    return dataclasses.replace(data, **changed, heldout_briefs=[change(b) for b in data.heldout_briefs])


def render_dataset(data: RetrainDataset, tokenizer: Any) -> RetrainDataset:
    """The dataset with every example rendered for `tokenizer` (`with_prompts`); the summary is unchanged."""
    rendered: dict[str, Any] = {name: with_prompts(getattr(data, name), tokenizer) for name in EXAMPLE_FIELDS}
    return dataclasses.replace(data, **rendered)


def example_texts(examples: list[Example]) -> list[str]:
    """Every text of rendered examples (prompts and copies): what a trimmed output layer must keep (model/vocab.py)."""
    return [e[k] for e in examples for k in ("prompt", "completion", "chosen", "rejected") if k in e]


def _outcome_pairs(request: RatedRequest) -> list[tuple[RatedCandidate, RatedCandidate]]:
    """(better, worse) sent copies of one request whose results differ beyond noise (model/training/outcomes.py)."""
    sent = [c for c in request.candidates if c.outcome is not None]
    pairs = []
    for i, a in enumerate(sent):
        for b in sent[i + 1 :]:
            verdict = compare(a.outcome, b.outcome)  # type: ignore[arg-type]
            if verdict:
                pairs.append((a, b) if verdict > 0 else (b, a))
    return pairs


Standings = dict[int, float | None]  # id() of a sent candidate -> its standing among comparable sends


def outcome_standings(requests: list[RatedRequest]) -> Standings:
    """Each sent copy's standing among comparable sent copies (model/training/corpus_scores.py's rules on its CTR)."""
    sent = [(c, r.brief) for r in requests for c in r.candidates if c.outcome is not None]
    rows = [score_row(c.outcome, brief) for c, brief in sent]  # type: ignore[arg-type]
    return {id(c): s for (c, _), s in zip(sent, standings(rows), strict=True)}


def _sft_from(request: RatedRequest, config: DatasetConfig, standing_of: Standings | None = None) -> list[Example]:
    out: list[Example] = []
    standing_of = standing_of or {}
    decided = _outcome_pairs(request)
    # won its request's test: beat another sent copy and lost to none
    winners = {id(better) for better, _ in decided} - {id(worse) for _, worse in decided}
    for c in request.candidates:
        standing = standing_of.get(id(c))
        strong = id(c) in winners or (standing is not None and standing > 0.5)
        own = config.winner_weight if c.win else config.positive_weight if c.liked else 0
        sent_edit = c.copy_sent if strong and c.copy_sent != c.text else None  # an edit went out and did well
        if strong and sent_edit is None:
            own = max(own, config.outcome_weight)
        out += [{**example_context(request.brief, c.text, c.register), "completion": c.text}] * own
        edits = list(c.edits) + ([sent_edit] if sent_edit and sent_edit not in c.edits else [])
        for edit in edits:
            weight = max(config.edit_weight, config.outcome_weight) if edit == sent_edit else config.edit_weight
            out += [{**example_context(request.brief, edit), "completion": edit}] * weight
    return out


def _pairs_from(request: RatedRequest, outcome_weight: int = 1) -> list[Example]:
    """Outcome pairs (each `outcome_weight` times), then emoji pairs except between two copies that real results
    ranked already, then each edit over its original."""
    pairs = []
    decided = _outcome_pairs(request)
    for better, worse in decided:
        register = better.register if better.copy_sent == better.text else None
        pairs += [{**example_context(request.brief, better.copy_sent, register),
                   "chosen": better.copy_sent, "rejected": worse.copy_sent}] * outcome_weight  # fmt: skip
    settled = {frozenset((id(a), id(b))) for a, b in decided}
    ranked = sorted(request.candidates, key=lambda c: -c.value)
    for i, better in enumerate(ranked):
        for worse in ranked[i + 1 :]:
            if better.value > worse.value and frozenset((id(better), id(worse))) not in settled:
                pairs.append({**example_context(request.brief, better.text, better.register),
                              "chosen": better.text, "rejected": worse.text})  # fmt: skip
    for c in request.candidates:
        for edit in c.edits:
            if edit != c.text:
                pairs.append({**example_context(request.brief, edit), "chosen": edit, "rejected": c.text})
    return pairs


def _kto_from(request: RatedRequest) -> list[Example]:
    out = []
    for c in request.candidates:
        if c.liked or c.disliked:
            out.append({**example_context(request.brief, c.text, c.register), "completion": c.text, "label": c.liked})
        for edit in c.edits:
            out.append({**example_context(request.brief, edit), "completion": edit, "label": True})
    return out


def corpus_example(row: dict[str, Any]) -> Example:
    return {**example_context(row, row["text"], row.get("register_detected")), "completion": row["text"]}


def _weighted_replay(rows: list[dict[str, Any]]) -> list[Example]:
    """Corpus copies to replay, each as often as its score's standing says (model/training/corpus_scores.py), so
    that the weekly loop keeps what a scored corpus taught; an unscored corpus replays every copy once."""
    weights = [sft_weight(s) for s in standings(rows)]
    if len(set(weights)) <= 1:
        return [corpus_example(row) for row in rows]
    return [corpus_example(row) for row, weight in zip(rows, weights, strict=True) for _ in range(weight)]


def _kto_weights(kto: list[Example]) -> dict[str, float]:
    """Weights so that desirable and undesirable examples count equally in KTO's loss."""
    good = sum(e["label"] for e in kto)
    bad = len(kto) - good
    if not good or not bad:
        return {"desirable_weight": 1.0, "undesirable_weight": 1.0}
    return {"desirable_weight": round(len(kto) / (2 * good), 4), "undesirable_weight": round(len(kto) / (2 * bad), 4)}


def build_dataset(
    requests: list[RatedRequest],
    corpus_train: list[dict[str, Any]],
    corpus_validation: list[dict[str, Any]],
    config: DatasetConfig | None = None,
    *,
    force: bool = False,
) -> RetrainDataset:
    """Assemble the retraining data; raise `NotEnoughFeedback` below the minimums unless `force`."""
    config = config or DatasetConfig()
    rated = sorted((r for r in requests if any(c.liked or c.disliked or c.edits or c.sent for c in r.candidates)),
                   key=lambda r: (r.created_at, r.request_id))  # fmt: skip
    # a sent copy's results count as feedback, good or bad
    liked = sum(c.liked or c.outcome is not None for r in rated for c in r.candidates)
    liked += sum(len(c.edits) for r in rated for c in r.candidates)
    if not force and (liked < config.min_liked or len(rated) < config.min_requests):
        raise NotEnoughFeedback(
            f"not enough feedback (have {liked} liked candidates, edits or results in {len(rated)} rated requests, "
            f"need {config.min_liked} in {config.min_requests}); use --force to train anyway",
            user_message=f"아직 반응이 부족해요 (좋아요·수정 {liked}개, 필요 {config.min_liked}개).",
        )
    held = math.ceil(len(rated) * config.heldout_share) if len(rated) > 1 else 0
    train_requests, heldout_requests = rated[: len(rated) - held], rated[len(rated) - held :]
    rng = random.Random(config.seed)
    standing_of = outcome_standings(train_requests)
    feedback_sft = [e for r in train_requests for e in _sft_from(r, config, standing_of)]
    replay_pool = _weighted_replay([row for row in corpus_train if row.get("age_group")])
    rng.shuffle(replay_pool)
    replay_count = round(len(feedback_sft) * config.replay_ratio) if feedback_sft else len(replay_pool)
    replay = [replay_pool[i % len(replay_pool)] for i in range(replay_count)] if replay_pool else []
    sft = feedback_sft + replay
    rng.shuffle(sft)
    kto = [e for r in train_requests for e in _kto_from(r)]
    heldout_pairs = [_pairs_from(r) for r in heldout_requests]
    dataset = RetrainDataset(
        sft=sft,
        pairs=[p for r in train_requests for p in _pairs_from(r, config.outcome_pair_weight)],
        kto=kto,
        kto_weights=_kto_weights(kto),
        heldout_sft=[e for r in heldout_requests for e in _sft_from(r, config)],
        heldout_pairs=[p for pairs in heldout_pairs for p in pairs],
        heldout_briefs=[r.brief for r in heldout_requests],
        summary={},
        heldout_corpus=[corpus_example(row) for row in corpus_validation if row.get("age_group")],
        heldout_kto=[e for r in heldout_requests for e in _kto_from(r)],
        replay=replay_pool[:REPLAY_ANCHOR_COPIES],
    )
    dataset.summary = _summary(
        dataset,
        config,
        train_requests,
        heldout_requests,
        len(feedback_sft),
        len(replay),
        pair_requests=sum(bool(pairs) for pairs in heldout_pairs),
        outcome_pairs=sum(len(_outcome_pairs(r)) for r in train_requests),
    )
    return dataset


def _summary(
    d: RetrainDataset,
    config: DatasetConfig,
    train: list[RatedRequest],
    held: list[RatedRequest],
    feedback: int,
    replay: int,
    *,
    pair_requests: int,
    outcome_pairs: int,
) -> dict[str, Any]:
    counts = {
        "train_requests": len(train),
        "heldout_requests": len(held),
        "sft_feedback": feedback,
        "sft_replay": replay,
        "sft": len(d.sft),
        "pairs": len(d.pairs),
        "outcome_pairs": outcome_pairs,  # decided by real results, before their repetition in `pairs`
        "sent_copies": sum(c.sent for r in train for c in r.candidates),
        "kto": len(d.kto),
        "heldout_sft": len(d.heldout_sft),
        "heldout_pairs": len(d.heldout_pairs),
        # the gate's preference check counts these, not pairs: a request's pairs share its copies and its rater
        "heldout_pair_requests": pair_requests,
        "heldout_corpus": len(d.heldout_corpus),
        "heldout_kto": len(d.heldout_kto),
    }
    blob = json.dumps([d.sft, d.pairs, d.kto], ensure_ascii=False, sort_keys=True).encode("utf-8")
    return {"hash": hashlib.sha256(blob).hexdigest()[:16], "counts": counts, "config": asdict(config),
            "heldout_request_ids": [r.request_id for r in held]}  # fmt: skip


DATASET_FIELDS = ("sft", "pairs", "kto", "kto_weights", "heldout_sft", "heldout_pairs", "heldout_briefs", "summary",
                  "heldout_corpus", "heldout_kto", "replay")  # fmt: skip
OPTIONAL_FIELDS = ("heldout_corpus", "heldout_kto", "replay")  # older clients do not send them


def dataset_to_json(data: RetrainDataset) -> dict[str, Any]:
    """The dataset as plain JSON (what a fine-tuning job uploads)."""
    return asdict(data)


def dataset_from_json(raw: Any) -> RetrainDataset:
    """Rebuild a dataset sent as JSON; a missing or mistyped part raises ValueError naming it."""
    if not isinstance(raw, dict):
        raise ValueError("the dataset must be a JSON object with the fields of RetrainDataset")
    missing = [name for name in DATASET_FIELDS if name not in raw and name not in OPTIONAL_FIELDS]
    if missing:
        raise ValueError(f"the dataset lacks {', '.join(missing)}")
    for name in DATASET_FIELDS:
        value = raw.get(name, [] if name in OPTIONAL_FIELDS else None)
        expected = dict if name in ("kto_weights", "summary") else list
        if not isinstance(value, expected) or (expected is list and not all(isinstance(x, dict) for x in value)):
            raise ValueError(f"dataset field {name!r} must be a {'object' if expected is dict else 'list of objects'}")
    if not raw["sft"]:
        raise ValueError("the dataset has no SFT examples to train on")
    return RetrainDataset(**{name: raw[name] for name in DATASET_FIELDS if name in raw})
