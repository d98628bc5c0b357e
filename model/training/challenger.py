"""Train a challenger (a new adapter that may replace the active one), score it against the active adapter and
the base model, gate it, and save it.

This is the heavy half of a retrain, shared by the in-process `copybot retrain` and the GPU host's fine-tuning
jobs (which run it in a child process). It touches only model files: recording the result in the store and
promoting it are the caller's business.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.training.dataset import RetrainDataset, example_texts, render_dataset
from model.training.evaluate import (
    GateConfig,
    GateDecision,
    Metrics,
    corpus_spans,
    evaluate_engine,
    gate,
    generation_metrics,
    preference_gain,
)
from model.training.gate_scores import GateScores, folder_fingerprint, scoring_context
from model.training.registry import SCORES_DIR, AdapterRegistry
from model.training.reward import fit_reward
from model.training.train import TrainConfig
from model.writing.reward_model import RewardModel
from model.writing.writer import CopyWriter

DEFAULT_BRIEF = {"product": "린넨 셔츠", "event": "여름 세일", "channel": "sns"}
# Factors tried on the sampling temperature, smallest first (0.8 -> 0.85 ... 1.0 at the writer's default).
TEMPERATURE_STEPS = (1.0625, 1.125, 1.1875, 1.25)
GATE_CANDIDATES = 5  # candidates per brief and age group the gate generates (evaluate.generation_metrics)
REWARD_FILE = "reward.json"  # the reward model trained with a version, when one was chosen


@dataclass(frozen=True)
class ChallengerSpec:
    """What to train: the base (a loadable path and the name it is recorded under), the parent adapter, settings."""

    base_path: str
    base_model: str
    parent: Path | None = None  # the active adapter: what the new one is scored against and would replace
    parent_version: str = ""
    # where training starts when not from the parent: a challenger whose trial ended undecided but leaning its way
    start: Path | None = None
    start_version: str = ""
    config: TrainConfig = field(default_factory=TrainConfig)
    gate_config: GateConfig = field(default_factory=GateConfig)
    eval_briefs: int = 8  # held-out briefs generated for at every age group, per model
    reward: bool = True  # also train a reward model for reranking (model/training/reward.py)
    current_reward: Path | None = None  # the reward in force, to compare the new one with


@dataclass(frozen=True)
class ChallengerResult:
    """The saved version, the gate's decision with its reasons, and the metrics of every model scored."""

    version: str
    path: Path
    promote: bool
    reasons: list[str]
    old: dict[str, float]
    new: dict[str, float]
    base: dict[str, float]
    info: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields."""
        out = dataclasses.asdict(self)
        out["path"] = str(self.path)
        return out


def train_challenger(
    spec: ChallengerSpec,
    data: RetrainDataset,
    corpus_texts: list[str],
    registry: AdapterRegistry,
    *,
    on_event: Callable[[str], None] = lambda _: None,
) -> ChallengerResult:
    """Train on `data`, score old/new/base on the held-out set, gate, and save the new version atomically.

    The version is saved whether or not it is promoted (a kept version documents what was tried and why not)."""
    from transformers import AutoTokenizer

    from model.training.train import train_adapter
    from model.writing.engine import LocalEngine

    counts = data.summary.get("counts", {})
    start, start_version = (spec.start, spec.start_version) if spec.start else (spec.parent, spec.parent_version)
    on_event(f"training from {start_version or 'the base model'} on {counts or len(data.sft)} examples")
    timings = Timings()
    with timings("train"):
        model, result = train_adapter(spec.base_path, data, config=spec.config, parent_adapter=start)
    timings.seconds.update(result.stage_seconds)
    on_event(
        f"trained in {result.seconds:.0f} s (SFT then {result.preference})"
        + (f"; {result.stopped}" if result.stopped else "")
    )
    spans = corpus_spans(corpus_texts)
    briefs = panel_briefs(data, spec.eval_briefs)
    # one load of the base weights, adapters swapped on it; a trimmed output layer keeps every token scored
    tokenizer = AutoTokenizer.from_pretrained(str(spec.base_path))
    scored = render_dataset(data, tokenizer)  # held-out examples in the prompt the model is served
    texts = example_texts(scored.heldout_sft + scored.heldout_pairs + scored.heldout_corpus) + corpus_texts
    with timings("load_eval_engine"):
        engine = LocalEngine(spec.base_path, version="eval", vocabulary_texts=texts)
    context = scoring_context(engine.model, n=GATE_CANDIDATES)
    kept_in = registry.root
    base_scores = GateScores.of(kept_in, f"base-{Path(spec.base_model).name}", spec.base_path, context)

    def score(adapter: Path | None, label: str, kept: GateScores) -> tuple[Metrics, list[tuple[float, float]]]:
        on_event(f"scoring {label}")
        engine.use_adapter(adapter, "eval")
        scored_here = evaluate_engine(
            engine,
            heldout_sft=scored.heldout_sft,
            heldout_pairs=scored.heldout_pairs,
            heldout_corpus=scored.heldout_corpus,
            briefs=briefs,
            spans=spans,
            scores=kept,
        )
        kept.save()
        return scored_here

    with tempfile.TemporaryDirectory(prefix="copybot-candidate-") as scratch:
        # the trained adapter alone: not the frozen copies that anchored it (anchor) or were DPO's reference (ref)
        model.save_pretrained(scratch, selected_adapters=["default"])
        active_scores = (
            GateScores.of(kept_in, spec.parent_version or spec.parent.name, spec.parent, context)
            if spec.parent is not None
            else base_scores
        )
        new_scores = GateScores(None, "", context)  # kept with the version once it is saved
        with timings("score_active"):
            old, old_margins = score(spec.parent, spec.parent_version or "the base model (active)", active_scores)
        with timings("score_base"):
            base = score(None, "the base model", base_scores)[0] if spec.parent is not None else old
        if result.unchanged and start == spec.parent:
            # the budget kept the weights training started from: the same adapter, scored once already above
            new, new_margins = old, old_margins
        else:
            with timings("score_new"):
                new, new_margins = score(Path(scratch), "the new adapter", new_scores)
            new = dataclasses.replace(new, preference_gain=preference_gain(old_margins, new_margins))
            with timings("calibrate"):
                new = calibrate_temperature(engine, new, base.distinct_2, briefs, spans, on_event, new_scores)
        on_event(
            "gate scores kept from earlier retrains: "
            + ", ".join(
                f"{name} {s.kept} of {s.kept + s.scored}"
                for name, s in (("active", active_scores), ("base", base_scores), ("new", new_scores))
            )
        )
        decision = (
            nothing_learned(result.stopped, start_version or "the base model")
            if result.unchanged
            else gate(
                old,
                new,
                spec.gate_config,
                base=base,
                pairs=len(data.heldout_pairs),
                requests=data.summary.get("counts", {}).get("heldout_pair_requests"),
            )
        )
        with timings("reward"):
            reward, reward_info = _reward(engine, data, spec, on_event)
        on_event(f"the gate says {'promote' if decision.promote else 'keep the active model'}; saving")
        version = registry.next_version()
        info: dict[str, Any] = {
            "parent": spec.parent_version,
            "trained_from": start_version,
            "base_model": spec.base_model,
            "dataset": data.summary,
            "hyperparameters": spec.config.as_dict(),
            "metrics": {"old": old.as_dict(), "new": new.as_dict(), "base": base.as_dict()},
            "gate": {"promote": decision.promote, "reasons": decision.reasons},
            "decoding": {"temperature_scale": new.temperature_scale},  # every engine serving it applies this
            "reward": reward_info,
            "timings": {"train_seconds": result.seconds, "seconds": timings.seconds},
            "gate_scores": {
                "active": active_scores.summary(),
                "base": base_scores.summary(),
                "new": new_scores.summary(),
            },
            "losses": {
                "train": result.train_losses,
                "eval": result.eval_losses,
                "preference": result.preference_losses,
                "preference_stage": result.preference,
                "stopped": result.stopped,
                "corpus_checks": result.corpus_checks,
                "unchanged": result.unchanged,
            },
        }

        def write(staging: Path) -> None:
            _copy_files(Path(scratch), staging)
            if reward is not None:
                reward.save(staging / REWARD_FILE)

        saved = registry.save(version, write, info)
        new_scores.save(kept_in / SCORES_DIR / f"{version}.json", folder_fingerprint(saved.path))
    on_event(f"saved {version}")
    return ChallengerResult(
        version, saved.path, decision.promote, decision.reasons, old.as_dict(), new.as_dict(), base.as_dict(), info
    )


def nothing_learned(stopped: str, started_from: str) -> GateDecision:
    """The decision on a retrain whose forgetting budget kept the weights it started from: nothing to try live."""
    return GateDecision(
        False,
        [
            f"not met: something learned: {stopped}; the new adapter is {started_from} unchanged, so there is nothing to "
            "try (more feedback, or a lower learning_rate in train_config.json, lets the next retrain learn within "
            "the budget)"
        ],
    )


def _reward(
    engine: Any, data: RetrainDataset, spec: ChallengerSpec, on_event: Callable[[str], None]
) -> tuple[RewardModel | None, dict[str, Any]]:
    """Train the reranker's reward on the training reactions and judge it (and the one in force) on the held-out
    ones; the reward chosen is saved with the version, and the caller puts it in force."""
    if not spec.reward:
        return None, {"chosen": "none", "why": "reranking is off"}
    engine.use_adapter(None, "eval")  # features come from the bare base model either way
    current = RewardModel.load(spec.current_reward) if spec.current_reward else None
    reward, info = fit_reward(engine.features, data.kto, data.heldout_kto, base_model=spec.base_model, current=current)
    on_event(
        f"reward model: AUROC {info['auroc_new']} on {info['heldout']} held-out reactions "
        f"(the one in force: {info['auroc_current']}); reranking with: {info['chosen']}"
    )
    return reward, info


class Timings:
    """Seconds per part of a retrain, for `copybot.json` and `python -m benchmarks.retrain --base` (where the hours
    of a retrain on a real base go)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, part: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] = round(self.seconds.get(part, 0.0) + time.perf_counter() - started, 1)


