"""COPYBOT_MODEL_URL: Slack, `copybot generate` and `copybot retrain` on a model server in another "host"
(a real server over HTTP with its own COPYBOT_HOME), and what users and operators see when that host fails."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bot.cli.model_server import build_model_server
from bot.generation import ActiveAdapterBackend, load_backend, write_brief
from bot.learning.retrain import Retrainer, RetrainOutcome
from bot.settings import Settings
from model.training.dataset import DatasetConfig
from model.training.evaluate import GateConfig
from model.training.train import TrainConfig
from storage import Store
from tests.bot.conftest import Harness
from tests.bot.feedback import seed_feedback
from tests.cli import run
from tests.http_server import serving

OPEN_GATE = GateConfig(min_preference_gain=-1, loss_tolerance=10, forgetting_tolerance=10, register_tolerance=1,
                       compliance_tolerance=1, diversity_tolerance=1, length_tolerance=1)  # fmt: skip


@pytest.fixture
def gpu_host(tmp_path: Path, starter_dir: Path) -> Iterator[tuple[str, Path]]:
    """`copybot model-server` as the GPU host builds it: its own home (starter linked), key "k", jobs enabled."""
    home = tmp_path / "gpu-home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "starter").symlink_to(starter_dir, target_is_directory=True)
    settings = Settings.from_env({"COPYBOT_HOME": str(home), "COPYBOT_MODEL_API_KEY": "k"})
    with serving(build_model_server(settings)) as url:
        yield url, home


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_slack_copy_through_the_gpu_host(make_harness: Callable[..., Harness], gpu_host: tuple[str, Path]) -> None:
    url, _ = gpu_host
    backend = load_backend(Settings.from_env({"COPYBOT_HOME": "/nonexistent", "COPYBOT_MODEL_URL": url,
                                              "COPYBOT_MODEL_API_KEY": "k"}))  # fmt: skip
    h = make_harness(backend)
    h.ack_json(h.command("린넨 셔츠 / 여름 세일 / 20대"))
    posts = h.fake.wait_for("chat.postMessage", 6, timeout=120)
    assert len([p for p in posts if p.get("thread_ts")]) == 5
    [update] = h.fake.wait_for("chat.update", 1)
    assert "후보 5개" in update["text"] and "starter" in update["text"]
    [request] = h.store.requests_with_status("done")
    assert {c["model_version"] for c in h.store.candidates_for(request["id"])} == {"starter"}


def test_an_unreachable_host_tells_slack_in_korean_and_the_log_in_english(
    make_harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    backend = load_backend(Settings.from_env({"COPYBOT_HOME": "/nonexistent",
                                              "COPYBOT_MODEL_URL": f"http://127.0.0.1:{_closed_port()}"}))  # fmt: skip
    backend.client.backoff_s = 0.01  # type: ignore[attr-defined]
    h = make_harness(backend)
    with caplog.at_level(logging.WARNING):
        h.ack_json(h.command("린넨 셔츠 / 여름 세일 / 20대"))
        [update] = h.fake.wait_for("chat.update", 1)
    assert "모델 서버에 연결하지 못했어요" in update["text"]
    [request] = h.store.requests_with_status("failed")
    assert "cannot reach the model host" in request["error"] and "COPYBOT_MODEL_URL" in request["error"]
    assert any("failed in the model: cannot reach the model host" in r.getMessage() for r in caplog.records)


def test_copybot_generate_uses_the_gpu_host_and_a_wrong_key_is_a_clear_error(
    home: Path, gpu_host: tuple[str, Path]
) -> None:
    url, _ = gpu_host
    ok = run("generate", "--product", "린넨 셔츠", "--age", "20대", "-n", "2", env_home=home,
             extra_env={"COPYBOT_MODEL_URL": url, "COPYBOT_MODEL_API_KEY": "k"})  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "(model starter," in ok.stdout and not (home / "models").exists()  # nothing loaded on this host
    bad = run("generate", "--product", "린넨 셔츠", "--age", "20대", env_home=home,
              extra_env={"COPYBOT_MODEL_URL": url, "COPYBOT_MODEL_API_KEY": "nope"})  # fmt: skip
    assert bad.returncode == 1 and "refused the API key" in bad.stderr and "COPYBOT_MODEL_API_KEY" in bad.stderr


def retrain_on_host(home: Path, url: str, **env: str) -> tuple[Settings, Store, RetrainOutcome]:
    """A forced retrain, on the host at `url`, of the seeded feedback in a fresh store at `home`."""
    settings = Settings.from_env({"COPYBOT_HOME": str(home), "COPYBOT_MODEL_URL": url, "COPYBOT_MODEL_API_KEY": "k",
                                  **env})  # fmt: skip
    store = Store.open(settings.db_path)
    seed_feedback(store)
    retrainer = Retrainer(settings, store, train_config=TrainConfig(epochs=1), eval_briefs=1, gate_config=OPEN_GATE,
                          dataset_config=DatasetConfig(min_liked=10, min_requests=5), poll_s=0.2)  # fmt: skip
    return settings, store, retrainer.run(trigger="cli", force=True)


@pytest.mark.slow
def test_retrain_runs_as_a_job_on_the_gpu_host_and_its_trial_and_promotion_go_through_the_load_endpoint(
    home: Path, gpu_host: tuple[str, Path]
) -> None:
    url, gpu_home = gpu_host
    settings, store, outcome = retrain_on_host(home, url)
    assert outcome.status == "trial", outcome.message
    assert outcome.version == "v0001" and len(outcome.reasons) == 8
    [version] = store.model_versions()
    assert version["status"] == "challenger" and version["adapter_path"] == str(gpu_home / "adapters" / "v0001")
    assert not (home / "adapters").exists() and not (home / "models").exists()  # all model work ran on the host
    models = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer k"}).json()["data"]
    assert [m["id"] for m in models] == ["starter", "v0001"]  # loaded by the retrain, for the trial

    from model.writing.brief import Brief
    from model.writing.writer import CopyWriter

    backend = ActiveAdapterBackend(load_backend(settings), store)
    writer = CopyWriter(backend)
    brief = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대", n=2)
    mixed, trial_id = write_brief(store, writer, brief, seed=1, ordinal=1)
    assert trial_id == store.running_trial()["id"]
    assert sorted(c.model_version for c in mixed.candidates) == ["starter", "v0001"]  # each side wrote one on the host

    store.promote_model_version("v0001")  # what `copybot model trial --promote` does; it ends the trial
    backend.sync(force=True)  # rather than wait the few seconds between its checks of the store
    promoted, trial_id = write_brief(store, writer, brief, seed=1)
    assert trial_id is None and promoted.model_version == "v0001"
    assert {c.model_version for c in promoted.candidates} == {"v0001"}
    run_row = store.db.table("training_runs").get(1)
    assert (run_row["status"], run_row["result_version"], run_row["gate_decision"]) == ("succeeded", "v0001", "trial")


@pytest.mark.slow
def test_with_live_trials_off_a_retrain_on_the_gpu_host_promotes_at_once(
    home: Path, gpu_host: tuple[str, Path]
) -> None:
    _, store, outcome = retrain_on_host(home, gpu_host[0], COPYBOT_LIVE_TRIALS="off")
    assert outcome.status == "promoted", outcome.message
    assert store.active_model_version()["version"] == "v0001" and store.running_trial() is None


def test_a_retrain_the_host_refuses_is_recorded_as_failed(home: Path, gpu_host: tuple[str, Path]) -> None:
    url, _ = gpu_host
    settings = Settings.from_env({"COPYBOT_HOME": str(home), "COPYBOT_MODEL_URL": url, "COPYBOT_MODEL_API_KEY": "k"})
    store = Store.open(settings.db_path)
    seed_feedback(store)
    # the store's active version is one the GPU host has never seen
    store.add_model_version(version="v0007", base_model="starter", adapter_path="/elsewhere/v0007",
                            parent_version="", status="candidate", metrics={})  # fmt: skip
    store.promote_model_version("v0007")
    started = time.monotonic()
    outcome = Retrainer(settings, store, dataset_config=DatasetConfig(min_liked=10, min_requests=5)).run(
        trigger="cli", force=True
    )
    assert outcome.status == "failed" and "parent adapter" in outcome.message and "v0007" in outcome.message
    assert time.monotonic() - started < 60  # refused at once; nothing trained
    assert store.db.table("training_runs").get(1)["status"] == "failed"
    assert store.active_model_version()["version"] == "v0007"


@pytest.mark.slow
def test_a_leader_the_gpu_host_does_not_have_is_not_started_from(
    home: Path, gpu_host: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.open(Settings.from_env({"COPYBOT_HOME": str(home)}).db_path)
    # an undecided trial leaned towards v0007, which this host's registry has never held (a host rebuilt since)
    store.add_model_version(version="v0007", base_model="starter", adapter_path="/elsewhere/v0007")
    trial = store.start_trial(challenger="v0007", champion="", rule={})
    store.finish_trial(trial, promote=False, reason="no clear difference after 30 rated requests",
                       tally={"rated": 30, "p_better": 0.8})  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="bot.learning.retrain"):
        _, store, outcome = retrain_on_host(home, gpu_host[0])
    assert outcome.status == "trial", outcome.message
    assert "from v0007" not in outcome.message  # trained from the champion (the base model), and says so
    assert any("does not have v0007 to start from" in r.getMessage() for r in caplog.records)
    assert {r["version"]: r["parent_version"] for r in store.model_versions()}[outcome.version] == ""
