"""Fine-tuning jobs on the GPU host, in the shape of OpenAI's jobs API, each run in a child process.

A job is a folder `JOBS/<id>/` with `job.json` (its state), `spec.json` and `dataset.json` (its input),
`events.jsonl` (progress, appended by this process and by the child), `result.json` (written by the child, only
when the new version is saved) and `output.log` (the child's stdout and stderr). One job runs at a time; others
wait in a short FIFO queue. Training runs in `python -m model.serving.fine_tuning_runner JOB_DIR`, so a crash,
an out-of-memory kill or a cancel ends that process and never the server.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, StrictInt, StrictStr, ValidationError

from model.errors import AdapterError
from model.training.config_schema import ConfigError, config_from
from model.training.dataset import dataset_from_json
from model.training.evaluate import GateConfig
from model.training.registry import AdapterRegistry
from model.training.train import TrainConfig

TERMINAL = ("succeeded", "failed", "cancelled")
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # so the child can import `model` from any working directory


class JobError(Exception):
    """A request the jobs API refuses: HTTP status, message, and the offending parameter."""

    def __init__(self, status: int, message: str, *, param: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.retry_after = status, message, param, retry_after


@dataclass(frozen=True)
class JobHost:
    """What jobs need from the host: where jobs and adapters live, and the base model to train on."""

    jobs_root: Path
    registry_root: Path
    base_path: str  # a loadable path or Hugging Face id
    base_model: str  # the name the base is served and recorded under


def append_event(job_dir: Path, message: str, *, level: str = "info") -> None:
    """Add one event line (parent and child both append; each line is one small write)."""
    event = {"object": "fine_tuning.job.event", "id": f"ftevent-{uuid.uuid4().hex[:20]}",
             "created_at": int(time.time()), "level": level, "message": message}  # fmt: skip
    with (job_dir / "events.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(event, ensure_ascii=False) + "\n")


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically (temp file, then rename), so a reader never sees half a file."""
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(value, ensure_ascii=False), "utf-8")
    os.replace(temp, path)


T = TypeVar("T")


class JobRequest(BaseModel):
    """The body of POST /v1/fine_tuning/jobs. Fields OpenAI's shape has and this host does not use are ignored;
    `dataset` is checked by the dataset's own reader, the settings by `config_from`."""

    model: StrictStr | None = None
    dataset: dict[str, Any] | None = None
    corpus_texts: list[StrictStr] = []
    hyperparameters: Any = None
    gate: Any = None
    parent: StrictStr | None = None
    start: StrictStr | None = None
    eval_briefs: StrictInt = Field(8, ge=1, le=16)


# What to say about a field that fails JobRequest's types or bounds.
FIELD_PROBLEMS = {
    "model": "model must be a model name",
    "dataset": "dataset must be a JSON object with the retrain's examples",
    "corpus_texts": "corpus_texts must be a list of strings",
    "parent": "parent must be a version name such as v0003, or null",
    "start": "start must be a version name such as v0003, or null",
    "eval_briefs": "eval_briefs must be an integer from 1 to 16",
}


def _request(body: Any) -> JobRequest:
    if not isinstance(body, dict):
        raise JobError(400, "send a JSON object with dataset, hyperparameters, gate and parent")
    try:
        return JobRequest.model_validate(body)
    except ValidationError as exc:
        param = str(exc.errors()[0]["loc"][0])
        raise JobError(400, FIELD_PROBLEMS.get(param, str(exc)), param=param) from exc


def _settings(cls: type[T], raw: Any, param: str) -> T:
    try:
        return config_from(cls, raw, param)
    except ConfigError as exc:
        raise JobError(400, str(exc), param=param) from exc


