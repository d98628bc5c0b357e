"""Fine-tuning jobs on the model server: real HTTP, real child processes training the real starter model."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.learning.retrain import ensure_corpus, rated_requests
from model.serving.fine_tuning import FineTuningJobs, JobHost
from model.serving.server import ServerConfig, create_server
from model.training.dataset import DatasetConfig, build_dataset, dataset_to_json
from model.training.registry import AdapterRegistry
from model.writing.engine import LocalEngine
from storage import Store
from tests.bot.feedback import seed_feedback
from tests.http_server import serving

AUTH = {"Authorization": "Bearer k"}
FAST = {"epochs": 1, "preference": "none"}  # the shortest real training, for tests about the job's life


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real retrain dataset (feedback written the way the bot writes it, plus the starter corpus), as JSON."""
    store = Store.open(tmp_path_factory.mktemp("store") / "copybot.db")
    seed_feedback(store)
    ensure_corpus(store)
    data = build_dataset(rated_requests(store), store.corpus_rows("train"), store.corpus_rows("validation"),
                         DatasetConfig(min_liked=10, min_requests=5), force=True)  # fmt: skip
    data.sft = data.sft[:120]  # enough to train on; small enough to keep the test short
    texts = [r["text"] for r in store.corpus_rows("train")]
    store.close()
    return {"dataset": dataset_to_json(data), "corpus_texts": texts}


