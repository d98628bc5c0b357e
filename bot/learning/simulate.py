"""`copybot simulate`: the whole learning loop without Slack, to show it learns a taste it is never told.

Each round samples briefs, generates and stores candidates through the bot's own store paths, lets a rater react
(recorded as the same feedback events Slack reactions become), then runs the same retrain as
`copybot retrain --force`, gate included. Before the first round and after each one, the rater's liked share is
measured on a fixed set of evaluation briefs with fixed seeds, so rounds differ only by the model.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.generation import generate_and_store, make_writer, write_brief
from bot.learning import simulation_checkpoint as checkpoint
from bot.learning.retrain import Retrainer
from bot.learning.simulation_checkpoint import Checkpoint
from bot.learning.training_input import ensure_corpus
from bot.reactions import ReactionMap
from bot.settings import Settings
from model.locks import ProcessLock
from model.training.registry import SCORES_DIR
from model.writing.brief import Brief
from model.writing.diversity import distinct_2
from model.writing.writer import CopyWriter
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
    liked_share: float  # of the candidates as served: during a live trial, both sides together
    distinct_2: float
    model_version: str  # the champion (the active version)
    retrain: dict[str, Any] | None = None
    seconds: float = 0.0
    by_version: dict[str, float] = field(default_factory=dict)  # each writing version's own liked share
    trial: dict[str, Any] | None = None  # the live trial running after this round, if any
    decided: list[dict[str, Any]] = field(default_factory=list)  # trials the round's reactions decided
    # the same briefs and seeds written with reranking off: what the model itself learned (None when the bot does
    # not rerank, so that the share as served is the model's)
    model_liked_share: float | None = None
    model_distinct_2: float | None = None

    @property
    def model_share(self) -> float:
        """The model's own liked share: with reranking off, or as served when the bot does not rerank."""
        return self.liked_share if self.model_liked_share is None else self.model_liked_share


# The built-in raters' module before the learning subsystem had its folder: specs in scripts and saved
# simulations written with it keep working.
MOVED_RATER_MODULES = {"bot.raters": "bot.learning.raters"}


def load_rater(spec: str) -> Rater:
    """'package.module:function' -> the function; errors say what is wrong with the spec."""
    module_name, sep, attr = spec.partition(":")
    module_name = MOVED_RATER_MODULES.get(module_name, module_name)
    if not sep or not module_name or not attr:
        raise SimulationError(f"rater {spec!r} is not 'module:function'; try bot.learning.raters:emoji_for_young")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SimulationError(f"cannot import rater module {module_name!r} ({exc}); is it on PYTHONPATH?") from exc
    rater = getattr(module, attr, None)
    if not callable(rater):
        raise SimulationError(f"{module_name} has no function {attr!r}")
    if _takes_no_arguments(rater):  # a factory (or class) that makes a rater with state of its own
        rater = rater()
        if not callable(rater):
            raise SimulationError(
                f"{spec} takes no arguments, so it was called to make a rater, but it returned "
                f"{type(rater).__name__}, which is not callable"
            )
    return rater