def calibrate_temperature(
    engine: Any,
    new: Metrics,
    target: float,
    briefs: list[dict[str, Any]],
    spans: set[str],
    on_event: Callable[[str], None] = lambda _: None,
    scores: GateScores | None = None,
) -> Metrics:
    """Raise the new adapter's sampling temperature, a step at a time, until its candidates are as varied as the
    base model's (distinct-2 at least `target`); return its generation metrics at the chosen factor.

    Learning a taste from the model's own samples sharpens its distribution, so the five candidates of a brief
    start to share phrasing even when the taste itself is not a phrase. A slightly hotter temperature undoes the
    sharpening while keeping what was learned (the liked property moves far less than the spread). The factor is
    saved with the version, and the gate judges register match, compliance and length at that temperature."""
    for step in TEMPERATURE_STEPS:
        if new.distinct_2 >= target:
            break
        engine.temperature_scale = step
        generated = generation_metrics(CopyWriter(engine, max_extra_rounds=0), briefs, spans, scores=scores)
        new = dataclasses.replace(new, temperature_scale=step, **generated)
        on_event(f"temperature x{step:g}: distinct-2 {new.distinct_2:.3f} (base model {target:.3f})")
    engine.temperature_scale = 1.0  # the evaluation engine serves the unsaved adapter as it was loaded
    return new


