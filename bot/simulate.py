"""`copybot simulate`: the whole learning loop without Slack, to show it learns a taste it is never told.

Each round samples briefs, generates and stores candidates through the bot's own store paths, lets a rater react
(recorded as the same feedback events Slack reactions become), then runs the same retrain as
`copybot retrain --force`, gate included. Before the first round and after each one, the rater's liked share is
measured on a fixed set of evaluation briefs with fixed seeds, so rounds differ only by the model.
"""

from __future__ import annotations

import dataclasses
import importlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.generation import generate_and_store, make_writer
from bot.retrain import Retrainer, ensure_corpus
from bot.settings import Settings
from bot.slack.reactions import ReactionMap
from model.brief import Brief
from model.evaluate import distinct_2
from model.writer import CopyWriter
from storage import Store

Rater = Callable[[dict[str, Any], list[str]], list[str | None]]
LIKED = ("+1", "trophy")
REACTIONS = ("+1", "-1", "trophy")
EVAL_SEED = 50_000  # evaluation seeds live far from the rounds' seeds


class SimulationError(ValueError):
    """A bad rater or setting; the message says what to change."""


@dataclass(frozen=True)
class SimulationConfig:
    """The size of a simulation. Each field's `metadata['help']` says what it does."""

    rounds: int = field(default=3, metadata={"help": "feedback-and-retrain rounds"})
    requests_per_round: int = field(default=32, metadata={"help": "briefs generated and rated per round"})
    eval_briefs: int = field(default=24, metadata={"help": "fixed briefs the liked share is measured on"})
    # One seed per brief leaves distinct-2 at the mercy of the draw (a median over 24 briefs moved by up to 0.04
    # between seeds on the same model); three seeds per brief triple the sample the curve is measured on.
    eval_seeds: int = field(default=3, metadata={"help": "fixed seeds per evaluation brief"})
    seed: int = field(default=7, metadata={"help": "seed for brief sampling and generation"})

    def __post_init__(self) -> None:
        if self.rounds < 0 or min(self.requests_per_round, self.eval_briefs, self.eval_seeds) < 1:
            raise SimulationError("rounds must be 0 or more; requests per round, eval briefs and eval seeds at least 1")


@dataclass
class RoundResult:
    """The liked share after a round (round 0: before any feedback), and what that round's retrain did."""

    round: int
    liked_share: float
    distinct_2: float
    model_version: str
    retrain: dict[str, Any] | None = None
    seconds: float = 0.0


def load_rater(spec: str) -> Rater:
    """'package.module:function' -> the function; errors say what is wrong with the spec."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SimulationError(f"rater {spec!r} is not 'module:function'; try bot.raters:emoji_for_young")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SimulationError(f"cannot import rater module {module_name!r} ({exc}); is it on PYTHONPATH?") from exc
    rater = getattr(module, attr, None)
    if not callable(rater):
        raise SimulationError(f"{module_name} has no function {attr!r}")
    return rater


def rate(rater: Rater, brief: dict[str, Any], texts: list[str]) -> list[str | None]:
    """Call the rater and check its answer: one known reaction name (or None) per candidate."""
    reactions = list(rater(brief, texts))
    if len(reactions) != len(texts):
        raise SimulationError(f"the rater returned {len(reactions)} reactions for {len(texts)} candidates")
    for r in reactions:
        if r is not None and r not in REACTIONS:
            raise SimulationError(f"the rater returned {r!r}; use '+1', '-1', 'trophy' or None")
    return reactions


def brief_pool(corpus_rows: list[dict[str, Any]], rater: Rater) -> list[dict[str, str]]:
    """Distinct (product, event, age, channel) briefs from the corpus that pass the rater's `brief_filter`."""
    wanted: dict[str, tuple[str, ...]] = getattr(rater, "brief_filter", {}) or {}
    seen: dict[tuple[str, ...], dict[str, str]] = {}
    for row in corpus_rows:
        if not row.get("age_group") or not row.get("product"):
            continue
        brief = {"product": row["product"], "event": row.get("event") or "", "age_group": row["age_group"],
                 "channel": row.get("channel") or "sns"}  # fmt: skip
        if all(brief.get(key) in allowed for key, allowed in wanted.items()):
            seen.setdefault(tuple(brief.values()), brief)
    if not seen:
        raise SimulationError("no corpus brief passes the rater's brief_filter; loosen it")
    return [seen[k] for k in sorted(seen)]


