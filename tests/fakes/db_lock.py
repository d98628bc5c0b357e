"""Another process's write lock on a copybot database: what a stuck process or a backup tool holding an exclusive
lock looks like to the bot."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(db_path: Path) -> Iterator[None]:
    """Hold the database's write lock from a second connection until the block ends."""
    other = sqlite3.connect(str(db_path), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("COMMIT")
        other.close()
