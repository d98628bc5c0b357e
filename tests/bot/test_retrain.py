"""`copybot retrain` orchestration on the real starter: dataset, training, evaluation, gate, registry, store."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.generation import ActiveAdapterBackend
from bot.retrain import RetrainBusy, Retrainer, retrain_lock
from bot.settings import Settings
from model.candidate import TEMPERATURE_STEPS
from model.dataset import DatasetConfig
from model.engine import LocalEngine
from model.evaluate import GateConfig
from model.registry import AdapterRegistry
from model.train import TrainConfig
from storage import Store, StoreError
from tests.bot.feedback import seed_feedback


@pytest.fixture
def retrainer(home_with_starter: Path) -> Retrainer:
    settings = Settings.from_env()
    store = Store.open(settings.db_path)
    return Retrainer(settings, store, train_config=TrainConfig(epochs=1), eval_briefs=1,
                     dataset_config=DatasetConfig(min_liked=10, min_requests=5))  # fmt: skip


def test_too_little_feedback_is_skipped_and_recorded(retrainer: Retrainer) -> None:
    seed_feedback(retrainer.store, requests=2)
    outcome = retrainer.run(trigger="cli")
    assert outcome.status == "skipped" and "not enough feedback (have" in outcome.message
    [run] = retrainer.store.db.execute("select status, error from training_runs").fetchall()
    assert run[0] == "skipped" and "need 10" in run[1]


def test_dry_run_reports_the_dataset_and_writes_nothing(retrainer: Retrainer) -> None:
    seed_feedback(retrainer.store)
    outcome = retrainer.run(trigger="cli", dry_run=True)
    assert outcome.status == "dry-run" and outcome.dataset["counts"]["sft_feedback"] > 0
    assert retrainer.store.counts()["training_runs"] == 0
    assert AdapterRegistry(retrainer.settings.home / "adapters").versions() == []


def test_a_second_retrain_is_refused_naming_the_first(retrainer: Retrainer) -> None:
    with retrain_lock(retrainer.settings.home), pytest.raises(RetrainBusy, match=r"already running \(pid \d+"):
        retrainer.run(trigger="cli")


@pytest.mark.slow
def test_retrain_records_everything_and_a_promotion_is_hot_swapped_and_rolled_back(
    retrainer: Retrainer, starter_dir: Path
) -> None:
    seed_feedback(retrainer.store)
    # an open gate, so this test sees the promotion path; the gate's own tests cover keeping
    retrainer.gate_config = GateConfig(min_preference_gain=-1, loss_tolerance=10, forgetting_tolerance=10,
                                       register_tolerance=1, compliance_tolerance=1, diversity_tolerance=1)  # fmt: skip
    outcome = retrainer.run(trigger="cli", force=True)
    assert outcome.status == "promoted", outcome.message
    assert outcome.version == "v0001" and len(outcome.reasons) == 6
    assert set(outcome.old) == set(outcome.new) >= {"val_loss", "corpus_loss", "preference_accuracy", "distinct_2"}
    assert 0 <= outcome.new["preference_gain"] <= 1 and math.isnan(outcome.old["preference_gain"])
    info = AdapterRegistry(retrainer.settings.home / "adapters").load("v0001").info
    for key in ("version", "parent", "dataset", "hyperparameters", "metrics", "gate", "timings", "losses", "decoding"):
        assert key in info
    # the temperature factor the gate judged the copies at is the one saved, and the one served
    scale = info["decoding"]["temperature_scale"]
    assert scale == outcome.new["temperature_scale"] and (scale == 1.0 or scale in TEMPERATURE_STEPS)
    assert info["hyperparameters"]["anchor_weight"] == 1.0
    assert info["dataset"]["counts"]["sft_replay"] > 0 and info["gate"]["promote"] is True
    run = retrainer.store.db.table("training_runs").get(1)
    assert (run["status"], run["result_version"], run["gate_decision"]) == ("succeeded", "v0001", "promoted")
    assert json.loads(run["gate_reasons"]) == outcome.reasons
    [version] = retrainer.store.model_versions()
    assert version["status"] == "active"

    backend = ActiveAdapterBackend(LocalEngine(starter_dir, version="starter"), retrainer.store)
    backend.sync(force=True)
    assert backend.version == "v0001" and backend.engine.temperature_scale == scale
    generated = subprocess.run([sys.executable, "-m", "bot", "generate", "--product", "셔츠", "--age", "30대", "-n", "2"],
                               capture_output=True, text=True, check=True)  # fmt: skip
    assert "(model v0001" in generated.stdout  # the CLI writes with the active adapter too
    listed = subprocess.run([sys.executable, "-m", "bot", "model", "list"], capture_output=True, text=True, check=True)
    assert listed.stdout.startswith("v0001  active") and f"temperature x{scale:g}" in listed.stdout
    assert {row[0] for row in retrainer.store.db.execute("select model_version from candidates where "
                                                         "request_id = (select max(id) from requests)")} == {"v0001"}  # fmt: skip
    assert retrainer.store.rollback_model_version() is None  # back to the base model
    backend.sync(force=True)
    assert backend.version == "starter"
    with pytest.raises(StoreError, match="no active model version"):
        retrainer.store.rollback_model_version()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_a_retrain_killed_mid_run_leaves_the_active_model_alone(home_with_starter: Path, sig: signal.Signals) -> None:
    settings = Settings.from_env()
    store = Store.open(settings.db_path)
    seed_feedback(store)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "retrain", "--force"], env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 120
    while not store.db.execute("select 1 from training_runs where status = 'running'").fetchone():
        assert proc.poll() is None and time.monotonic() < deadline, "the retrain never started training"
        time.sleep(0.2)
    time.sleep(1.5)  # well inside training: loading, SFT, evaluation
    proc.send_signal(sig)
    assert proc.wait(timeout=60) != 0, proc.communicate()[0].decode(errors="replace")[-3000:]
    assert store.active_model_version() is None and store.model_versions() == []
    assert AdapterRegistry(settings.home / "adapters").versions() == []
    [(status, error)] = store.db.execute("select status, error from training_runs").fetchall()
    if sig == signal.SIGINT:  # an interrupt closes its own run
        assert (status, error) == ("failed", "interrupted (Ctrl-C)")
    else:  # a killed process cannot; the next retrain (which the lock lets start) closes it
        assert status == "running"
        outcome = Retrainer(settings, store).run(trigger="cli", dry_run=True)
        assert outcome.status == "dry-run"
        assert store.db.execute("select status, error from training_runs").fetchone()[1].startswith("interrupted")


def test_a_ctrl_c_that_a_library_swallowed_is_still_remembered() -> None:
    from bot.retrain import _ctrl_c_caught

    before = signal.getsignal(signal.SIGINT)
    with _ctrl_c_caught() as interrupted:
        assert not interrupted()
        try:  # what a finaliser does to a KeyboardInterrupt: it is printed and dropped
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass
        assert interrupted()
    assert signal.getsignal(signal.SIGINT) is before

    seen = []

    def in_a_thread() -> None:  # the scheduler's threads cannot handle signals: nothing is installed there
        with _ctrl_c_caught() as pressed:
            seen.append((pressed(), signal.getsignal(signal.SIGINT) is before))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen == [(False, True)]
