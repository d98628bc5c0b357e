"""Retrain orchestration: store -> dataset -> train -> evaluate both -> gate -> registry -> store.

One retrain at a time (a lock file names the running one). The active model is untouched until the gate
promotes: the new adapter is evaluated from a scratch folder and only then saved, atomically, as a version.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from bot.corpus_io import STARTER_MAPPING, language_checks, starter_corpus_path
from bot.generation import base_model_path, model_client
from bot.locks import LockHeld, ProcessLock
from bot.settings import Settings
from bot.tune import load_train_config
from model.candidate import CandidateResult, CandidateSpec, train_candidate
from model.dataset import (
    DatasetConfig,
    NotEnoughFeedback,
    RatedCandidate,
    RatedRequest,
    RetrainDataset,
    build_dataset,
    dataset_to_json,
)
from model.evaluate import GateConfig
from model.registry import AdapterRegistry
from model.train import TrainConfig
from storage import Store
from storage.corpus import prepare_import

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

    status: str  # skipped | dry-run | kept | promoted | failed
    message: str
    version: str = ""
    reasons: list[str] = field(default_factory=list)
    old: dict[str, float] = field(default_factory=dict)
    new: dict[str, float] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None
    losses: dict[str, Any] = field(default_factory=dict)  # the loss curves, for the report's chart


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


def rated_requests(store: Store) -> list[RatedRequest]:
    """The store's feedback as the dataset builder's input."""
    out = []
    for row in store.rated_requests():
        candidates = tuple(
            RatedCandidate(c["text"], c["register"], c["up"], c["down"], c["win"], tuple(c["edits"]))
            for c in row["candidates"]
        )
        brief = {k: row[k] for k in ("product", "event", "age_group", "channel")}
        out.append(RatedRequest(int(row["id"]), row["created_at"], brief, candidates))
    return out


def ensure_corpus(store: Store) -> None:
    """An empty corpus gets the starter corpus, through the same import path as a team's files."""
    if store.counts()["corpus"]:
        return
    rows, _ = prepare_import(starter_corpus_path(), checks=language_checks(), source="starter",
                             overrides=STARTER_MAPPING, existing=store.existing_corpus_hashes)  # fmt: skip
    store.add_corpus_rows(rows)


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
    config: TrainConfig = field(init=False)  # the training settings this retrainer uses

    def __post_init__(self, train_config: TrainConfig | None) -> None:
        self.config = train_config or load_train_config(self.settings.home)

    def active_adapter(self) -> tuple[Path | None, str]:
        """(folder, version) of the active adapter, or (None, "") while the base model serves alone."""
        active = self.store.active_model_version()
        if not active:
            return None, ""
        return (Path(active["adapter_path"]) if active["adapter_path"] else None), active["version"]

    @property
    def registry(self) -> AdapterRegistry:
        return AdapterRegistry(self.settings.home / "adapters")

    def dataset(self, *, force: bool) -> RetrainDataset:
        ensure_corpus(self.store)
        return build_dataset(rated_requests(self.store), self.store.corpus_rows("train"),
                             self.store.corpus_rows("validation"), self.dataset_config, force=force)  # fmt: skip

    def run(self, *, trigger: str, force: bool = False, dry_run: bool = False) -> RetrainOutcome:
        """Build, train, evaluate, gate, and promote or keep; every path is recorded and explained."""
        with retrain_lock(self.settings.home):
            self.registry.clean_staging()
            closed = self.store.fail_unfinished_training_runs(error=INTERRUPTED)
            if closed:
                log.warning("marked %d training run(s) left running by a stopped process as failed", closed)
            try:
                data = self.dataset(force=force)
            except NotEnoughFeedback as exc:
                if not dry_run:
                    run = self.store.start_training_run(trigger=trigger, base_model=self.settings.base_model)
                    self.store.finish_training_run(run, status="skipped", error=str(exc))
                return RetrainOutcome("skipped", str(exc))
            if dry_run:
                return RetrainOutcome("dry-run", "dry run: the dataset is ready; nothing was trained",
                                      dataset=data.summary)  # fmt: skip
            return self._train_and_gate(data, trigger)

    def _train_and_gate(self, data: RetrainDataset, trigger: str) -> RetrainOutcome:
        parent, parent_version = self.active_adapter()
        run = self.store.start_training_run(trigger=trigger, base_model=self.settings.base_model,
                                            parent_version=parent_version,
                                            hyperparameters=self.config.as_dict())  # fmt: skip
        try:
            outcome = self._train_evaluate_save(data, parent, parent_version)
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
            metrics={"old": outcome.old, "new": outcome.new, "losses": outcome.losses},
            gate_decision="promoted" if outcome.status == "promoted" else "kept", gate_reasons=outcome.reasons,
        )  # fmt: skip
        outcome.run_id = run
        return outcome

    def _train_evaluate_save(self, data: RetrainDataset, parent: Path | None, parent_version: str) -> RetrainOutcome:
        if self.settings.model_url:
            return self._train_on_host(data, parent_version)
        spec = CandidateSpec(base_path=base_model_path(self.settings), base_model=self.settings.base_model,
                             parent=parent, parent_version=parent_version, config=self.config,
                             gate_config=self.gate_config, eval_briefs=self.eval_briefs)  # fmt: skip
        corpus = [r["text"] for r in self.store.corpus_rows("train")]
        with _ctrl_c_caught() as interrupted:

            def on_event(message: str) -> None:
                if interrupted():  # a Ctrl-C that a library swallowed stops the run at the next stage
                    raise KeyboardInterrupt
                log.info("retrain: %s", message)

            result = train_candidate(spec, data, corpus, self.registry, on_event=on_event)
        return self._record(result, parent_version, data)

    def _train_on_host(self, data: RetrainDataset, parent_version: str) -> RetrainOutcome:
        """The same work as a fine-tuning job on the GPU host: upload, poll (logging its events), and, if the gate
        promotes, load the new adapter on the host before the store makes it active."""
        from model.jobs import TERMINAL

        client = model_client(self.settings, timeout_s=300)  # the upload of a large dataset can take a while
        body = {"dataset": dataset_to_json(data), "corpus_texts": [r["text"] for r in self.store.corpus_rows("train")],
                "hyperparameters": self.config.as_dict(), "gate": dataclasses.asdict(self.gate_config),
                "parent": parent_version or None, "eval_briefs": self.eval_briefs}  # fmt: skip
        job = client.create_job(body)
        log.info("retrain: fine-tuning job %s on %s is %s", job["id"], client.root, job["status"])
        seen: set[str] = set()
        try:
            while True:
                for event in reversed(client.job_events(job["id"])):
                    if event["id"] not in seen:
                        seen.add(event["id"])
                        log.info("retrain: job %s: %s", job["id"], event["message"])
                if job["status"] in TERMINAL:
                    break
                time.sleep(self.poll_s)
                job = client.job(job["id"])
        except KeyboardInterrupt:
            client.cancel_job(job["id"])  # do not leave the GPU training for nobody
            raise
        if job["status"] != "succeeded":
            reason = (job.get("error") or {}).get("message") or job["status"]
            raise RuntimeError(f"fine-tuning job {job['id']} {job['status']}: {reason}")
        raw = job["result"]
        result = CandidateResult(raw["version"], Path(raw["path"]), raw["promote"], raw["reasons"], raw["old"],
                                 raw["new"], raw["base"], raw["info"])  # fmt: skip
        if result.promote:
            client.load_adapter(result.version, str(result.path))
        return self._record(result, parent_version, data)

    def _record(self, result: CandidateResult, parent_version: str, data: RetrainDataset) -> RetrainOutcome:
        """Record the trained version in the store and promote it if the gate said so."""
        self.store.add_model_version(version=result.version, base_model=self.settings.base_model,
                                     adapter_path=str(result.path), parent_version=parent_version,
                                     status="candidate" if result.promote else "rejected",
                                     metrics=result.info["metrics"])  # fmt: skip
        if result.promote:
            self.store.promote_model_version(result.version)
            if self.on_promote:
                self.on_promote(result.path, result.version)
        verdict = "promoted" if result.promote else "kept the active model"
        return RetrainOutcome("promoted" if result.promote else "kept", f"trained {result.version}; {verdict}",
                              version=result.version, reasons=result.reasons, old=result.old, new=result.new,
                              dataset=data.summary, losses=result.info.get("losses", {}))  # fmt: skip


def outcome_json(outcome: RetrainOutcome) -> str:
    """The outcome as JSON for `copybot retrain --json`."""
    return json.dumps(outcome.__dict__, ensure_ascii=False, default=str)
