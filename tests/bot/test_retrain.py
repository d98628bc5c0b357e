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
from bot.learning.retrain import RetrainBusy, Retrainer, retrain_lock
from bot.settings import Settings
from model.training.challenger import TEMPERATURE_STEPS, ChallengerResult
from model.training.dataset import DatasetConfig, build_dataset
from model.training.evaluate import GateConfig
from model.training.registry import AdapterRegistry
from model.training.train import TrainConfig
from model.writing.engine import LocalEngine
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


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    from tests.cli import run  # in process, with this process's COPYBOT_ variables, as the subprocess inherited them

    inherited = {k: v for k, v in os.environ.items() if k.startswith(("COPYBOT_", "SLACK_"))}
    return run(*args, extra_env=inherited, check=True)


@pytest.mark.slow
def test_retrain_records_everything_starts_a_trial_and_the_winner_is_hot_swapped_and_rolled_back(
    retrainer: Retrainer, starter_dir: Path
) -> None:
    seed_feedback(retrainer.store)
    # an open gate, so this test sees the trial path; the gate's own tests cover keeping
    retrainer.gate_config = GateConfig(
        loss_tolerance=10,
        forgetting_tolerance=10,
        register_tolerance=1,
        compliance_tolerance=1,
        diversity_tolerance=1,
        length_tolerance=1,
    )
    outcome = retrainer.run(trigger="cli", force=True)
    assert outcome.status == "trial", outcome.message
    assert "now on trial against the base model" in outcome.message and outcome.trial["challenger"] == "v0001"
    assert outcome.version == "v0001" and len(outcome.reasons) == 8
    assert set(outcome.old) == set(outcome.new) >= {"val_loss", "corpus_loss", "preference_accuracy", "distinct_2"}
    assert 0 <= outcome.new["preference_gain"] <= 1 and math.isnan(outcome.old["preference_gain"])
    assert {"auroc_new", "auroc_current", "chosen", "heldout"} <= set(outcome.reward)
    # where the retrain's time went, part by part (python -m benchmarks.retrain --base reads it)
    assert {"load", "sft", "preference", "score_active", "score_new", "calibrate", "reward"} <= set(outcome.timings)
    assert all(seconds >= 0 for seconds in outcome.timings.values())
    info = AdapterRegistry(retrainer.settings.home / "adapters").load("v0001").info
    for key in ("version", "parent", "dataset", "hyperparameters", "metrics", "gate", "timings", "losses", "decoding",
                "reward"):  # fmt: skip
        assert key in info
    # the temperature factor the gate judged the copies at is the one saved, and the one served
    scale = info["decoding"]["temperature_scale"]
    assert scale == outcome.new["temperature_scale"] and (scale == 1.0 or scale in TEMPERATURE_STEPS)
    assert info["hyperparameters"]["anchor_weight"] == 1.0
    assert info["dataset"]["counts"]["sft_replay"] > 0 and info["gate"]["promote"] is True
    run = retrainer.store.db.table("training_runs").get(1)
    assert (run["status"], run["result_version"], run["gate_decision"]) == ("succeeded", "v0001", "trial")
    assert json.loads(run["gate_reasons"]) == outcome.reasons and "reward" in json.loads(run["metrics"])
    [version] = retrainer.store.model_versions()
    assert version["status"] == "challenger" and retrainer.store.active_model_version() is None

    # one trial at a time: the next retrain waits for it, and says so
    waited = retrainer.run(trigger="cli", force=True)
    assert waited.status == "skipped" and waited.message.startswith("a live trial is still deciding (trial 1: v0001")
    assert retrainer.store.db.execute("select status from training_runs where id = 2").fetchone()[0] == "skipped"

    # while it runs, the CLI writes with both sides, and `copybot model …` shows and ends it
    generated = _cli("generate", "--product", "셔츠", "--age", "30대", "-n", "4", "--seed", "3")
    assert "(model starter" in generated.stdout  # the champion serves; the challenger writes its share
    assert {row[0] for row in retrainer.store.db.execute("select model_version from candidates where "
                                                         "request_id = (select max(id) from requests)")} == {"starter", "v0001"}  # fmt: skip
    listed = _cli("model", "list").stdout
    assert listed.startswith("v0001  challenger") and f"temperature x{scale:g}" in listed
    assert "trial 1: v0001 (challenger) vs the base model (champion): 0 rated requests" in listed
    shown = json.loads(_cli("model", "trial", "--json").stdout)
    assert shown["challenger"] == "v0001" and shown["rated"] == 0 and shown["next_look"] == 10
    assert _cli("model", "trial", "--promote").stdout.strip() == "v0001 is now active; the trial is over"

    backend = ActiveAdapterBackend(LocalEngine(starter_dir, version="starter"), retrainer.store)
    backend.sync(force=True)
    assert backend.version == "v0001" and backend.engine.temperature_scale == scale
    assert "(model v0001" in _cli("generate", "--product", "셔츠", "--age", "30대", "-n", "2").stdout
    assert retrainer.store.rollback_model_version() is None  # back to the base model
    backend.sync(force=True)
    assert backend.version == "starter"
    with pytest.raises(StoreError, match="no active model version"):
        retrainer.store.rollback_model_version()


