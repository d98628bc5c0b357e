"""Retrain orchestration: store -> dataset -> train -> evaluate both -> gate -> registry -> store.

One retrain at a time (a lock file names the running one). The active model is untouched until the gate
promotes: the new adapter is evaluated from a scratch folder and only then saved, atomically, as a version.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from bot.corpus_io import corpus_hints
from bot.generation import base_model_path, model_client, reward_path
from bot.learning.train_config import load_train_config
from bot.learning.training_input import ensure_corpus, rated_requests
from bot.learning.trials import WAITING, Trials, TrialState, undecided_leader
from bot.settings import Settings
from model.errors import AdapterError
from model.locks import LockHeld, ProcessLock
from model.training.challenger import REWARD_FILE, ChallengerResult, ChallengerSpec, train_challenger
from model.training.corpus_dataset import build_corpus_dataset
from model.training.dataset import (
    DatasetConfig,
    NotEnoughFeedback,
    RetrainDataset,
    build_dataset,
    dataset_to_json,
    map_briefs,
)
from model.training.evaluate import GateConfig
from model.training.registry import AdapterRegistry
from model.training.train import TrainConfig
from model.writing.frame import AdFrame
from model.writing.voice import BrandVoice, brief_with_voice
from storage import Store

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the process stopped before the run finished; the active model was not changed"
MAX_EVAL_BRIEFS = 8  # held-out briefs generated for at every age group, per model (8 x 6 batches of 5)


@contextmanager
def _ctrl_c_caught() -> Iterator[Callable[[], bool]]:
    """Remember a Ctrl-C (SIGINT) while the block runs; yields 'was one pressed?'.

    The KeyboardInterrupt a Ctrl-C raises is lost when it lands inside a finaliser (`__del__`, a weakref callback:
    Python prints "Exception ignored" and goes on), and training runs many of those. The flag lets the retrain stop
    at its next stage anyway, before anything is saved. Outside the main thread (the scheduler's) signals cannot be
    handled, and nothing changes."""
    pressed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield pressed.is_set
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        pressed.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield pressed.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


class RetrainBusy(LockHeld):
    """Another retrain holds the lock; the message names it."""


@dataclass
class RetrainOutcome:
    """What a retrain did and why."""

    status: str  # skipped | dry-run | kept | trial (a live trial started) | promoted (trials off) | failed
    message: str
    version: str = ""
    reasons: list[str] = field(default_factory=list)
    old: dict[str, float] = field(default_factory=dict)
    new: dict[str, float] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None
    losses: dict[str, Any] = field(default_factory=dict)  # the loss curves, for the report's chart
    trial: dict[str, Any] | None = None  # the live trial this run started, or the one it waited for
    timings: dict[str, float] = field(default_factory=dict)  # seconds per part: train, sft, score_active, …
    reward: dict[str, Any] = field(default_factory=dict)  # the reranker's reward: its AUROC and whether it serves


@contextmanager
def retrain_lock(home: Path) -> Iterator[None]:
    """Hold home/retrain.lock for the duration; refuse at once, naming the holder, if it is taken."""
    lock = ProcessLock(home / "retrain.lock", "a retrain")
    try:
        lock.acquire()
    except LockHeld as exc:
        raise RetrainBusy(f"{exc}; wait for it") from exc
    try:
        yield
    finally:
        lock.release()


@dataclass
class Retrainer:
    """Runs retrains for one COPYBOT_HOME; `on_promote(path, version)` hot-swaps a running engine."""

    settings: Settings
    store: Store
    train_config: InitVar[TrainConfig | None] = None  # None: COPYBOT_HOME/train_config.json if tuned, else defaults
    dataset_config: DatasetConfig = field(default_factory=DatasetConfig)
    gate_config: GateConfig = field(default_factory=GateConfig)
    eval_briefs: int = MAX_EVAL_BRIEFS
    on_promote: Callable[[Path, str], None] | None = None
    poll_s: float = 5.0  # how often a retrain on the GPU host asks how its job is doing
    # Adopt a version that passes the safety floor at once, without a live trial: the starter adapter, a real
    # base model's first fine-tune on the team's corpus, which has no champion worth a trial but the bare base.
    adopt: bool = False
    # Learn from the team's scored corpus alone (`copybot retrain --from-corpus`, model/training/corpus_dataset.py):
    # gated on held-out corpus pairs, which must show a gain, and promoted on it, since its evidence is real outcomes.
    from_corpus: bool = False
    config: TrainConfig = field(init=False)  # the training settings this retrainer uses
    trials: Trials = field(init=False)

    def __post_init__(self, train_config: TrainConfig | None) -> None:
        self.config = train_config or load_train_config(
            self.settings.home, self.settings.base_kind, first_adapter=self.adopt
        )
        self.trials = Trials(self.store, self.settings.trial_rule)

    def effective_gate(self) -> GateConfig:
        """The gate as configured; without live trials, or on the corpus's own outcomes, its preference check must
        show a gain on its own."""
        if (self.settings.live_trials or self.adopt) and not self.from_corpus:
            return self.gate_config
        return dataclasses.replace(self.gate_config, preference="gain")

    def active_adapter(self) -> tuple[Path | None, str]:
        """(folder, version) of the active adapter, or (None, "") while the base model serves alone."""
        active = self.store.active_model_version()
        if not active:
            return None, ""
        return (Path(active["adapter_path"]) if active["adapter_path"] else None), active["version"]

    @property
    def registry(self) -> AdapterRegistry:
        return AdapterRegistry(self.settings.adapters_dir)

    def dataset(self, *, force: bool) -> RetrainDataset:
        """The dataset of this retrain, each example's brief carrying its brand-voice examples when they are on
        (COPYBOT_VOICE_EXAMPLES), chosen from the train split as serving chooses them, and on a channel with the legal
        frame the body's budget, as the writer sets it."""
        ensure_corpus(self.store)
        if self.from_corpus:
            rows = self.store.corpus_rows()
            hints = corpus_hints(self.store.corpus_gaps(rows))
            data = build_corpus_dataset(rows, force=force, hints=hints)
        else:
            data = build_dataset(rated_requests(self.store), self.store.corpus_rows("train"),
                                 self.store.corpus_rows("validation"), self.dataset_config, force=force)  # fmt: skip
        if self.settings.voice_examples:
            voice = BrandVoice(self.store.corpus_rows("train"), self.settings.voice_examples)
            data = map_briefs(data, lambda brief: brief_with_voice(brief, voice))
        # the body budget the legal frame leaves, as the writer states it in an instruct model's prompt
        return map_briefs(data, AdFrame(self.settings.ad_sender, self.settings.ad_optout).budgeted_brief)

    def run(self, *, trigger: str, force: bool = False, dry_run: bool = False) -> RetrainOutcome:
        """Build, train, evaluate, gate, and promote or keep; every path is recorded and explained."""
        with retrain_lock(self.settings.home):
            self.registry.clean_staging()
            closed = self.store.fail_unfinished_training_runs(error=INTERRUPTED)
            if closed:
                log.warning("marked %d training run(s) left running by a stopped process as failed", closed)
            waiting = self._running_trial()
            if waiting is not None:
                message = f"{WAITING} ({waiting.line()}); the retrain waits for it"
                return self._skipped(message, trigger, dry_run, trial=waiting.as_dict())
            try:
                data = self.dataset(force=force)
            except NotEnoughFeedback as exc:
                return self._skipped(str(exc), trigger, dry_run)
            if dry_run:
                return RetrainOutcome("dry-run", "dry run: the dataset is ready; nothing was trained",
                                      dataset=data.summary)  # fmt: skip
            return self._train_and_gate(data, trigger)

    def _skipped(
        self, message: str, trigger: str, dry_run: bool, trial: dict[str, Any] | None = None
    ) -> RetrainOutcome:
        """A retrain that did not train: recorded as a skipped run (unless a dry run) so the report can say why."""
        run = None
        if not dry_run:
            run = self.store.start_training_run(trigger=trigger, base_model=self.settings.base_model)
            self.store.finish_training_run(run, status="skipped", error=message)
        return RetrainOutcome("skipped", message, trial=trial, run_id=run)

    def _running_trial(self) -> TrialState | None:
        """The live trial still running after its rule had its say (one trial at a time: a retrain waits)."""
        state = self.trials.check()
        return None if state is None or state.decision.action != "continue" else state

    def start_from(self) -> tuple[Path | None, str]:
        """(folder, version) training starts from when it is not the active adapter: a challenger whose trial
        ended undecided while leaning its way (bot/learning/trials.py:undecided_leader), or (None, "")."""
        # with live trials off the offline gate alone promotes, so nothing is built on a trial's lean
        wanted = self.settings.build_on_leader and self.settings.live_trials
        leader = undecided_leader(self.store, self.settings.base_model) if wanted else None
        if leader is None or self.adopt or self.from_corpus or not self.config.continue_from_active:
            return None, ""
        version = str(leader["version"])
        if self.settings.model_url:  # the host checks its own registry (a 404 for "start", handled on the job)
            return Path(leader["adapter_path"]), version
        try:
            return self.registry.load(version).path, version
        except AdapterError as exc:
            log.warning("retrain: cannot start from the undecided leader (%s); starting from the active model", exc)
            return None, ""

    def _train_and_gate(self, data: RetrainDataset, trigger: str) -> RetrainOutcome:
        parent, parent_version = self.active_adapter()
        run = self.store.start_training_run(trigger=trigger, base_model=self.settings.base_model,
                                            parent_version=parent_version,
                                            hyperparameters=self.config.as_dict())  # fmt: skip
        try:
            outcome = self._train_evaluate_save(data, parent, parent_version, run)
        except KeyboardInterrupt:
            self.store.finish_training_run(
                run, status="failed", error="interrupted (Ctrl-C)", dataset_summary=data.summary
            )
            raise
        except Exception as exc:
            log.exception("retrain failed")
            self.store.finish_training_run(run, status="failed", error=repr(exc), dataset_summary=data.summary)
            return RetrainOutcome("failed", f"retrain failed: {exc!r}; the active model is unchanged", run_id=run)
        self.store.finish_training_run(
            run, status="succeeded", result_version=outcome.version, dataset_summary=data.summary,
            metrics={"old": outcome.old, "new": outcome.new, "losses": outcome.losses, "reward": outcome.reward},
            gate_decision=outcome.status if outcome.status in ("promoted", "trial") else "kept",
            gate_reasons=outcome.reasons,
        )  # fmt: skip
        outcome.run_id = run
        return outcome

    def _train_evaluate_save(
        self, data: RetrainDataset, parent: Path | None, parent_version: str, run: int
    ) -> RetrainOutcome:
        start, start_version = self.start_from()
        if start_version:
            log.info("retrain: starting from %s, whose trial against %s ended undecided but leaning its way",
                     start_version, parent_version or "the base model")  # fmt: skip
        if self.settings.model_url:
            return self._train_on_host(data, parent_version, start_version, run)
        spec = ChallengerSpec(base_path=base_model_path(self.settings), base_model=self.settings.base_model,
                             parent=parent, parent_version=parent_version, start=start, start_version=start_version,
                             config=self.config,
                             gate_config=self.effective_gate(), eval_briefs=self.eval_briefs,
                             reward=self.settings.rerank, current_reward=reward_path(self.settings))  # fmt: skip
        corpus = [r["text"] for r in self.store.corpus_rows("train")]
        with _ctrl_c_caught() as interrupted:

            def on_event(message: str) -> None:
                if interrupted():  # a Ctrl-C that a library swallowed stops the run at the next stage
                    raise KeyboardInterrupt
                log.info("retrain: %s", message)

            result = train_challenger(spec, data, corpus, self.registry, on_event=on_event)
        return self._record(result, parent_version, data, run, start_version)

    def _train_on_host(self, data: RetrainDataset, parent_version: str, start_version: str, run: int) -> RetrainOutcome:
        """The same work as a fine-tuning job on the GPU host: upload, poll (logging its events), and, if the gate
        promotes, load the new adapter on the host before the store makes it active."""
        from model.serving.client import ModelHostError

        client = model_client(self.settings, timeout_s=300)  # the upload of a large dataset can take a while
        body = {"dataset": dataset_to_json(data), "corpus_texts": [r["text"] for r in self.store.corpus_rows("train")],
                "hyperparameters": self.config.as_dict(), "gate": dataclasses.asdict(self.effective_gate()),
                "parent": parent_version or None, "start": start_version or None,
                "eval_briefs": self.eval_briefs}  # fmt: skip
        try:
            job = client.create_job(body)
        except ModelHostError as exc:
            if not (start_version and exc.status == 404 and exc.param == "start"):
                raise
            log.warning("retrain: the GPU host does not have %s to start from (%s); starting from the active model",
                        start_version, exc)  # fmt: skip
            body["start"], start_version = None, ""
            job = client.create_job(body)
        log.info("retrain: fine-tuning job %s on %s is %s", job["id"], client.root, job["status"])
        job_id = job["id"]
        job = client.follow_job(
            job, on_event=lambda message: log.info("retrain: job %s: %s", job_id, message), poll_s=self.poll_s
        )
        if job["status"] != "succeeded":
            reason = (job.get("error") or {}).get("message") or job["status"]
            raise RuntimeError(f"fine-tuning job {job['id']} {job['status']}: {reason}")
        raw = job["result"]
        result = ChallengerResult(raw["version"], Path(raw["path"]), raw["promote"], raw["reasons"], raw["old"],
                                 raw["new"], raw["base"], raw["info"])  # fmt: skip
        if start_version and result.info.get("trained_from") != start_version:
            log.warning("retrain: the GPU host trained %s from the active model, not from %s: upgrade the host "
                        "(`copybot model-server`) to the bot's version", result.version, start_version)  # fmt: skip
            start_version = ""  # record what it was trained from, not what was asked
        if result.promote:  # served before it is recorded: promoted, or a challenger that writes in its trial
            client.load_adapter(result.version, str(result.path))
        return self._record(result, parent_version, data, run, start_version)

    def _put_reward_in_force(self, result: ChallengerResult) -> dict[str, Any]:
        """The reward the retrain chose reranks from now on (whatever becomes of the adapter: it scores with the
        base model alone); when none was good enough, reranking stops until one is."""
        info: dict[str, Any] = dict(result.info.get("reward") or {})
        target = reward_path(self.settings)
        saved = result.path / REWARD_FILE
        if info.get("chosen") in ("new", "current") and saved.is_file():
            shutil.copyfile(saved, target.with_suffix(".tmp"))
            os.replace(target.with_suffix(".tmp"), target)
        elif info.get("chosen") == "none" and not self.settings.model_url:
            target.unlink(missing_ok=True)
        return info

    def _record(
        self, result: ChallengerResult, parent_version: str, data: RetrainDataset, run: int, start_version: str = ""
    ) -> RetrainOutcome:
        """Record the trained version in the store (its parent: the version it was trained from); if it passed the
        gate, start its live trial against the active version (or, with trials off, promote it)."""
        self.store.add_model_version(version=result.version, base_model=self.settings.base_model,
                                     adapter_path=str(result.path), parent_version=start_version or parent_version,
                                     status="candidate" if result.promote else "rejected",
                                     metrics=result.info["metrics"])  # fmt: skip
        reward = self._put_reward_in_force(result)
        common = {
            "version": result.version,
            "reasons": result.reasons,
            "old": result.old,
            "new": result.new,
            "dataset": data.summary,
            "losses": result.info.get("losses", {}),
            "reward": reward,
            "timings": result.info.get("timings", {}).get("seconds", {}),
        }
        trained = f"trained {result.version}" + (
            f" from {start_version} (its trial leaned its way)" if start_version else ""
        )
        if not result.promote:
            if result.info.get("losses", {}).get("unchanged"):
                trained += ", which learned nothing within the forgetting budget"
            return RetrainOutcome("kept", f"{trained}; kept the active model", **common)
        if self.settings.live_trials and not (self.adopt or self.from_corpus):
            self.trials.start(result.version, parent_version, training_run_id=run)
            state = self.trials.running()
            against = parent_version or "the base model"
            return RetrainOutcome("trial", f"{trained}; it passed the safety checks and is now on "
                                           f"trial against {against} in live requests", **common,
                                  trial=state.as_dict() if state else None)  # fmt: skip
        self.store.promote_model_version(result.version)
        if self.on_promote:
            self.on_promote(result.path, result.version)
        return RetrainOutcome("promoted", f"{trained}; promoted", **common)


def outcome_text(outcome: RetrainOutcome) -> str:
    """The outcome as the command line shows it: what happened, each gate reason, the dataset."""
    lines = [outcome.message, *(f"  {reason}" for reason in outcome.reasons)]
    if (outcome.losses or {}).get("stopped"):
        lines.append(f"  training stopped early: {outcome.losses['stopped']}")
    if outcome.dataset:
        lines.append(f"  dataset {outcome.dataset['hash']}: {outcome.dataset['counts']}")
    return "\n".join(lines)


def outcome_json(outcome: RetrainOutcome) -> str:
    """The outcome as JSON for `copybot retrain --json`."""
    return json.dumps(outcome.__dict__, ensure_ascii=False, default=str)