def panel_briefs(data: RetrainDataset, count: int) -> list[dict[str, Any]]:
    """The briefs the gate generates for: the same every week while the corpus stays the same.

    Drawn from the corpus validation split's briefs (distinct product, event and channel, in a fixed pseudo-random
    order), topped up with this week's held-out briefs, else the default brief. A fixed panel makes the register,
    compliance, length and diversity checks compare models on the same briefs and seeds week after week, and lets
    the base model's and the active adapter's candidates be kept with them (model/training/gate_scores.py). This
    week's held-out requests still decide the preference and loss checks."""
    seen: dict[str, dict[str, Any]] = {}
    for example in data.heldout_corpus:
        brief = example.get("brief")
        if not brief:  # rendered by a jobs client: no brief to generate for
            continue
        fields = {
            "product": brief["product"],
            "event": brief.get("event", ""),
            "channel": brief.get("channel") or "sns",
        }
        seen.setdefault(json.dumps(fields, ensure_ascii=False, sort_keys=True), fields)
    order = sorted(seen, key=lambda k: hashlib.sha256(k.encode()).hexdigest())
    panel = [seen[k] for k in order[:count]]
    panel += data.heldout_briefs[: count - len(panel)]
    return panel or [DEFAULT_BRIEF]


def _copy_files(src: Path, dst: Path) -> None:
    for item in src.iterdir():
        if item.is_file():
            shutil.copy2(item, dst / item.name)
