"""Writes applied exactly once: the bot holds what Slack delivered while the database was locked, and applies it
later, or replays it from its spill file at the next start; each carries an id, recorded with the write itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from storage.base import StoreBase


class HeldWriteRecords(StoreBase):
    def apply_once(self, hold_id: str, kind: str, write: Callable[[], Any]) -> bool:
        """Run `write` (store calls, which join this transaction) and record `hold_id` in the same transaction,
        unless that id was applied before. Returns whether it was applied now."""
        with self._atomic() as db:
            if db.execute("select 1 from held_writes where id = ?", [hold_id]).fetchone():
                return False
            write()
            db.execute("insert into held_writes (id, kind, applied_at) values (?, ?, ?)", [hold_id, kind, self.now()])
        return True

    def held_write_applied(self, hold_id: str) -> bool:
        """Whether a held write was applied (for tests and the reliability benchmark)."""
        with self._lock:
            return self.db.execute("select 1 from held_writes where id = ?", [hold_id]).fetchone() is not None
