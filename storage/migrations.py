"""Schema of the copybot store as append-only sqlite-utils migrations. Never edit an applied one: add a new one."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATION_SET = "copybot"


def build_migrations() -> Migrations:
    """A fresh `Migrations` set holding every copybot migration, in order."""
    migrations = Migrations(MIGRATION_SET)
    for fn in (
        m001_create_requests_and_candidates,
        m002_create_feedback_and_edits,
        m003_create_corpus,
        m004_create_model_versions_and_training_runs,
        m005_create_tuning_trials,
        m006_create_schedule_runs,
        m007_create_trials,
        m008_corpus_score_measure,
        m009_create_outcomes,
        m010_candidate_message,
        m011_create_corpus_imports,
        m012_create_held_writes,
    ):
        migrations()(fn)
    return migrations


def m001_create_requests_and_candidates(db: Database) -> None:
    """Requests (the brief, who, where, status, timings) and the candidates written for them."""
    db.table("requests").create(
        {
            "id": int,
            "created_at": str,
            "source": str,  # cli | slack | modal | api
            "product": str,
            "event": str,
            "age_group": str,
            "channel": str,
            "n": int,
            "notes": str,
            "user_id": str,
            "team_id": str,
            "slack_channel": str,
            "slack_ts": str,  # the visible request message, updated in place
            "status": str,  # pending | running | done | failed
            "error": str,
            "model_version": str,
            "started_at": str,
            "finished_at": str,
            "queue_ms": int,
            "generate_ms": int,
        },
        pk="id",
        not_null={"created_at", "source", "product", "age_group", "channel", "n", "status"},
        defaults={"status": "pending", "event": "", "notes": ""},
    )
    db.table("requests").create_index(["created_at"])
    db.table("requests").create_index(["status"])
    db.table("candidates").create(
        {
            "id": int,
            "request_id": int,
            "rank": int,
            "text": str,
            "register": str,
            "register_ok": int,
            "flags": str,  # JSON list of "code: reason" strings
            "length": int,
            "model_version": str,
            "slack_channel": str,
            "slack_ts": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("request_id", "requests", "id")],
        not_null={"request_id", "rank", "text", "created_at"},
    )
    db.table("candidates").create_index(["request_id", "rank"], unique=True)
    db.table("candidates").create_index(["slack_channel", "slack_ts"], unique=True)


def m002_create_feedback_and_edits(db: Database) -> None:
    """Append-only feedback events (one row per delivered Slack event) and human-corrected copies."""
    db.table("feedback_events").create(
        {
            "id": int,
            "event_id": str,  # Slack's event_id: retries of one event collapse onto one row
            "candidate_id": int,
            "request_id": int,
            "user_id": str,
            "action": str,  # added | removed
            "signal": str,  # up | down | win
            "reaction": str,  # the raw emoji name as Slack sent it
            "event_ts": str,
            "received_at": str,
        },
        pk="id",
        foreign_keys=[("candidate_id", "candidates", "id"), ("request_id", "requests", "id")],
        not_null={"event_id", "candidate_id", "request_id", "action", "signal", "received_at"},
    )
    db.table("feedback_events").create_index(["event_id"], unique=True)
    db.table("feedback_events").create_index(["candidate_id"])
    db.table("edits").create(
        {
            "id": int,
            "candidate_id": int,
            "request_id": int,
            "user_id": str,
            "original_text": str,
            "edited_text": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("candidate_id", "candidates", "id"), ("request_id", "requests", "id")],
        not_null={"candidate_id", "request_id", "edited_text", "created_at"},
    )
    db.table("edits").create_index(["candidate_id"])


def m003_create_corpus(db: Database) -> None:
    """The company's own copies (and the starter corpus), keyed by a hash of the normalised text."""
    db.table("corpus").create(
        {
            "id": int,
            "content_hash": str,
            "text": str,
            "product": str,
            "category": str,
            "event": str,
            "age_group": str,
            "channel": str,
            "register_label": str,
            "register_detected": str,
            "score": float,
            "date": str,
            "source": str,
            "split": str,  # train | validation | test
            "created_at": str,
        },
        pk="id",
        not_null={"content_hash", "text", "source", "split", "created_at"},
    )
    db.table("corpus").create_index(["content_hash"], unique=True)
    db.table("corpus").create_index(["split"])


def m004_create_model_versions_and_training_runs(db: Database) -> None:
    """Adapter versions (which one is active) and the training runs that produced them."""
    db.table("model_versions").create(
        {
            "id": int,
            "version": str,
            "base_model": str,
            "adapter_path": str,
            "parent_version": str,
            "status": str,  # candidate | active | retired | rejected
            "metrics": str,  # JSON
            "created_at": str,
            "promoted_at": str,
        },
        pk="id",
        not_null={"version", "base_model", "status", "created_at"},
    )
    db.table("model_versions").create_index(["version"], unique=True)
    db.table("training_runs").create(
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "status": str,  # running | succeeded | failed | skipped
            "trigger": str,  # schedule | admin | cli
            "base_model": str,
            "parent_version": str,
            "result_version": str,
            "dataset_summary": str,  # JSON
            "hyperparameters": str,  # JSON
            "metrics": str,  # JSON
            "gate_decision": str,  # promoted | kept
            "gate_reasons": str,  # JSON
            "error": str,
        },
        pk="id",
        not_null={"started_at", "status"},
    )
    db.table("training_runs").create_index(["started_at"])