def _takes_no_arguments(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return not any(p.kind in positional and p.default is p.empty for p in params)


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
        brief = {
            "product": row["product"],
            "event": row.get("event") or "",
            "age_group": row["age_group"],
            "channel": row.get("channel") or "sns",
        }
        if all(brief.get(key) in allowed for key, allowed in wanted.items()):
            seen.setdefault(tuple(brief.values()), brief)
    if not seen:
        raise SimulationError("no corpus brief passes the rater's brief_filter; loosen it")
    return [seen[k] for k in sorted(seen)]


def _brief(fields: dict[str, str]) -> Brief:
    return Brief.create(
        product=fields["product"], event=fields["event"], age=fields["age_group"], channel=fields["channel"]
    )


@dataclass(frozen=True)
class Measurement:
    """The rater's liked share on the fixed evaluation briefs, as the bot serves them now (during a live trial,
    champion and challenger together), each version's own share, and the median distinct-2 of a brief's batch."""

    liked_share: float
    distinct_2: float
    by_version: dict[str, float]


def measure_served(
    store: Store, writer: CopyWriter, rater: Rater, briefs: list[dict[str, str]], seeds: int = 1, *, rerank: bool = True
) -> Measurement:
    """Write each brief with `seeds` fixed seeds exactly as a request would be written now, and let the rater
    judge the candidates; nothing is stored. With `rerank` off, the same briefs and seeds are written without the
    reward's choice: the first n of the pool the reranker would choose from, the model's own candidates."""
    if not rerank:
        writer = dataclasses.replace(writer, reranker=None)
    liked: dict[str, int] = {}
    shown: dict[str, int] = {}
    distincts = []
    for k in range(seeds):
        for i, fields in enumerate(briefs):
            generation, _ = write_brief(store, writer, _brief(fields), seed=EVAL_SEED + 1000 * k + i, ordinal=i + k)
            texts = [c.text for c in generation.candidates]
            for c, reaction in zip(generation.candidates, rate(rater, fields, texts), strict=True):
                version = c.model_version or generation.model_version
                shown[version] = shown.get(version, 0) + 1
                liked[version] = liked.get(version, 0) + (reaction in LIKED)
            distincts.append(distinct_2(texts))
    distincts.sort()
    by_version = {v: round(liked[v] / shown[v], 4) for v in shown}
    share = round(sum(liked.values()) / max(1, sum(shown.values())), 4)
    return Measurement(share, round(distincts[len(distincts) // 2], 4), by_version)


RERANK_ONLY_POINTS = 2.0  # a model-alone gain below this, beside a larger gain as served, is the reranker's alone


def gain_text(first: RoundResult, last: RoundResult) -> str:
    """'+12.5 points as served, +8.3 with reranking off' (labelled when the gain is the reranker's alone)."""
    served = (last.liked_share - first.liked_share) * 100
    if first.model_liked_share is None and last.model_liked_share is None:
        return f"{served:+.1f} points"
    model = (last.model_share - first.model_share) * 100
    alone = " (from reranking alone)" if model < RERANK_ONLY_POINTS < served else ""
    return f"{served:+.1f} points as served, {model:+.1f} with reranking off{alone}"


def _start_round(rater: Rater, number: int) -> None:
    hook = getattr(rater, "start_round", None)
    if callable(hook):
        hook(number)


def simulation_settings(settings: Settings, home: Path) -> Settings:
    """Settings for a scratch COPYBOT_HOME whose base model is the main home's: the starter, or a fetched model
    (linked, never rebuilt or fetched again), and whose starting version is the main home's active adapter on a
    fetched base (a bare real base writes no copy worth rating: the simulation starts where the team is)."""
    home.mkdir(parents=True, exist_ok=True)
    # a simulated rater's reactions are complete the moment they are given: nothing to wait for to settle
    rule = dataclasses.replace(settings.trial_rule, settle_minutes=0)
    sim = dataclasses.replace(settings, home=home, db_path=home / "copybot.db", trial_rule=rule)
    if settings.uses_starter and not sim.starter_dir.exists():
        from model.starter.build import ensure_starter

        sim.starter_dir.parent.mkdir(parents=True, exist_ok=True)
        sim.starter_dir.symlink_to(ensure_starter(settings.starter_dir).resolve(), target_is_directory=True)
    _carry_fetched_base(settings, sim)
    return sim


def _carry_fetched_base(settings: Settings, sim: Settings) -> None:
    """Link a fetched base model into the scratch home and start it from the main home's active adapter on it."""
    from model.fetch import FETCHABLE

    spec = FETCHABLE.get(settings.base_model)
    source = settings.models_dir / settings.base_model
    target = sim.models_dir / settings.base_model
    if spec is None or not source.is_dir() or target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source.resolve(), target_is_directory=True)
    # the gate's kept scores of the base and the active adapter (model/training/gate_scores.py): each is checked
    # against its model's files before use, and on gemma-3-270m they save minutes of each round's retrain
    kept = settings.adapters_dir / SCORES_DIR
    if kept.is_dir():
        shutil.copytree(kept, sim.adapters_dir / SCORES_DIR, dirs_exist_ok=True)
    if not settings.db_path.exists():
        return
    active = Store.open(settings.db_path).active_model_version()
    if active is None or active["base_model"] != settings.base_model or not active["adapter_path"]:
        return
    copy = sim.adapters_dir / active["version"]
    shutil.copytree(active["adapter_path"], copy)
    store = Store.open(sim.db_path)
    store.add_model_version(
        version=active["version"],
        base_model=settings.base_model,
        adapter_path=str(copy),
        parent_version=active["parent_version"] or "",
    )
    store.promote_model_version(active["version"])


def feed_back(store: Store, candidate_ids: list[int], reactions: list[str | None], signals: ReactionMap) -> int:
    """Record reactions exactly as the Slack listener does; returns how many were recorded."""
    recorded = 0
    for candidate_id, reaction in zip(candidate_ids, reactions, strict=True):
        signal = signals.signal(reaction) if reaction else None
        if reaction is None or signal is None:
            continue
        recorded += store.record_feedback(
            event_id=f"simulate:{candidate_id}:{reaction}",
            candidate_id=candidate_id,
            user_id="simulator",
            action="added",
            signal=signal,
            reaction=reaction,
        )
    return recorded


def run_simulation(
    settings: Settings,
    rater: Rater,
    config: SimulationConfig,
    *,
    rater_spec: str = "",
    resume: Checkpoint | None = None,
    retrainer_factory: Callable[[Settings, Store], Retrainer] | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
) -> list[RoundResult]:
    """Run the rounds in `settings.home` (a scratch home: it gets feedback and adapters) and return the curve.

    After each measurement a checkpoint is saved in the home (bot/learning/simulation_checkpoint.py); with
    `resume`, the store and the random streams are put back as they were at that checkpoint and the rounds go on
    from there, up to `config.rounds`. `rater_spec` is recorded so that `copybot simulate --resume` can load the rater again."""
    with ProcessLock(settings.home / "simulation.lock", f"a simulation in {settings.home}"):
        if resume is not None:
            checkpoint.rewind(settings.home, resume, settings.db_path, settings.adapters_dir)
        store = Store.open(settings.db_path)
        try:
            return _run(settings, store, rater, config, rater_spec, resume, retrainer_factory, on_round)
        finally:
            store.close()


def _run(
    settings: Settings,
    store: Store,
    rater: Rater,
    config: SimulationConfig,
    rater_spec: str,
    resume: Checkpoint | None,
    retrainer_factory: Callable[[Settings, Store], Retrainer] | None,
    on_round: Callable[[RoundResult], None] | None,
) -> list[RoundResult]:
    hook = getattr(rater, "start_simulation", None)
    if callable(hook):  # a rater with a random stream of its own draws it from the simulation's seed
        hook(config.seed)
    ensure_corpus(store)
    pool = brief_pool(store.corpus_rows(), rater)
    rng = random.Random(config.seed)
    eval_set = random.Random(config.seed + 1).sample(pool, min(len(pool), config.eval_briefs))
    saved = resume or checkpoint.Checkpoint(
        rater=rater_spec, config=dataclasses.asdict(config), base_model=settings.base_model
    )
    results = [RoundResult(**r) for r in saved.rounds]
    if resume is not None:
        checkpoint.restore_stream(rng, resume.rng)
        if resume.rater_state is not None:
            rater.setstate(resume.rater_state)  # type: ignore[attr-defined]
        for result in results:
            if on_round:
                on_round(result)
    writer = make_writer(settings, store=store)
    retrainer = (retrainer_factory or Retrainer)(settings, store)
    signals = ReactionMap()

    def measure(number: int, started: float, retrain: dict[str, Any] | None, decided: list[Any]) -> None:
        _start_round(rater, number + 1)  # judged with the taste the team has from the next round on
        writer.backend.sync(force=True)  # type: ignore[attr-defined]
        found = measure_served(store, writer, rater, eval_set, config.eval_seeds)
        reranking = writer.reranker is not None and writer.reranker.current() is not None
        alone = measure_served(store, writer, rater, eval_set, config.eval_seeds, rerank=False) if reranking else None
        trial = retrainer.trials.running()
        result = RoundResult(
            number,
            found.liked_share,
            found.distinct_2,
            writer.backend.version,
            retrain,
            round(time.perf_counter() - started, 1),
            found.by_version,
            trial.as_dict() if trial else None,
            decided,
            model_liked_share=alone.liked_share if alone else None,
            model_distinct_2=alone.distinct_2 if alone else None,
        )
        results.append(result)
        saved.rounds.append(dataclasses.asdict(result))
        saved.rng = checkpoint.stream_state(rng)
        getstate = getattr(rater, "getstate", None)
        saved.rater_state = getstate() if callable(getstate) else None
        checkpoint.save(settings.home, saved, store)
        if on_round:
            on_round(result)

    if not results:
        measure(0, time.perf_counter(), None, [])
    for number in range(len(results), config.rounds + 1):
        started = time.perf_counter()
        _start_round(rater, number)
        decided: list[dict[str, Any]] = []
        for _ in range(config.requests_per_round):
            fields = rng.choice(pool)
            stored = generate_and_store(
                store, writer, _brief(fields), source="simulate", user_id="simulator", seed=rng.randrange(1 << 30)
            )
            texts = [c.text for c in stored.generation.candidates]
            feed_back(store, stored.candidate_ids, rate(rater, fields, texts), signals)
            state = retrainer.trials.check()  # as after a reaction in Slack
            if state is not None and state.decision.action != "continue":
                decided.append({**state.as_dict(), "outcome": state.decision.action, "reason": state.decision.reason})
                writer.backend.sync(force=True)  # type: ignore[attr-defined]
        outcome = retrainer.run(trigger="simulate", force=True)
        measure(
            number,
            started,
            {
                "status": outcome.status,
                "version": outcome.version,
                "reasons": outcome.reasons,
                "dataset": outcome.dataset.get("counts", {}),
                "message": outcome.message,
                "reward": outcome.reward,
                "timings": outcome.timings,
            },
            decided,
        )
    return results