class FineTuningJobs:
    """Creates, runs (one at a time), reports and cancels jobs; state survives in the jobs folder."""

    def __init__(self, host: JobHost, *, max_queued: int = 4, python: str = sys.executable) -> None:
        self.host = host
        self.max_queued = max_queued
        self.python = python
        self.host.jobs_root.mkdir(parents=True, exist_ok=True)
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._running: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._cancelled: set[str] = set()
        self._closed = False
        self._recover()
        self._worker = threading.Thread(target=self._work, name="fine-tuning-jobs", daemon=True)
        self._worker.start()

    # ---- the API -------------------------------------------------------------------------------------------
    def create(self, body: Any) -> dict[str, Any]:
        """Validate, store and queue a job; returns its public view (status `queued`, naming what it waits for)."""
        spec, payload = self._validate(body)
        with self._cond:
            if len(self._queue) >= self.max_queued:
                raise JobError(429, f"{len(self._queue)} fine-tuning jobs are already waiting "
                                    f"(running: {self._running}); try again later", retry_after=60)  # fmt: skip
            job_id = f"ftjob-{uuid.uuid4().hex[:24]}"
            folder = self.host.jobs_root / job_id
            folder.mkdir()
            write_json(folder / "dataset.json", payload)
            write_json(folder / "spec.json", spec)
            ahead = self._queue[-1] if self._queue else self._running
            job = {"id": job_id, "object": "fine_tuning.job", "model": self.host.base_model,
                   "created_at": int(time.time()), "started_at": None, "finished_at": None, "status": "queued",
                   "fine_tuned_model": None, "parent": spec["parent"], "hyperparameters": spec["hyperparameters"],
                   "queued_behind": ahead, "error": None, "result": None}  # fmt: skip
            write_json(folder / "job.json", job)
            append_event(folder, f"job created; waiting for {ahead}" if ahead else "job created")
            self._queue.append(job_id)
            self._cond.notify_all()
        return job

    def get(self, job_id: str) -> dict[str, Any]:
        """The job's public view; 404 for an unknown id."""
        job: dict[str, Any] = json.loads((self._folder(job_id) / "job.json").read_text("utf-8"))
        return job

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """Newest first."""
        jobs = [self.get(p.name) for p in self.host.jobs_root.iterdir() if (p / "job.json").is_file()]
        return sorted(jobs, key=lambda j: (j["created_at"], j["id"]), reverse=True)[:limit]

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """Events newest first, as OpenAI lists them."""
        path = self._folder(job_id) / "events.jsonl"
        lines = path.read_text("utf-8").splitlines() if path.is_file() else []
        return [json.loads(line) for line in reversed(lines) if line.strip()]

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job, or stop a running job's process; a finished job cannot be cancelled."""
        folder = self._folder(job_id)
        with self._cond:
            job = self.get(job_id)
            if job["status"] in TERMINAL:
                raise JobError(400, f"job {job_id} already {job['status']}; nothing to cancel", param="job_id")
            self._cancelled.add(job_id)
            if job_id in self._queue:
                self._queue.remove(job_id)
                self._finish(folder, "cancelled", error=None)
            elif job_id == self._running and self._process is not None:
                append_event(folder, "cancel requested; stopping the training process")
                self._process.send_signal(signal.SIGTERM)
        return self.get(job_id)

    def process_id(self, job_id: str) -> int | None:
        """The running child's pid (for operators and tests)."""
        with self._cond:
            return self._process.pid if self._process is not None and self._running == job_id else None

    def close(self, *, timeout_s: float = 10.0) -> None:
        """Stop the worker; a running job is stopped and marked failed, queued ones too (the server is going)."""
        with self._cond:
            self._closed = True
            if self._process is not None:
                self._process.send_signal(signal.SIGTERM)
            self._cond.notify_all()
        self._worker.join(timeout_s)
        for job_id in list(self._queue):
            self._finish(self.host.jobs_root / job_id, "failed", error="the model server stopped before the job ran")

    # ---- internals -----------------------------------------------------------------------------------------
    def _folder(self, job_id: str) -> Path:
        if not job_id.startswith("ftjob-") or not job_id[6:].isalnum():
            raise JobError(404, f"no fine-tuning job {job_id!r}", param="job_id")
        folder = self.host.jobs_root / job_id
        if not (folder / "job.json").is_file():
            raise JobError(404, f"no fine-tuning job {job_id!r}", param="job_id")
        return folder

    def _validate(self, body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        request = _request(body)
        if request.model not in (None, self.host.base_model):
            raise JobError(400, f"this host trains on {self.host.base_model}, not {request.model}", param="model")
        try:
            dataset_from_json(request.dataset)
        except (ValueError, TypeError) as exc:
            raise JobError(400, f"dataset: {exc}", param="dataset") from exc
        hyper = _settings(TrainConfig, request.hyperparameters, "hyperparameters")
        gate = _settings(GateConfig, request.gate, "gate")
        parent, start = request.parent or "", request.start or ""
        for name, version in (("parent", parent), ("start", start)):
            if version:
                try:
                    AdapterRegistry(self.host.registry_root).load(version)
                except AdapterError as exc:
                    raise JobError(404, f"{name} adapter: {exc}", param=name) from exc
        spec = {"base_path": self.host.base_path, "base_model": self.host.base_model,
                "registry": str(self.host.registry_root), "parent": parent, "start": start,
                "eval_briefs": request.eval_briefs, "hyperparameters": hyper.as_dict(),
                "gate": dataclasses.asdict(gate)}  # fmt: skip
        return spec, {"dataset": request.dataset, "corpus_texts": request.corpus_texts}

    def _recover(self) -> None:
        """Jobs a previous server left queued or running cannot be resumed: mark them failed, saying so."""
        for folder in self.host.jobs_root.iterdir():
            if (folder / "job.json").is_file() and self.get(folder.name)["status"] not in TERMINAL:
                self._finish(folder, "failed", error="the model server restarted before the job finished; "
                                                     "submit it again")  # fmt: skip

    def _update(self, folder: Path, **changes: Any) -> dict[str, Any]:
        job = {**self.get(folder.name), **changes}
        write_json(folder / "job.json", job)
        return job

    def _finish(self, folder: Path, status: str, *, error: str | None, result: dict[str, Any] | None = None) -> None:
        changes: dict[str, Any] = {"status": status, "finished_at": int(time.time()), "queued_behind": None}
        if error:
            changes["error"] = {"code": "training_failed", "message": error, "param": None}
        if result:
            changes["result"] = result
            changes["fine_tuned_model"] = result["version"]
        self._update(folder, **changes)
        append_event(folder, f"job {status}" + (f": {error}" if error else ""), level="error" if error else "info")

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job_id = self._queue.popleft()
                folder = self.host.jobs_root / job_id
                self._update(folder, status="running", started_at=int(time.time()), queued_behind=None)
                append_event(folder, "training process starting")
                env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                                                 os.environ.get("PYTHONPATH")]))}  # fmt: skip
                with (folder / "output.log").open("wb") as log:
                    command = [self.python, "-m", "model.serving.fine_tuning_runner", str(folder)]
                    self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
                self._running = job_id
                process = self._process
            code = process.wait()
            with self._cond:
                self._process, self._running = None, None
                self._settle(job_id, folder, code)

    def _settle(self, job_id: str, folder: Path, code: int) -> None:
        result_path = folder / "result.json"
        if job_id in self._cancelled:
            self._finish(folder, "cancelled", error=None)
        elif code == 0 and result_path.is_file():
            self._finish(folder, "succeeded", error=None, result=json.loads(result_path.read_text("utf-8")))
        elif self._closed:
            self._finish(folder, "failed", error="the model server stopped while the job ran; submit it again")
        else:
            self._finish(folder, "failed", error=f"{_exit_text(code)}; last output: {_tail(folder / 'output.log')}")


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the training process was killed by {name} (out of memory, or stopped by an operator)"
    return f"the training process exited with code {code}"


def _tail(path: Path, lines: int = 3) -> str:
    text = path.read_text("utf-8", errors="replace").strip() if path.is_file() else ""
    return " | ".join(text.splitlines()[-lines:]) or "(none)"