def m005_create_tuning_trials(db: Database) -> None:
    """One row per `copybot tune` trial: its settings, validation loss and time, grouped by study."""
    db.table("tuning_trials").create(
        {
            "id": int,
            "study": str,  # one `copybot tune` invocation
            "trial": int,
            "started_at": str,
            "finished_at": str,
            "status": str,  # running | succeeded | failed
            "params": str,  # JSON: the hyperparameters tried
            "val_loss": float,
            "seconds": float,
            "error": str,
        },
        pk="id",
        not_null={"study", "trial", "started_at", "status", "params"},
    )
    db.table("tuning_trials").create_index(["study", "trial"], unique=True)


def m006_create_schedule_runs(db: Database) -> None:
    """One row per scheduled job and slot (the cron time it stands for): a slot runs at most once."""
    db.table("schedule_runs").create(
        {
            "id": int,
            "job": str,  # weekly_retrain
            "slot": str,  # the scheduled time, ISO UTC
            "status": str,  # baseline | running | succeeded | failed
            "started_at": str,
            "finished_at": str,
            "result": str,  # JSON
            "error": str,
        },
        pk="id",
        not_null={"job", "slot", "status", "started_at"},
    )
    db.table("schedule_runs").create_index(["job", "slot"], unique=True)


def m007_create_trials(db: Database) -> None:
    """Live champion/challenger trials (at most one running), and which trial each request was written for."""
    db.table("trials").create(
        {
            "id": int,
            "challenger_version": str,
            "champion_version": str,  # "" while the base model is the champion
            "status": str,  # running | promoted | retired | ended
            "started_at": str,
            "ended_at": str,
            "reason": str,  # why it ended, in English
            "rule": str,  # JSON: the decision rule's settings, fixed when the trial starts
            "training_run_id": int,
            "looked_at": int,  # rated requests at the rule's last look (looks happen at fixed counts)
            "tally": str,  # JSON: the counts and P(better) when it ended
        },
        pk="id",
        not_null={"challenger_version", "champion_version", "status", "started_at", "rule"},
        defaults={"looked_at": 0},
    )
    # One trial at a time, enforced by the database itself.
    db.execute("create unique index trials_one_running on trials(status) where status = 'running'")
    db.table("requests").add_column("trial_id", int)
    db.table("requests").create_index(["trial_id"])


def m008_corpus_score_measure(db: Database) -> None:
    """What a corpus score measures (ctr, conversion_rate, response_rate, open_rate, or score for a generic
    성과/score column), so that scores of different kinds are never compared; earlier scores were generic."""
    db.table("corpus").add_column("score_measure", str)
    db.execute("update corpus set score_measure = case when score is null then '' else 'score' end")


def m009_create_outcomes(db: Database) -> None:
    """Real campaign results of sent candidates (`copybot results import`): one row per candidate and send date;
    `text` is what went out (the candidate's text, or a person's edit of it)."""
    db.table("outcomes").create(
        {
            "id": int,
            "candidate_id": int,
            "request_id": int,
            "text": str,
            "sends": int,  # or impressions: the CTR's denominator
            "clicks": int,
            "ctr": float,  # a fraction: 0.032 for 3.2 %
            "conversions": int,
            "date": str,  # YYYY-MM-DD, "" when the file gave none
            "source": str,  # the file it came from
            "line": int,
            "imported_at": str,
        },
        pk="id",
        foreign_keys=[("candidate_id", "candidates", "id"), ("request_id", "requests", "id")],
        not_null={"candidate_id", "request_id", "text", "date", "imported_at"},
    )
    db.table("outcomes").create_index(["candidate_id", "date"], unique=True)


def m010_candidate_message(db: Database) -> None:
    """The whole message of a candidate on a channel with the legal frame ("(광고)", the sender, the copy, the opt-out
    line): what a marketer pastes into the sending tool; "" elsewhere and for earlier candidates."""
    db.table("candidates").add_column("message", str, not_null_default="")


def m011_create_corpus_imports(db: Database) -> None:
    """Each corpus file imported: its source name, path, the line its header was on, and its report as JSON (every
    column and what it became, the rows missing each field), so that a retrain that cannot learn can name the
    column that was not used."""
    db.table("corpus_imports").create(
        {"id": int, "source": str, "path": str, "imported_at": str, "header_line": int, "report": str},
        pk="id",
        not_null={"source", "imported_at", "report"},
    )
    db.table("corpus_imports").create_index(["source"])


def m012_create_held_writes(db: Database) -> None:
    """The ids of writes the bot held while the database was locked and applied later (or replayed from its spill
    file at the next start), so that each is applied exactly once."""
    db.table("held_writes").create(
        {"id": str, "kind": str, "applied_at": str}, pk="id", not_null={"kind", "applied_at"}
    )
