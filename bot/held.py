"""What Slack delivered and the bot acknowledged is never lost to a locked database.

A reaction, an edit, a 📣 mark or a `/copy` that cannot be written because another process holds the database's
write lock past the busy timeout (StoreBusy) is held here and written again with backoff. Past a bound
(COPYBOT_HOLD_SECONDS, 5 minutes by default) or at shutdown it goes to an append-only spill file (one JSON object a
line, flushed and fsynced), which the next start replays. Each held write carries an id that is recorded in the
same transaction as the write (`Store.apply_once`), so a write is applied exactly once however often it is tried
or replayed.

A held `/copy` is never generated late: it is kept as a failed request ("the database was busy") and its user is
told so (`on_unstarted`), since a marketer waiting minutes for a brief is better told to ask again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage import Store, StoreBusy, StoreError

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.5
MAX_RETRY_S = 15.0
UNSTARTED = "the database was busy when the request arrived; it was not started"


def _feedback(store: Store, p: Mapping[str, Any]) -> None:
    store.record_feedback(**p)


def _reaction(store: Store, p: Mapping[str, Any]) -> None:
    """A reaction whose candidate is looked up when it is written (the lookup may have been what failed)."""
    candidate = store.candidate_by_message(p["channel"], p["ts"])
    if candidate is None:
        log.info("held reaction %s dropped: no candidate at %s/%s", p["event_id"], p["channel"], p["ts"])
        return
    store.record_feedback(
        event_id=p["event_id"],
        candidate_id=int(candidate["id"]),
        user_id=p["user_id"],
        action=p["action"],
        signal=p["signal"],
        reaction=p["reaction"],
        event_ts=p["event_ts"],
    )


def _edit(store: Store, p: Mapping[str, Any]) -> None:
    store.record_edit(**p)


def _request(store: Store, p: Mapping[str, Any]) -> None:
    request_id = store.record_request(
        p["brief"], source=p["source"], user_id=p["user_id"], team_id=p["team_id"], slack_channel=p["channel"]
    )
    store.fail_request(request_id, error=UNSTARTED)


# How each kind of held input is written; every function's store calls join `apply_once`'s transaction.
WRITES: dict[str, Callable[[Store, Mapping[str, Any]], None]] = {
    "feedback": _feedback,
    "reaction": _reaction,
    "edit": _edit,
    "request": _request,
}


@dataclass
class Held:
    id: str
    kind: str
    payload: dict[str, Any]
    since: float = field(default_factory=time.monotonic)
    tries: int = 0


class HeldWrites:
    """Write now, or hold and retry with backoff, then spill. `on_unstarted(payload)` is called once a held `/copy`
    is stored as failed (or spilled), to tell its user."""

    def __init__(
        self,
        store: Store,
        spill_path: Path,
        *,
        hold_s: float,
        on_unstarted: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.store, self.spill_path, self.hold_s = store, spill_path, hold_s
        self.on_unstarted = on_unstarted
        self._held: list[Held] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def write(self, kind: str, payload: dict[str, Any]) -> bool:
        """Write at once; held for later when the database is busy. Returns whether it was written now. A write
        that is wrong in itself (StoreError other than busy: a candidate that no longer exists) is logged and
        dropped, as it would be without holding."""
        item = Held(uuid.uuid4().hex, kind, payload)
        if self._apply(item):
            return True
        self._hold(item)
        return False

    def pending(self) -> int:
        with self._lock:
            return len(self._held)

    def _apply(self, item: Held) -> bool:
        """True when written (or found written before, or dropped as wrong); False when the database is busy."""
        item.tries += 1
        try:
            now = self.store.apply_once(item.id, item.kind, lambda: WRITES[item.kind](self.store, item.payload))
        except StoreBusy:
            return False
        except StoreError as exc:
            log.warning("held %s %s not written: %s", item.kind, item.id, exc)
            return True
        if now and item.kind == "request" and self.on_unstarted is not None:
            self.on_unstarted(item.payload)
        return True

    def _hold(self, item: Held) -> None:
        log.warning(
            "database busy: holding a %s to write again (up to %.0fs, then the spill file %s)",
            item.kind,
            self.hold_s,
            self.spill_path,
        )
        with self._lock:
            if self._closed:
                self._spill([item])
                return
            self._held.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._retry, name="copybot-held", daemon=True)
                self._thread.start()
        self._wake.set()

    def _retry(self) -> None:
        delay = FIRST_RETRY_S
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            with self._lock:
                if self._closed:
                    return
                items = list(self._held)
            written = [item for item in items if self._apply(item)]
            now = time.monotonic()
            expired = [item for item in items if item not in written and now - item.since >= self.hold_s]
            with self._lock:
                for item in written + expired:
                    self._held.remove(item)
            if expired:
                self._spill(expired)
            delay = FIRST_RETRY_S if written else min(delay * 2, MAX_RETRY_S)

    def _spill(self, items: list[Held]) -> None:
        """Append to the spill file and make it durable before anything else happens."""
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        with self.spill_path.open("a", encoding="utf-8") as handle:
            for item in items:
                handle.write(
                    json.dumps({"id": item.id, "kind": item.kind, "payload": item.payload}, ensure_ascii=False) + "\n"
                )
            handle.flush()
            os.fsync(handle.fileno())
        log.error(
            "database busy for over %.0fs: %d held write(s) saved to %s; the next start replays them",
            self.hold_s,
            len(items),
            self.spill_path,
        )

    def close(self) -> int:
        """At shutdown: whatever is still held goes to the spill file. Returns how many."""
        with self._lock:
            self._closed = True
            items, self._held = list(self._held), []
        self._wake.set()
        if items:
            self._spill(items)
        return len(items)

    def replay(self) -> tuple[int, int]:
        """At start: apply the spill file's writes, each once, and remove the file when all are in. Returns
        (applied now, found applied before). A write the database is still too busy for stays in the file."""
        if not self.spill_path.exists():
            return 0, 0
        lines = self.spill_path.read_text("utf-8").splitlines()
        applied = before = 0
        left: list[str] = []
        for line in lines:
            try:
                record = json.loads(line)
                item = Held(record["id"], record["kind"], record["payload"])
            except (ValueError, KeyError, TypeError):  # a line cut short by a crash mid-write
                log.error("spill file %s: unreadable line kept aside: %.80s", self.spill_path, line)
                left.append(line)
                continue
            if self.store.held_write_applied(item.id):
                before += 1
            elif self._apply(item):
                applied += 1
            else:
                left.append(line)
        self._rewrite(left)
        log.info("replayed the spill file: %d write(s) applied, %d applied before, %d left", applied, before, len(left))
        return applied, before

    def _rewrite(self, lines: list[str]) -> None:
        if not lines:
            self.spill_path.unlink(missing_ok=True)
            return
        spare = self.spill_path.with_suffix(".tmp")
        spare.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        os.replace(spare, self.spill_path)
