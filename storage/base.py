"""What every part of the store shares: the connection, its lock, the clock and the write transaction."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from storage.errors import StoreBusy

Row = dict[str, Any]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time in UTC (the store's default clock)."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """A moment as the store writes it: ISO 8601 in UTC, milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def insert_row(db: Database, table: str, row: Mapping[str, Any]) -> int:
    """Insert one row and return its integer primary key."""
    return int(db.table(table).insert(dict(row)).last_pk or 0)


class StoreBase:
    """The connection, a lock that serialises its use across threads, and the store's clock."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self.db = db
        self._clock = clock
        self._lock = threading.RLock()
        self._depth = 0  # write transactions open on this connection (only the thread holding the lock nests)

    def now(self) -> str:
        """The store clock's current time as an ISO string (UTC)."""
        return iso(self._clock())

    @contextmanager
    def _atomic(self) -> Iterator[Database]:
        """One write transaction. BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that
        reads first cannot wait for another process's lock and fails with 'database is locked' instead. Called
        inside another, it joins that one (so several writes can be made one, as `apply_once` does)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.db
                finally:
                    self._depth -= 1
                return
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                raise StoreBusy(
                    "the database is locked: another process has held its write lock for longer than the busy "
                    "timeout; look for a stuck copybot process using the same COPYBOT_DB and try again"
                ) from exc
            self._depth = 1
            try:
                yield self.db
            except BaseException:
                self.db.rollback()
                raise
            finally:
                self._depth = 0
            self.db.execute("COMMIT")