@pytest.mark.slow
def test_a_retrain_that_learned_nothing_within_the_budget_is_kept_not_tried(retrainer: Retrainer) -> None:
    """The forgetting budget trips at the first check and keeps step 0: the adapter is the one training started
    from, so even a wide-open gate must not start a live trial of it, and the outcome says why."""
    seed_feedback(retrainer.store)
    retrainer.gate_config = GateConfig(
        loss_tolerance=10,
        forgetting_tolerance=10,
        register_tolerance=1,
        compliance_tolerance=1,
        diversity_tolerance=1,
        length_tolerance=1,
    )
    retrainer.config = TrainConfig(
        learning_rate=0.2,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        epochs=1,
        min_steps=4,
        forgetting_budget=1e-4,
        forgetting_checks=4,
    )
    outcome = retrainer.run(trigger="cli", force=True)
    assert outcome.status == "kept", outcome.message
    assert "learned nothing within the forgetting budget; kept the active model" in outcome.message
    assert outcome.losses["unchanged"] and "kept step 0" in outcome.losses["stopped"]
    assert [r for r in outcome.reasons if r.startswith("not met: something learned: SFT stopped at step")]
    assert outcome.new == outcome.old  # the same weights: scored once
    assert "score_new" not in outcome.timings
    assert retrainer.store.running_trial() is None
    assert [v["status"] for v in retrainer.store.model_versions()] == ["rejected"]


def _result(tmp_path: Path, version: str, *, promote: bool) -> ChallengerResult:
    folder = tmp_path / version
    folder.mkdir()
    return ChallengerResult(version, folder, promote, ["ok: …"], {}, {}, {}, {"metrics": {}, "reward": {}})


@pytest.mark.parametrize(("live", "promote", "status"), [("on", True, "trial"), ("off", True, "promoted"),
                                                         ("on", False, "kept"), ("off", False, "kept")])  # fmt: skip
def test_what_a_passing_adapter_becomes_with_and_without_live_trials(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live: str, promote: bool, status: str
) -> None:
    monkeypatch.setenv("COPYBOT_LIVE_TRIALS", live)
    settings = Settings.from_env()
    store = Store.open(settings.db_path)
    retrainer = Retrainer(settings, store, train_config=TrainConfig())
    # without live trials the offline gate's preference check must show a gain by itself
    assert retrainer.effective_gate().preference == ("floor" if live == "on" else "gain")
    data = build_dataset([], [], [], force=True)
    outcome = retrainer._record(_result(tmp_path, "v0001", promote=promote), "", data, run=1)
    assert outcome.status == status
    versions = {r["version"]: r["status"] for r in store.model_versions()}
    assert versions["v0001"] == {"trial": "challenger", "promoted": "active", "kept": "rejected"}[status]
    assert (store.running_trial() is not None) == (status == "trial")