def _brief(fields: dict[str, str]) -> Brief:
    return Brief.create(product=fields["product"], event=fields["event"], age=fields["age_group"],
                        channel=fields["channel"])  # fmt: skip


def liked_share(writer: CopyWriter, rater: Rater, briefs: list[dict[str, str]], seeds: int = 1) -> tuple[float, float]:
    """(share of candidates the rater gives +1 or trophy, median distinct-2 of a brief's batch) on fixed briefs,
    each written with `seeds` fixed seeds."""
    liked = total = 0
    distincts = []
    for k in range(seeds):
        for i, fields in enumerate(briefs):
            texts = [c.text for c in writer.write(_brief(fields), seed=EVAL_SEED + 1000 * k + i).candidates]
            liked += sum(r in LIKED for r in rate(rater, fields, texts))
            total += len(texts)
            distincts.append(distinct_2(texts))
    distincts.sort()
    return round(liked / max(1, total), 4), round(distincts[len(distincts) // 2], 4)


def simulation_settings(settings: Settings, home: Path) -> Settings:
    """Settings for a scratch COPYBOT_HOME whose starter model is the main home's (linked, never rebuilt)."""
    home.mkdir(parents=True, exist_ok=True)
    sim = dataclasses.replace(settings, home=home, db_path=home / "copybot.db")
    if settings.uses_starter and not sim.starter_dir.exists():
        from model.starter.build import ensure_starter

        sim.starter_dir.parent.mkdir(parents=True, exist_ok=True)
        sim.starter_dir.symlink_to(ensure_starter(settings.starter_dir).resolve(), target_is_directory=True)
    return sim


def feed_back(store: Store, candidate_ids: list[int], reactions: list[str | None], signals: ReactionMap) -> int:
    """Record reactions exactly as the Slack listener does; returns how many were recorded."""
    recorded = 0
    for candidate_id, reaction in zip(candidate_ids, reactions, strict=True):
        signal = signals.signal(reaction) if reaction else None
        if reaction is None or signal is None:
            continue
        recorded += store.record_feedback(event_id=f"simulate:{candidate_id}:{reaction}", candidate_id=candidate_id,
                                          user_id="simulator", action="added", signal=signal,
                                          reaction=reaction)  # fmt: skip
    return recorded


def run_simulation(
    settings: Settings,
    rater: Rater,
    config: SimulationConfig,
    *,
    retrainer_factory: Callable[[Settings, Store], Retrainer] | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
) -> list[RoundResult]:
    """Run the rounds in `settings.home` (a scratch home: it gets feedback and adapters) and return the curve."""
    store = Store.open(settings.db_path)
    try:
        ensure_corpus(store)
        pool = brief_pool(store.corpus_rows(), rater)
        rng = random.Random(config.seed)
        eval_set = random.Random(config.seed + 1).sample(pool, min(len(pool), config.eval_briefs))
        writer = make_writer(settings, store=store)
        retrainer = (retrainer_factory or Retrainer)(settings, store)
        signals = ReactionMap()
        results: list[RoundResult] = []

        def measure(number: int, started: float, retrain: dict[str, Any] | None) -> None:
            writer.backend.sync(force=True)  # type: ignore[attr-defined]
            share, distinct = liked_share(writer, rater, eval_set, config.eval_seeds)
            result = RoundResult(number, share, distinct, writer.backend.version, retrain,
                                 round(time.perf_counter() - started, 1))  # fmt: skip
            results.append(result)
            if on_round:
                on_round(result)

        measure(0, time.perf_counter(), None)
        for number in range(1, config.rounds + 1):
            started = time.perf_counter()
            for _ in range(config.requests_per_round):
                fields = rng.choice(pool)
                stored = generate_and_store(store, writer, _brief(fields), source="simulate",
                                            user_id="simulator", seed=rng.randrange(1 << 30))  # fmt: skip
                texts = [c.text for c in stored.generation.candidates]
                feed_back(store, stored.candidate_ids, rate(rater, fields, texts), signals)
            outcome = retrainer.run(trigger="simulate", force=True)
            measure(number, started, {"status": outcome.status, "version": outcome.version,
                                      "reasons": outcome.reasons, "dataset": outcome.dataset.get("counts", {})})  # fmt: skip
        return results
    finally:
        store.close()