class Host:
    """A model server with jobs, over HTTP, plus its job manager (to see the child process)."""

    def __init__(self, url: str, jobs: FineTuningJobs, registry: Path) -> None:
        self.url, self.jobs, self.registry = url, jobs, registry

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, headers=AUTH, timeout=60)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=AUTH, timeout=60)

    def wait(self, job_id: str, until: tuple[str, ...], timeout_s: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            job: dict[str, Any] = self.get(f"/v1/fine_tuning/jobs/{job_id}").json()
            if job["status"] in until:
                return job
            assert time.monotonic() < deadline, f"job stuck at {job['status']}"
            time.sleep(0.2)

    def wait_for_process(self, job_id: str) -> int:
        deadline = time.monotonic() + 60
        while (pid := self.jobs.process_id(job_id)) is None:
            assert time.monotonic() < deadline, "the training process did not start"
            time.sleep(0.05)
        return pid


def _host(engine: LocalEngine, tmp_path: Path, starter_dir: Path, max_queued: int = 4) -> Iterator[Host]:
    registry = tmp_path / "adapters"
    jobs = FineTuningJobs(JobHost(jobs_root=tmp_path / "jobs", registry_root=registry, base_path=str(starter_dir),
                                  base_model="starter"), max_queued=max_queued)  # fmt: skip
    config = ServerConfig(base_name="starter", api_key="k", adapters_root=registry)
    with serving(create_server(engine, config, jobs)) as url:
        yield Host(url, jobs, registry)


@pytest.fixture
def host(engine: LocalEngine, tmp_path: Path, starter_dir: Path) -> Iterator[Host]:
    yield from _host(engine, tmp_path, starter_dir)


PROMPT = "<제품>린넨 셔츠<행사>여름 세일<20대><sns><polite><카피>"


@pytest.mark.slow
def test_a_job_trains_scores_and_saves_an_adapter_the_server_then_serves(host: Host, dataset: dict) -> None:
    created = host.post("/v1/fine_tuning/jobs", {**dataset, "hyperparameters": {"epochs": 1}, "eval_briefs": 1})
    assert created.status_code == 200, created.text
    job = created.json()
    assert job["object"] == "fine_tuning.job" and job["id"].startswith("ftjob-") and job["model"] == "starter"
    assert job["status"] == "queued" and job["hyperparameters"]["epochs"] == 1
    host.wait_for_process(job["id"])
    # serving goes on while the child process trains
    reply = host.post("/v1/completions", {"model": "starter", "prompt": PROMPT, "max_tokens": 8})
    assert reply.status_code == 200

    done = host.wait(job["id"], ("succeeded", "failed", "cancelled"))
    assert done["status"] == "succeeded", done["error"]
    assert done["fine_tuned_model"] == "v0001" and done["finished_at"] >= done["started_at"] >= done["created_at"]
    result = done["result"]
    assert isinstance(result["promote"], bool) and len(result["reasons"]) == 8
    assert {"val_loss", "corpus_loss", "preference_gain", "distinct_2"} <= set(result["new"])
    assert result["info"]["losses"]["preference_stage"] == "dpo"
    saved = AdapterRegistry(host.registry).load("v0001")
    assert Path(result["path"]) == saved.path and saved.info["metrics"]["new"] == result["new"]

    messages = [e["message"] for e in host.get(f"/v1/fine_tuning/jobs/{job['id']}/events").json()["data"]]
    assert messages[0] == "job succeeded" and messages[-1] == "job created"  # newest first, as OpenAI lists them
    for expected in ("training process starting", "scoring the new adapter", "saved v0001"):
        assert any(m.startswith(expected) for m in messages), messages

    assert host.post("/v1/load_lora_adapter", {"lora_name": "v0001", "lora_path": result["path"]}).status_code == 200
    tuned = host.post("/v1/completions", {"model": "v0001", "prompt": PROMPT, "max_tokens": 8})
    assert tuned.status_code == 200 and tuned.json()["model"] == "v0001"
    assert [j["id"] for j in host.get("/v1/fine_tuning/jobs").json()["data"]] == [job["id"]]


def test_a_job_whose_training_process_dies_fails_and_serving_goes_on(host: Host, dataset: dict) -> None:
    job = host.post("/v1/fine_tuning/jobs", {**dataset, "hyperparameters": FAST}).json()
    os.kill(host.wait_for_process(job["id"]), signal.SIGKILL)  # what the kernel's OOM killer does
    done = host.wait(job["id"], ("succeeded", "failed", "cancelled"), timeout_s=60)
    assert done["status"] == "failed" and done["fine_tuned_model"] is None
    assert "killed by SIGKILL" in done["error"]["message"]
    assert host.get("/health").json()["status"] == "ok"
    assert host.post("/v1/completions", {"model": "starter", "prompt": PROMPT, "max_tokens": 4}).status_code == 200
    assert AdapterRegistry(host.registry).versions() == []  # nothing half-written became a version
    # the queue is not stuck: the next job starts
    nxt = host.post("/v1/fine_tuning/jobs", {**dataset, "hyperparameters": FAST}).json()
    host.wait_for_process(nxt["id"])
    assert host.post(f"/v1/fine_tuning/jobs/{nxt['id']}/cancel").json()["status"] in ("running", "cancelled")
    assert host.wait(nxt["id"], ("succeeded", "failed", "cancelled"), timeout_s=60)["status"] == "cancelled"


def test_one_job_at_a_time_others_wait_behind_it_and_can_be_cancelled(
    engine: LocalEngine, tmp_path: Path, starter_dir: Path, dataset: dict
) -> None:
    for host in _host(engine, tmp_path, starter_dir, max_queued=1):
        first = host.post("/v1/fine_tuning/jobs", {**dataset, "hyperparameters": FAST}).json()
        host.wait_for_process(first["id"])
        second = host.post("/v1/fine_tuning/jobs", {**dataset, "hyperparameters": FAST}).json()
        assert second["status"] == "queued" and second["queued_behind"] == first["id"]
        third = host.post("/v1/fine_tuning/jobs", {**dataset, "hyperparameters": FAST})
        assert third.status_code == 429 and third.headers["Retry-After"] == "60"
        assert first["id"] in third.json()["error"]["message"]

        cancelled = host.post(f"/v1/fine_tuning/jobs/{second['id']}/cancel").json()
        assert cancelled["status"] == "cancelled"
        assert host.jobs.process_id(first["id"]) is not None  # cancelling the queued job left the running one
        host.post(f"/v1/fine_tuning/jobs/{first['id']}/cancel")
        assert host.wait(first["id"], ("succeeded", "failed", "cancelled"), timeout_s=60)["status"] == "cancelled"
        again = host.post(f"/v1/fine_tuning/jobs/{first['id']}/cancel")
        assert again.status_code == 400 and "already cancelled" in again.json()["error"]["message"]


@pytest.mark.parametrize(
    ("change", "status", "param", "words"),
    [
        ({"hyperparameters": {"learning_rat": 1e-4}}, 400, "hyperparameters", "unknown hyperparameters setting"),
        ({"hyperparameters": {"learning_rate": "fast"}}, 400, "hyperparameters", "must be of type float"),
        ({"hyperparameters": {"epochs": True}}, 400, "hyperparameters", "must be of type int"),
        ({"gate": {"loss_tolerance": []}}, 400, "gate", "must be of type float"),
        ({"dataset": None}, 400, "dataset", "JSON object"),
        ({"dataset": {"sft": []}}, 400, "dataset", "lacks"),
        ({"corpus_texts": [1, 2]}, 400, "corpus_texts", "list of strings"),
        ({"parent": "v0009"}, 404, "parent", "v0009"),
        ({"parent": "../../etc"}, 404, "parent", "invalid adapter name"),
        ({"start": "v0008"}, 404, "start", "v0008"),
        ({"start": 5}, 400, "start", "version name"),
        ({"model": "gpt-4"}, 400, "model", "trains on starter"),
        ({"eval_briefs": 0}, 400, "eval_briefs", "1 to 16"),
    ],
)
def test_bad_job_requests_are_refused_naming_the_problem(
    host: Host, dataset: dict, change: dict, status: int, param: str, words: str
) -> None:
    reply = host.post("/v1/fine_tuning/jobs", {**dataset, **change})
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["param"] == param and words in error["message"]
    assert host.get("/v1/fine_tuning/jobs").json()["data"] == []  # nothing was queued


def test_unknown_jobs_and_missing_keys(host: Host) -> None:
    for path in ("/v1/fine_tuning/jobs/ftjob-nothere", "/v1/fine_tuning/jobs/../etc/events"):
        assert host.get(path).status_code == 404
    assert host.post("/v1/fine_tuning/jobs/ftjob-nothere/cancel").status_code == 404
    assert httpx.post(f"{host.url}/v1/fine_tuning/jobs", json={}).status_code == 401


def test_jobs_left_unfinished_by_a_stopped_server_are_marked_failed(tmp_path: Path) -> None:
    folder = tmp_path / "jobs" / "ftjob-0123abcd"
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"id": folder.name, "status": "running", "created_at": 1}))
    jobs = FineTuningJobs(JobHost(tmp_path / "jobs", tmp_path / "adapters", "unused", "starter"))
    try:
        job = jobs.get(folder.name)
        assert job["status"] == "failed" and "restarted" in job["error"]["message"]
        assert jobs.events(folder.name)[0]["level"] == "error"
    finally:
        jobs.close()
