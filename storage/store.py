"""The SQLite store: every request, candidate, feedback event, edit, corpus copy, model version and training run.

All SQL lives in `storage/`. One `Store` may be shared by threads: a lock serialises use of its connection,
and WAL mode plus a busy timeout let several processes share the file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from storage.base import Clock, Row, insert_row, utc_now
from storage.corpus_records import CorpusRecords
from storage.errors import StoreError
from storage.held_writes import HeldWriteRecords
from storage.migrations import build_migrations
from storage.reports import ReportQueries
from storage.schedule import ScheduleRecords
from storage.scores import Score, scores
from storage.training import TrainingRecords
from storage.trials import TrialRecords

DEFAULT_BUSY_TIMEOUT_S = 30.0


class Store(CorpusRecords, HeldWriteRecords, TrainingRecords, TrialRecords, ReportQueries, ScheduleRecords):
    """Typed access to the copybot database; methods are named for what they record or return.
    The corpus and its imports live in `CorpusRecords`, model versions, training runs and tuning trials live in `TrainingRecords`, live champion/challenger trials in
    `TrialRecords`, the weekly report's aggregates in `ReportQueries` (over campaign results' `OutcomeRecords`),
    scheduled runs in `ScheduleRecords`."""

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        clock: Clock = utc_now,
        migrate: bool = True,
    ) -> Store:
        """Open (creating if needed) the database at `path`, in WAL mode, and apply pending migrations."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=busy_timeout_s, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL never corrupts the file; a power cut may lose the last commits, a crash none.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the database at {path}: {exc}; check COPYBOT_DB / COPYBOT_HOME") from exc
        store = cls(Database(conn), clock=clock)
        if migrate:
            store.migrate()
        return store

    def migrate(self, *, stop_before: str | None = None) -> list[str]:
        """Apply pending migrations, all in one write transaction; return the names applied.

        Several processes may open one old file at once (the bot, a CLI command, a simulation): each takes the
        write lock before migrating and reads what is applied only once it holds it, so the second waits and then
        finds nothing left to do. Migrating inside sqlite-utils' own deferred transactions instead let two
        processes both read first and then fail on the upgrade to a write lock with 'database is locked'."""
        migrations = build_migrations()
        with self._lock:
            if not migrations.pending(self.db):
                return []  # the common case reads only, so opening a current file never waits for a writer
            with self._atomic() as db:
                before = {m.name for m in migrations.applied(db)}
                migrations.apply(db, stop_before=stop_before)  # each migration is a savepoint inside ours
                return [m.name for m in migrations.applied(db) if m.name not in before]

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self.db.close()

    # --- requests and candidates -------------------------------------------------------------

    def record_request(
        self,
        brief: Mapping[str, Any],
        *,
        source: str,
        user_id: str = "",
        team_id: str = "",
        slack_channel: str = "",
    ) -> int:
        """Store a new request (status pending) and return its id."""
        row = {
            "created_at": self.now(),
            "source": source,
            "product": brief["product"],
            "event": brief.get("event", ""),
            "age_group": brief["age_group"],
            "channel": brief["channel"],
            "n": int(brief["n"]),
            "notes": brief.get("notes", ""),
            "user_id": user_id,
            "team_id": team_id,
            "slack_channel": slack_channel,
            "status": "pending",
        }
        with self._atomic() as db:
            return insert_row(db, "requests", row)

    def mark_request_running(self, request_id: int, *, queue_ms: int | None = None) -> None:
        """Note that generation for a request has started."""
        with self._atomic() as db:
            db.table("requests").update(
                request_id, {"status": "running", "started_at": self.now(), "queue_ms": queue_ms}
            )

    def set_request_message(self, request_id: int, *, slack_channel: str, slack_ts: str) -> None:
        """Remember the Slack message that shows a request, so it can be updated later."""
        with self._atomic() as db:
            db.table("requests").update(request_id, {"slack_channel": slack_channel, "slack_ts": slack_ts})

    def save_candidates(
        self,
        request_id: int,
        candidates: Sequence[Mapping[str, Any]],
        *,
        model_version: str,
        generate_ms: int | None = None,
        trial_id: int | None = None,
    ) -> list[int]:
        """Store a request's candidates and mark it done, in one transaction; return the candidate ids. Each
        candidate records the version that wrote it (its own `model_version`, else the request's); `trial_id` marks
        a request written for a live trial."""
        now = self.now()
        rows = [
            {
                "request_id": request_id,
                "rank": rank,
                "text": c["text"],
                "register": c.get("register", ""),
                "register_ok": int(bool(c.get("register_ok", True))),
                "flags": json.dumps(list(c.get("flags", [])), ensure_ascii=False),
                "length": int(c.get("length", len(c["text"]))),
                **({"message": c["message"]} if c.get("message") else {}),  # a framed channel's whole message
                "model_version": c.get("model_version") or model_version,
                "created_at": now,
            }
            for rank, c in enumerate(candidates, start=1)
        ]
        done = {"status": "done", "finished_at": now, "model_version": model_version, "generate_ms": generate_ms}
        if trial_id is not None:
            done["trial_id"] = trial_id
        with self._atomic() as db:
            ids = [insert_row(db, "candidates", row) for row in rows]
            db.table("requests").update(request_id, done)
        return ids

    def fail_request(self, request_id: int, *, error: str) -> None:
        """Mark a request failed with the reason."""
        with self._atomic() as db:
            db.table("requests").update(request_id, {"status": "failed", "error": error, "finished_at": self.now()})

    def set_candidate_message(self, candidate_id: int, *, slack_channel: str, slack_ts: str) -> None:
        """Remember which Slack message shows a candidate (reactions refer to it by channel and ts)."""
        with self._atomic() as db:
            db.table("candidates").update(candidate_id, {"slack_channel": slack_channel, "slack_ts": slack_ts})

    def get_request(self, request_id: int) -> Row | None:
        """One request row, or None."""
        with self._lock:
            rows = list(self.db.table("requests").rows_where("id = ?", [request_id]))
        return rows[0] if rows else None

    def candidates_for(self, request_id: int) -> list[Row]:
        """A request's candidates in rank order, with `flags` decoded."""
        with self._lock:
            rows = list(self.db.table("candidates").rows_where("request_id = ?", [request_id], order_by="rank"))
        return [_decode_flags(r) for r in rows]

    def candidate(self, candidate_id: int) -> Row | None:
        """One candidate row (flags decoded), or None."""
        with self._lock:
            rows = list(self.db.table("candidates").rows_where("id = ?", [candidate_id]))
        return _decode_flags(rows[0]) if rows else None

    def candidate_by_message(self, slack_channel: str, slack_ts: str) -> Row | None:
        """The candidate shown by a Slack message, or None."""
        with self._lock:
            rows = list(
                self.db.table("candidates").rows_where("slack_channel = ? and slack_ts = ?", [slack_channel, slack_ts])
            )
        return _decode_flags(rows[0]) if rows else None

    def requests_with_status(self, *statuses: str) -> list[Row]:
        """Requests in any of the given statuses, oldest first."""
        marks = ", ".join("?" for _ in statuses)
        with self._lock:
            return list(self.db.table("requests").rows_where(f"status in ({marks})", list(statuses), order_by="id"))

    # --- feedback and edits ------------------------------------------------------------------

    def record_feedback(
        self,
        *,
        event_id: str,
        candidate_id: int,
        user_id: str,
        action: str,
        signal: str,
        reaction: str = "",
        event_ts: str = "",
    ) -> bool:
        """Append one feedback event; False when this event_id was already recorded (a Slack retry)."""
        with self._atomic() as db:
            request_id = db.execute("select request_id from candidates where id = ?", [candidate_id]).fetchone()
            if request_id is None:
                raise StoreError(f"candidate {candidate_id} does not exist")
            cursor = db.execute(
                "insert or ignore into feedback_events (event_id, candidate_id, request_id, user_id, action, "
                "signal, reaction, event_ts, received_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [event_id, candidate_id, request_id[0], user_id, action, signal, reaction, event_ts, self.now()],
            )
            return cursor.rowcount == 1

    def feedback_for(self, candidate_id: int) -> list[Row]:
        """A candidate's feedback events in arrival order."""
        with self._lock:
            return list(self.db.table("feedback_events").rows_where("candidate_id = ?", [candidate_id], order_by="id"))

    def candidate_scores(self, request_id: int | None = None) -> dict[int, Score]:
        """Current reactions per candidate (of one request, or of all), replayed from the feedback log."""
        where, args = ("request_id = ?", [request_id]) if request_id is not None else (None, [])
        with self._lock:
            events = list(self.db.table("feedback_events").rows_where(where, args))
        return scores(events)

    def rated_requests(self) -> list[dict[str, Any]]:
        """Finished requests with their candidates, each candidate's current reactions, its edits, whether it was
        marked as used, and its campaign result rows."""
        with self._lock:
            requests = list(self.db.table("requests").rows_where("status = 'done'", order_by="id"))
            candidates = list(self.db.table("candidates").rows_where(order_by="request_id, rank"))
            events = list(self.db.table("feedback_events").rows_where())
            edits = list(self.db.table("edits").rows_where(order_by="id"))
            results = list(self.db.table("outcomes").rows_where(order_by="id"))
        current = scores(events)
        edits_of: dict[int, list[str]] = {}
        for edit in edits:
            edits_of.setdefault(int(edit["candidate_id"]), []).append(edit["edited_text"])
        results_of: dict[int, list[Row]] = {}
        for result in results:
            results_of.setdefault(int(result["candidate_id"]), []).append(result)
        by_request: dict[int, list[Row]] = {}
        for c in candidates:
            s = current.get(int(c["id"]), Score())
            by_request.setdefault(int(c["request_id"]), []).append(
                {
                    "id": c["id"],
                    "text": c["text"],
                    "register": c["register"] or "",
                    "up": s.up,
                    "down": s.down,
                    "win": s.win,
                    "used": s.used > 0,
                    "edits": edits_of.get(int(c["id"]), []),
                    "results": results_of.get(int(c["id"]), []),
                }
            )
        return [{**r, "candidates": by_request.get(int(r["id"]), [])} for r in requests]

    def record_edit(self, *, candidate_id: int, user_id: str, edited_text: str) -> int:
        """Save a human-corrected version of a candidate; return the edit id."""
        with self._atomic() as db:
            found = db.execute("select request_id, text from candidates where id = ?", [candidate_id]).fetchone()
            if found is None:
                raise StoreError(f"candidate {candidate_id} does not exist")
            row = {
                "candidate_id": candidate_id,
                "request_id": found[0],
                "user_id": user_id,
                "original_text": found[1],
                "edited_text": edited_text,
                "created_at": self.now(),
            }
            return insert_row(db, "edits", row)

    def edits_for(self, candidate_id: int) -> list[Row]:
        """A candidate's human edits, oldest first."""
        with self._lock:
            return list(self.db.table("edits").rows_where("candidate_id = ?", [candidate_id], order_by="id"))

    # --- overview -----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts for `copybot stats`: requests by status, candidates, events, current reactions, edits, copies
        marked as used, campaign results and the best real performers."""
        with self._lock:
            by_status = dict(self.db.execute("select status, count(*) from requests group by status").fetchall())
            events = list(self.db.table("feedback_events").rows_where())
        current = scores(events).values()
        return {
            "requests": sum(by_status.values()),
            "requests_by_status": by_status,
            "candidates": self.db.table("candidates").count,
            "feedback_events": len(events),
            "positive": sum(s.up for s in current),
            "negative": sum(s.down for s in current),
            "winners": sum(s.win for s in current),
            "edits": self.db.table("edits").count,
            "marked_used": sum(1 for s in current if s.used),
            **self.outcome_counts(),
            "best_performers": self.best_performers(),
        }

    def backup_to(self, destination: str | Path) -> Path:
        """A consistent copy of the live database through SQLite's online backup API (safe while the bot runs;
        writers wait only for the moments each page batch is copied). Refuses to overwrite an existing file."""
        target = Path(destination)
        if target.exists():
            raise StoreError(f"{target} already exists; choose a new file name (backups are never overwritten)")
        target.parent.mkdir(parents=True, exist_ok=True)
        copy = sqlite3.connect(str(target))
        try:
            with self._lock:
                self.db.conn.backup(copy, pages=1024)
        except sqlite3.Error as exc:
            copy.close()
            target.unlink(missing_ok=True)
            raise StoreError(f"backup to {target} failed: {exc}") from exc
        copy.close()
        return target

    def counts(self) -> dict[str, int]:
        """Row counts of every copybot table."""
        tables = ("requests", "candidates", "feedback_events", "edits", "corpus", "model_versions", "training_runs",
                  "tuning_trials", "trials", "outcomes")  # fmt: skip
        with self._lock:
            return {t: self.db.table(t).count for t in tables}


def _decode_flags(row: Row) -> Row:
    row = dict(row)
    row["flags"] = json.loads(row["flags"] or "[]")
    return row
