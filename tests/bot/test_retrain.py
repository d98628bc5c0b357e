"""`copybot retrain` orchestration on the real starter: dataset, training, evaluation, gate, registry, store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.generation import ActiveAdapterBackend
from bot.retrain import RetrainBusy, Retrainer, retrain_lock
from bot.settings import Settings
from model.dataset import DatasetConfig
from model.engine import LocalEngine
from model.registry import AdapterRegistry
from model.train import TrainConfig
from storage import Store, StoreError


def _seed_feedback(store: Store, requests: int = 8) -> None:
    """Requests, candidates and reactions written through the same store calls the Slack bot makes."""
    for i in range(requests):
        brief = {"product": f"린넨 셔츠 {i}", "event": "여름 세일", "age_group": "30대", "channel": "banner", "n": 3}
        rid = store.record_request(brief, source="slack", user_id="U1")
        ids = store.save_candidates(rid, [
            {"text": f"여름 세일 {i}0% 할인, 지금 만나 보세요", "register": "polite"},
            {"text": f"그냥 셔츠예요 {i}", "register": "polite"},
            {"text": f"시원한 린넨, 가볍게 입어요 {i}", "register": "polite"},
        ], model_version="starter")  # fmt: skip
        for j, cid in enumerate(ids):
            store.set_candidate_message(cid, slack_channel="C1", slack_ts=f"{i}.{j}")
        store.record_feedback(event_id=f"E{i}a", candidate_id=ids[0], user_id="U2", action="added", signal="win")
        store.record_feedback(event_id=f"E{i}b", candidate_id=ids[1], user_id="U2", action="added", signal="down")
        store.record_feedback(event_id=f"E{i}c", candidate_id=ids[2], user_id="U3", action="added", signal="up")
        if i % 2:
            store.record_edit(candidate_id=ids[1], user_id="U4", edited_text=f"여름 린넨 셔츠, 오늘만 {i}0% 할인해요")


@pytest.fixture
def retrainer(home_with_starter: Path) -> Retrainer:
    settings = Settings.from_env()
    store = Store.open(settings.db_path)
    return Retrainer(settings, store, train_config=TrainConfig(epochs=1), eval_briefs=1,
                     dataset_config=DatasetConfig(min_liked=10, min_requests=5))  # fmt: skip


def test_too_little_feedback_is_skipped_and_recorded(retrainer: Retrainer) -> None:
    _seed_feedback(retrainer.store, requests=2)
    outcome = retrainer.run(trigger="cli")
    assert outcome.status == "skipped" and "not enough feedback (have" in outcome.message
    [run] = retrainer.store.db.execute("select status, error from training_runs").fetchall()
    assert run[0] == "skipped" and "need 10" in run[1]


def test_dry_run_reports_the_dataset_and_writes_nothing(retrainer: Retrainer) -> None:
    _seed_feedback(retrainer.store)
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
    _seed_feedback(retrainer.store)
    # an open gate, so this test sees the promotion path; the gate's own tests cover keeping
    retrainer.gate_config = type(retrainer.gate_config)(min_preference_gain=-1, min_loss_drop=-10,
                                                        register_tolerance=1, compliance_tolerance=1)  # fmt: skip
    outcome = retrainer.run(trigger="cli", force=True)
    assert outcome.status == "promoted", outcome.message
    assert outcome.version == "v0001" and len(outcome.reasons) == 4
    assert set(outcome.old) == set(outcome.new) >= {"val_loss", "preference_accuracy", "register_match", "distinct_2"}
    info = AdapterRegistry(retrainer.settings.home / "adapters").load("v0001").info
    for key in ("version", "parent", "dataset", "hyperparameters", "metrics", "gate", "timings", "losses"):
        assert key in info
    assert info["dataset"]["counts"]["sft_replay"] > 0 and info["gate"]["promote"] is True
    run = retrainer.store.db.table("training_runs").get(1)
    assert (run["status"], run["result_version"], run["gate_decision"]) == ("succeeded", "v0001", "promoted")
    assert json.loads(run["gate_reasons"]) == outcome.reasons
    [version] = retrainer.store.model_versions()
    assert version["status"] == "active"

    backend = ActiveAdapterBackend(LocalEngine(starter_dir, version="starter"), retrainer.store)
    backend.sync(force=True)
    assert backend.version == "v0001"
    assert retrainer.store.rollback_model_version() is None  # back to the base model
    backend.sync(force=True)
    assert backend.version == "starter"
    with pytest.raises(StoreError, match="no active model version"):
        retrainer.store.rollback_model_version()
