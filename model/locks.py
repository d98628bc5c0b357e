"""Process locks on files (flock): held while a process lives, released by the OS even after `kill -9`.

`ProcessLock.acquire()` refuses at once, naming the holder (its pid and start time are written into the file):
one retrain, one `copybot serve` per database. `ProcessLock.waiting()` waits its turn instead: work that must
happen once (building the starter, fetching a base model) lets a second process wait and then find it done.
It lives in model/, the lowest layer that both model/ and bot/ may import.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO


class LockHeld(RuntimeError):
    """Someone else holds the lock; the message names them."""


class ProcessLock:
    """An exclusive lock on `path`; `what` names the work in the refusal ("a retrain", "copybot serve")."""

    def __init__(self, path: Path, what: str) -> None:
        self.path, self.what = path, what
        self._handle: IO[str] | None = None

    def acquire(self, *, wait: bool = False) -> None:
        """Take the lock; without `wait`, raise LockHeld at once when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise LockHeld(f"{self.what} is already running ({holder})") from exc
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}, started {datetime.now(UTC).isoformat(timespec='seconds')}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.truncate(0)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    @contextmanager
    def waiting(self) -> Iterator[ProcessLock]:
        """Hold the lock for a block, waiting for another holder to finish first."""
        self.acquire(wait=True)
        try:
            yield self
        finally:
            self.release()

    def __enter__(self) -> ProcessLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class TurnLock:
    """A thread lock taken in the order it was asked for. A plain `threading.Lock` lets the thread that releases it
    take it straight back, so a worker that takes it for every step of a decoding (model/writing/decoding.py)
    would keep out a thread waiting to load an adapter for as long as the decoding runs; here each waiter gets its
    turn after the step in progress."""

    def __init__(self) -> None:
        import threading

        self._changed = threading.Condition(threading.Lock())
        self._next = 0  # the ticket the next caller gets
        self._serving = 0  # the ticket that holds the lock
        self._abandoned: set[int] = set()  # tickets whose holder stopped waiting (interrupted)

    def __enter__(self) -> TurnLock:
        with self._changed:
            ticket = self._next
            self._next += 1
            try:
                while ticket != self._serving:
                    self._changed.wait()
            except BaseException:  # interrupted while waiting: its turn is skipped, not awaited for ever
                self._abandoned.add(ticket)
                self._advance()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._serving += 1
            self._advance()

    def _advance(self) -> None:
        """Pass over abandoned turns and wake the waiters. Called with the condition held."""
        while self._serving in self._abandoned:
            self._abandoned.discard(self._serving)
            self._serving += 1
        self._changed.notify_all()
