"""Store behaviour: requests, candidates, feedback, edits, versions, runs, and concurrent writers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from storage import Store, StoreError

BRIEF = {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "20대", "channel": "sns", "n": 2, "notes": ""}


def _request_with_candidates(store: Store) -> tuple[int, list[int]]:
    rid = store.record_request(BRIEF, source="slack", user_id="U1", slack_channel="C1")
    ids = store.save_candidates(
        rid,
        [
            {"text": "여름엔 린넨이죠", "register": "polite", "register_ok": True, "flags": [], "length": 8},
            {"text": "국내 최초 린넨", "register": "noun", "register_ok": True, "flags": ["absolute_claim: x"]},
        ],
        model_version="starter",
        generate_ms=120,
    )
    return rid, ids


def test_request_lifecycle_and_candidates(store: Store) -> None:
    rid, ids = _request_with_candidates(store)
    request = store.get_request(rid)
    assert request is not None
    assert (request["status"], request["model_version"], request["generate_ms"]) == ("done", "starter", 120)
    rows = store.candidates_for(rid)
    assert [r["id"] for r in rows] == ids
    assert rows[1]["flags"] == ["absolute_claim: x"]
    assert rows[1]["length"] == len("국내 최초 린넨")


def test_failed_request_keeps_the_reason(store: Store) -> None:
    rid = store.record_request(BRIEF, source="cli")
    store.fail_request(rid, error="model host unreachable")
    assert store.get_request(rid)["status"] == "failed"
    assert store.requests_with_status("failed")[0]["error"] == "model host unreachable"


def test_candidate_message_is_unique_per_channel_and_ts(store: Store) -> None:
    _, ids = _request_with_candidates(store)
    store.set_candidate_message(ids[0], slack_channel="C1", slack_ts="1.1")
    assert store.candidate_by_message("C1", "1.1")["id"] == ids[0]
    with pytest.raises(Exception, match="UNIQUE"):
        store.set_candidate_message(ids[1], slack_channel="C1", slack_ts="1.1")


def test_feedback_is_append_only_and_deduplicated_by_event_id(store: Store) -> None:
    _, ids = _request_with_candidates(store)
    assert store.record_feedback(event_id="Ev1", candidate_id=ids[0], user_id="U2", action="added", signal="up")
    assert not store.record_feedback(event_id="Ev1", candidate_id=ids[0], user_id="U2", action="added", signal="up")
    assert store.record_feedback(event_id="Ev2", candidate_id=ids[0], user_id="U2", action="removed", signal="up")
    assert [(e["action"], e["signal"]) for e in store.feedback_for(ids[0])] == [("added", "up"), ("removed", "up")]


def test_feedback_and_edits_for_unknown_candidates_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        store.record_feedback(event_id="E", candidate_id=999, user_id="U", action="added", signal="up")
    with pytest.raises(StoreError, match="does not exist"):
        store.record_edit(candidate_id=999, user_id="U", edited_text="x")
    assert store.counts()["feedback_events"] == 0


def test_edit_keeps_the_original_text(store: Store) -> None:
    _, ids = _request_with_candidates(store)
    store.record_edit(candidate_id=ids[1], user_id="U3", edited_text="새로 나온 린넨 셔츠")
    [edit] = store.edits_for(ids[1])
    assert (edit["original_text"], edit["edited_text"]) == ("국내 최초 린넨", "새로 나온 린넨 셔츠")


def test_promoting_a_version_retires_the_previous_one(store: Store) -> None:
    store.add_model_version(version="v1", base_model="starter", status="active")
    store.add_model_version(version="v2", base_model="starter", parent_version="v1", metrics={"loss": 1.5})
    store.promote_model_version("v2")
    assert store.active_model_version()["version"] == "v2"
    statuses = dict(store.db.execute("select version, status from model_versions").fetchall())
    assert statuses == {"v1": "retired", "v2": "active"}
    with pytest.raises(StoreError, match="not registered"):
        store.promote_model_version("v9")


def test_training_run_records_json_fields(store: Store) -> None:
    run = store.start_training_run(trigger="cli", base_model="starter", hyperparameters={"lr": 1e-4})
    store.finish_training_run(run, status="succeeded", metrics={"eval_loss": 2.0}, gate_reasons=["better"])
    row = store.db["training_runs"].get(run)
    assert (row["status"], row["metrics"], row["gate_reasons"]) == ("succeeded", '{"eval_loss": 2.0}', '["better"]')
    with pytest.raises(StoreError, match="unknown training run fields"):
        store.finish_training_run(run, status="failed", colour="red")


def test_tuning_trials_and_runs_left_running_by_a_dead_process(store: Store) -> None:
    first = store.start_tuning_trial(study="tune-1", trial=1, params={"lora_r": 8, "learning_rate": 1e-3})
    store.finish_tuning_trial(first, status="succeeded", val_loss=2.5, seconds=3.2)
    store.start_tuning_trial(study="tune-1", trial=2, params={"lora_r": 16})
    run = store.start_training_run(trigger="cli", base_model="starter")
    assert store.fail_unfinished_training_runs(error="interrupted") == 1
    assert store.db["training_runs"].get(run)["status"] == "failed"
    trials = store.tuning_trials("tune-1")
    assert [(t["trial"], t["status"], t["val_loss"]) for t in trials] == [(1, "succeeded", 2.5), (2, "failed", None)]
    assert trials[0]["params"] == {"learning_rate": 1e-3, "lora_r": 8} and trials[1]["error"] == "interrupted"
    assert store.fail_unfinished_training_runs(error="again") == 0
    assert store.counts()["tuning_trials"] == 2


def test_a_failed_multi_table_write_changes_nothing(store: Store) -> None:
    rid = store.record_request(BRIEF, source="cli")
    with pytest.raises(KeyError):
        store.save_candidates(rid, [{"text": "좋아요"}, {"no_text": True}], model_version="v")
    assert store.candidates_for(rid) == []
    assert store.get_request(rid)["status"] == "pending"


def _writer(path: str, worker: int, count: int) -> None:
    store = Store.open(path, busy_timeout_s=60)
    for i in range(count):
        rid = store.record_request({**BRIEF, "product": f"w{worker}-{i}"}, source="cli")
        store.save_candidates(rid, [{"text": f"카피 {worker}-{i}"}], model_version="v")
    store.close()


def test_two_processes_writing_at_once_lose_no_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    Store.open(path).close()
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(path, w, 150)) for w in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
        assert p.exitcode == 0
    store = Store.open(path)
    assert store.counts()["requests"] == 300
    assert store.counts()["candidates"] == 300
    products = {r[0] for r in store.db.execute("select product from requests").fetchall()}
    assert len(products) == 300