def test_after_an_undecided_trial_that_leaned_its_way_the_next_retrain_starts_from_its_challenger(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.from_env()
    store = Store.open(settings.db_path)

    def peft_files(folder: Path) -> None:  # what the registry checks for; never loaded here
        (folder / "adapter_config.json").write_text("{}")
        (folder / "adapter_model.safetensors").write_bytes(b"")

    leader = AdapterRegistry(settings.home / "adapters").save("v0001", peft_files, {"parent": ""}).path
    store.add_model_version(version="v0001", base_model="starter", adapter_path=str(leader))
    trial = store.start_trial(challenger="v0001", champion="", rule={})
    store.finish_trial(trial, promote=False, reason="no clear difference after 30 rated requests",
                       tally={"rated": 30, "p_better": 0.8})  # fmt: skip
    assert Retrainer(settings, store).start_from() == (leader, "v0001")
    assert Retrainer(settings, store, adopt=True).start_from() == (None, "")  # a first adapter starts afresh
    monkeypatch.setenv("COPYBOT_LIVE_TRIALS", "off")  # the offline gate alone would promote what it grew from
    assert Retrainer(Settings.from_env(), store).start_from() == (None, "")
    monkeypatch.setenv("COPYBOT_LIVE_TRIALS", "on")
    monkeypatch.setenv("COPYBOT_BUILD_ON_LEADER", "off")
    assert Retrainer(Settings.from_env(), store).start_from() == (None, "")
    monkeypatch.delenv("COPYBOT_BUILD_ON_LEADER")
    (leader / "adapter_config.json").unlink()  # its adapter is gone: start from the champion, not fail
    assert Retrainer(Settings.from_env(), store).start_from() == (None, "")
    data = build_dataset([], [], [], force=True)
    outcome = Retrainer(settings, store)._record(_result(tmp_path, "v0002", promote=True), "", data, run=1,
                                                 start_version="v0001")  # fmt: skip
    assert outcome.status == "trial" and "trained v0002 from v0001 (its trial leaned its way)" in outcome.message
    assert {r["version"]: r["parent_version"] for r in store.model_versions()}["v0002"] == "v0001"
    assert store.running_trial()["champion_version"] == ""  # tried against what serves, not what it grew from


@pytest.mark.slow
def test_a_real_retrain_starts_from_the_undecided_leader_and_is_gated_against_the_champion(
    retrainer: Retrainer, caplog: pytest.LogCaptureFixture
) -> None:
    seed_feedback(retrainer.store)
    retrainer.gate_config = GateConfig(
        loss_tolerance=10,
        forgetting_tolerance=10,
        register_tolerance=1,
        compliance_tolerance=1,
        diversity_tolerance=1,
        length_tolerance=1,
    )
    assert retrainer.run(trigger="cli", force=True).status == "trial"
    trial = retrainer.store.running_trial()["id"]
    retrainer.store.finish_trial(trial, promote=False, reason="no clear difference after 30 rated requests",
                                 tally={"rated": 30, "p_better": 0.7})  # fmt: skip
    with caplog.at_level("INFO", logger="bot.learning.retrain"):
        outcome = retrainer.run(trigger="cli", force=True)
    assert outcome.status == "trial" and outcome.version == "v0002" and "from v0001" in outcome.message
    assert any(r.getMessage().startswith("retrain: training from v0001 on") for r in caplog.records)
    info = AdapterRegistry(retrainer.settings.home / "adapters").load("v0002").info
    assert info["trained_from"] == "v0001" and info["parent"] == ""  # scored against the base model that serves
    # the base model's gate scores were kept by the first retrain (same held-out set, panel and code): not redone
    kept = info["gate_scores"]["active"]
    assert kept["kept"] > 0 and kept["scored"] == 0 and info["gate_scores"]["new"]["scored"] > 0
    assert outcome.trial["champion"] == "base model"
    assert {r["version"]: r["parent_version"] for r in retrainer.store.model_versions()}["v0002"] == "v0001"


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
    from bot.learning.retrain import _ctrl_c_caught

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
