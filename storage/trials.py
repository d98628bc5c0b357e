"""Live champion/challenger trials: which adapter is on trial against which, how it ended, and its requests.

At most one trial runs (a partial unique index says so). Its requests carry `trial_id`, and each of their
candidates records the version that wrote it, so the trial's evidence is always re-read from the feedback log:
a reaction removed later is removed from the evidence too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from sqlite_utils import Database

from storage.base import Row, StoreBase, insert_row
from storage.errors import StoreError
from storage.scores import scores


def _decoded(row: Row) -> Row:
    row = dict(row)
    row["rule"] = json.loads(row["rule"] or "{}")
    row["tally"] = json.loads(row["tally"]) if row.get("tally") else None
    return row


def end_running_trial(db: Database, *, now: str, reason: str) -> str | None:
    """Inside a write transaction: end the running trial, if any, as 'ended' (a person decided, not the rule), and
    mark its challenger 'stopped'. Returns the challenger's version, or None when no trial ran."""
    row = db.execute("select id, challenger_version from trials where status = 'running'").fetchone()
    if row is None:
        return None
    db.execute("update trials set status = 'ended', ended_at = ?, reason = ? where id = ?", [now, reason, row[0]])
    db.execute("update model_versions set status = 'stopped' where version = ? and status = 'challenger'", [row[1]])
    return str(row[1])


class TrialRecords(StoreBase):
    """The store's records of live trials: part of `Store`."""

    def start_trial(
        self, *, challenger: str, champion: str, rule: Mapping[str, Any], training_run_id: int | None = None
    ) -> int:
        """Start a trial of `challenger` against `champion` ("" for the base model); refused while one runs."""
        row = {"challenger_version": challenger, "champion_version": champion, "status": "running",
               "started_at": self.now(), "rule": json.dumps(dict(rule), sort_keys=True),
               "training_run_id": training_run_id, "looked_at": 0}  # fmt: skip
        try:
            with self._atomic() as db:
                if db.execute("select 1 from model_versions where version = ?", [challenger]).fetchone() is None:
                    raise StoreError(f"model version {challenger!r} is not registered")
                trial_id = insert_row(db, "trials", row)
                db.execute("update model_versions set status = 'challenger' where version = ?", [challenger])
                return trial_id
        except sqlite3.IntegrityError as exc:
            running = self.running_trial()
            name = running["challenger_version"] if running else "another version"
            raise StoreError(f"a trial of {name} is already running; one trial at a time") from exc

    def running_trial(self) -> Row | None:
        """The trial now running, or None."""
        with self._lock:
            rows = list(self.db.table("trials").rows_where("status = 'running'", limit=1))
        return _decoded(rows[0]) if rows else None

    def trial(self, trial_id: int) -> Row | None:
        """One trial by id, or None."""
        with self._lock:
            rows = list(self.db.table("trials").rows_where("id = ?", [trial_id]))
        return _decoded(rows[0]) if rows else None

    def trials(self, *, limit: int = 20) -> list[Row]:
        """The latest trials, newest first."""
        with self._lock:
            rows = list(self.db.table("trials").rows_where(order_by="id desc", limit=limit))
        return [_decoded(r) for r in rows]

    def trial_during(self, start: str, end: str) -> Row | None:
        """The latest trial that was running at some moment in [start, end)."""
        with self._lock:
            rows = list(self.db.table("trials").rows_where(
                "started_at < ? and (ended_at is null or ended_at >= ?)", [end, start], order_by="id desc", limit=1
            ))  # fmt: skip
        return _decoded(rows[0]) if rows else None

    def trial_requests(self, trial_id: int) -> list[dict[str, Any]]:
        """The trial's finished requests, oldest first, each with its candidates' versions and current reactions,
        and when its latest feedback event arrived (None without any)."""
        with self._lock:
            requests = [r[0] for r in self.db.execute(
                "select id from requests where trial_id = ? and status = 'done' order by id", [trial_id]
            ).fetchall()]  # fmt: skip
            if not requests:
                return []
            candidates = list(self.db.execute(
                "select c.id, c.request_id, c.model_version from candidates c join requests r on r.id = c.request_id "
                "where r.trial_id = ? and r.status = 'done' order by c.request_id, c.rank", [trial_id]
            ).fetchall())  # fmt: skip
            events = list(self.db.table("feedback_events").rows_where(
                "request_id in (select id from requests where trial_id = ?)", [trial_id]
            ))  # fmt: skip
        current = scores(events)
        last: dict[int, str] = {}
        for e in events:
            last[int(e["request_id"])] = max(last.get(int(e["request_id"]), ""), str(e["received_at"]))
        by_request: dict[int, list[dict[str, Any]]] = {r: [] for r in requests}
        for candidate_id, request_id, version in candidates:
            s = current.get(int(candidate_id))
            by_request[int(request_id)].append({"model_version": version or "", "up": s.up if s else 0,
                                                "down": s.down if s else 0, "win": s.win if s else 0})  # fmt: skip
        return [{"request_id": r, "candidates": c, "last_reaction_at": last.get(r)} for r, c in by_request.items()]

    def note_trial_look(self, trial_id: int, rated: int) -> None:
        """Remember the rated-request count at which the decision rule last looked."""
        with self._atomic() as db:
            db.execute("update trials set looked_at = ? where id = ? and status = 'running'", [rated, trial_id])

    def finish_trial(self, trial_id: int, *, promote: bool, reason: str, tally: Mapping[str, Any]) -> bool:
        """End a running trial by its rule: promote the challenger (the champion retires) or retire it ('lost').
        False when it was no longer running (another process decided first, or a person ended it)."""
        with self._atomic() as db:
            row = db.execute("select challenger_version from trials where id = ? and status = 'running'",
                             [trial_id]).fetchone()  # fmt: skip
            if row is None:
                return False
            status = "promoted" if promote else "retired"
            db.execute("update trials set status = ?, ended_at = ?, reason = ?, tally = ? where id = ?",
                       [status, self.now(), reason, json.dumps(dict(tally), ensure_ascii=False), trial_id])  # fmt: skip
            if promote:
                db.execute("update model_versions set status = 'retired' where status = 'active'")
                db.execute("update model_versions set status = 'active', promoted_at = ? where version = ?",
                           [self.now(), row[0]])  # fmt: skip
            else:
                db.execute("update model_versions set status = 'lost' where version = ?", [row[0]])
            return True

    def end_trial(self, *, reason: str) -> str | None:
        """End the running trial because a person said so (its challenger is 'stopped'); the challenger's version,
        or None when no trial was running."""
        with self._atomic() as db:
            return end_running_trial(db, now=self.now(), reason=reason)
