"""Scheduled runs: one row per job and slot (the cron time it stands for), so a slot runs at most once.

The unique (job, slot) index is what stops a catch-up run and the regular trigger, or two processes, from running
the same week twice: whoever inserts the row first runs it. A `baseline` row marks where a schedule started, so
slots from before the bot was ever set up are not owed.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from storage.base import Row, StoreBase, insert_row


class ScheduleRecords(StoreBase):
    """Claims, finishes and lists scheduled runs."""

    def claim_scheduled_run(self, job: str, slot: str, *, status: str = "running") -> int | None:
        """Record that `slot` of `job` is being run (or is the baseline); None if it was claimed already."""
        try:
            with self._atomic() as db:
                return insert_row(db, "schedule_runs", {"job": job, "slot": slot, "status": status,
                                                        "started_at": self.now()})  # fmt: skip
        except sqlite3.IntegrityError:
            return None

    def finish_scheduled_run(self, run_id: int, *, status: str, result: dict[str, Any] | None = None,
                             error: str = "") -> None:  # fmt: skip
        """Close a claimed run as succeeded or failed, with what it did."""
        with self._atomic() as db:
            db.table("schedule_runs").update(run_id, {"status": status, "finished_at": self.now(), "error": error,
                                                      "result": json.dumps(result or {}, ensure_ascii=False)})  # fmt: skip

    def last_scheduled_run(self, job: str, *, include_baseline: bool = True) -> Row | None:
        """The run of the latest slot (the baseline too, unless told otherwise)."""
        where = "job = ?" + ("" if include_baseline else " and status != 'baseline'")
        with self._lock:
            rows = list(self.db.table("schedule_runs").rows_where(where, [job], order_by="slot desc, id desc",
                                                                  limit=1))  # fmt: skip
        if not rows:
            return None
        row = dict(rows[0])
        row["result"] = json.loads(row["result"]) if row.get("result") else None
        return row
