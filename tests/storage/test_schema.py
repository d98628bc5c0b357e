"""The store's schema: exact shape of a blank database, upgrades with data, and failed migrations."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from storage import Store
from storage.migrations import MIGRATION_SET, build_migrations

EXPECTED_COLUMNS = {
    "requests": [
        "id", "created_at", "source", "product", "event", "age_group", "channel", "n", "notes", "user_id", "team_id",
        "slack_channel", "slack_ts", "status", "error", "model_version", "started_at", "finished_at", "queue_ms",
        "generate_ms", "trial_id",
    ],
    "candidates": [
        "id", "request_id", "rank", "text", "register", "register_ok", "flags", "length", "model_version",
        "slack_channel", "slack_ts", "created_at", "message",
    ],
    "feedback_events": [
        "id", "event_id", "candidate_id", "request_id", "user_id", "action", "signal", "reaction", "event_ts",
        "received_at",
    ],
    "edits": ["id", "candidate_id", "request_id", "user_id", "original_text", "edited_text", "created_at"],
    "corpus": [
        "id", "content_hash", "text", "product", "category", "event", "age_group", "channel", "register_label",
        "register_detected", "score", "date", "source", "split", "created_at", "score_measure",
    ],
    "model_versions": [
        "id", "version", "base_model", "adapter_path", "parent_version", "status", "metrics", "created_at",
        "promoted_at",
    ],
    "training_runs": [
        "id", "started_at", "finished_at", "status", "trigger", "base_model", "parent_version", "result_version",
        "dataset_summary", "hyperparameters", "metrics", "gate_decision", "gate_reasons", "error",
    ],
    "tuning_trials": [
        "id", "study", "trial", "started_at", "finished_at", "status", "params", "val_loss", "seconds", "error",
    ],
    "schedule_runs": ["id", "job", "slot", "status", "started_at", "finished_at", "result", "error"],
    "trials": [
        "id", "challenger_version", "champion_version", "status", "started_at", "ended_at", "reason", "rule",
        "training_run_id", "looked_at", "tally",
    ],
    "outcomes": [
        "id", "candidate_id", "request_id", "text", "sends", "clicks", "ctr", "conversions", "date", "source", "line",
        "imported_at",
    ],
    "corpus_imports": ["id", "source", "path", "imported_at", "header_line", "report"],
    "held_writes": ["id", "kind", "applied_at"],
}  # fmt: skip

EXPECTED_UNIQUE_INDEXES = {
    ("candidates", ("request_id", "rank")),
    ("candidates", ("slack_channel", "slack_ts")),
    ("feedback_events", ("event_id",)),
    ("corpus", ("content_hash",)),
    ("model_versions", ("version",)),
    ("tuning_trials", ("study", "trial")),
    ("schedule_runs", ("job", "slot")),
    ("trials", ("status",)),  # partial: at most one running trial
    ("outcomes", ("candidate_id", "date")),
    ("_sqlite_migrations", ("migration_set", "name")),
}


def _unique_indexes(db: Database) -> set[tuple[str, tuple[str, ...]]]:
    return {
        (t.name, tuple(i.columns))
        for t in db.tables
        for i in t.indexes
        if i.unique and not i.name.startswith("sqlite_")
    }


def test_blank_database_has_exactly_the_expected_schema(store: Store) -> None:
    tables = set(store.db.table_names()) - {"_sqlite_migrations"}
    assert tables == set(EXPECTED_COLUMNS)
    for table, columns in EXPECTED_COLUMNS.items():
        assert [c.name for c in store.db[table].columns] == columns, table
    assert _unique_indexes(store.db) == EXPECTED_UNIQUE_INDEXES
    fks = {(fk.table, fk.column, fk.other_table) for t in store.db.tables for fk in t.foreign_keys}
    assert ("candidates", "request_id", "requests") in fks
    assert ("feedback_events", "candidate_id", "candidates") in fks
    assert ("edits", "candidate_id", "candidates") in fks


def test_store_uses_wal_and_a_busy_timeout(store: Store) -> None:
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("pragma busy_timeout").fetchone()[0] >= 1000


def test_every_migration_is_recorded_once_and_reopening_applies_nothing(tmp_path: Path) -> None:
    path = tmp_path / "again.db"
    Store.open(path).close()
    reopened = Store.open(path, migrate=False)
    assert reopened.migrate() == []
    applied = [m.name for m in build_migrations().applied(reopened.db)]
    assert applied == [m.name for m in build_migrations()._migrations]
    assert all(re.fullmatch(r"m\d{3}_\w+", name) for name in applied)


def test_upgrade_from_an_older_schema_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Store.open(path, migrate=False)
    old.migrate(stop_before="m003_create_corpus")
    assert "corpus" not in old.db.table_names()
    request_id = old.record_request(
        {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "20대", "channel": "sns", "n": 2}, source="cli"
    )
    [cid, _] = old.save_candidates(
        request_id, [{"text": "여름엔 린넨이죠"}, {"text": "시원하게 입어요"}], model_version="v1"
    )
    old.record_feedback(event_id="Ev1", candidate_id=cid, user_id="U1", action="added", signal="up")
    old.close()

    upgraded = Store.open(path)
    assert {"corpus", "model_versions", "training_runs"} <= set(upgraded.db.table_names())
    assert upgraded.get_request(request_id)["product"] == "린넨 셔츠"
    assert [c["text"] for c in upgraded.candidates_for(request_id)] == ["여름엔 린넨이죠", "시원하게 입어요"]
    assert upgraded.feedback_for(cid)[0]["signal"] == "up"


def test_scores_imported_before_measures_were_kept_become_generic_scores(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Store.open(path, migrate=False)
    old.migrate(stop_before="m008_corpus_score_measure")
    rows = [{"content_hash": f"h{i}", "text": f"카피 {i}", "score": score, "split": "train", "source": "team"}
            for i, score in enumerate((3.5, None))]  # fmt: skip
    old.add_corpus_rows(rows)
    old.close()
    upgraded = Store.open(path)
    assert [(r["score"], r["score_measure"]) for r in upgraded.corpus_rows()] == [(3.5, "score"), (None, "")]


def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "fail.db")
    migrations = build_migrations()

    @migrations()
    def m999_add_broken_table(db: Database) -> None:
        db["half_done"].create({"id": int}, pk="id")
        db["requests"].add_column("broken", str)
        raise RuntimeError("simulated failure halfway through a migration")

    with pytest.raises(RuntimeError, match="halfway"):
        migrations.apply(store.db)
    assert "half_done" not in store.db.table_names()
    assert "broken" not in [c.name for c in store.db["requests"].columns]
    assert "m999_add_broken_table" not in [m.name for m in migrations.applied(store.db)]
    assert [m.name for m in migrations.pending(store.db)] == ["m999_add_broken_table"]


def test_migrations_table_names_the_copybot_set(store: Store) -> None:
    sets = {r[0] for r in store.db.execute("select distinct migration_set from _sqlite_migrations").fetchall()}
    assert sets == {MIGRATION_SET}


def test_open_reports_an_unusable_path_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    from storage import StoreError

    with pytest.raises(StoreError, match="COPYBOT_DB"):
        Store.open(blocker / "copybot.db")


def test_raw_sqlite_sees_the_same_rows(store: Store, tmp_path: Path) -> None:
    store.record_request({"product": "p", "age_group": "30대", "channel": "sms", "n": 1}, source="cli")
    raw = sqlite3.connect(tmp_path / "store.db")
    assert raw.execute("select product, status from requests").fetchall() == [("p", "pending")]


def _open_when_released(path: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        store = Store.open(path)
        results.put(("ok", [m.name for m in build_migrations().applied(store.db)]))
    except Exception as exc:  # reported to the test, which names it
        results.put(("failed", repr(exc)))


def test_processes_opening_one_old_file_at_once_all_upgrade_it_once(tmp_path: Path) -> None:
    # The bot, a CLI command and a simulation can all open an old file the moment a new version is installed.
    path = tmp_path / "old.db"
    old = Store.open(path, migrate=False)
    old.migrate(stop_before="m003_create_corpus")
    old.close()
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_open_when_released, args=(str(path), barrier, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    every = [m.name for m in build_migrations()._migrations]
    assert outcomes == [("ok", every)] * 4
