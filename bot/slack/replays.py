"""Each signed Slack request is acted on once (SECURITY.md): a request sent again within its 5 minutes of validity,
by Slack's own retry or by someone who captured it, is acknowledged and dropped.

A request is known by what Slack makes unique for it: a slash command's or an interaction's `trigger_id`, an
event's `event_id`, and otherwise the hash of its body. The keys are kept for a little longer than a signature
stays valid, after which Bolt's signature check refuses the request anyway.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import parse_qs

from slack_bolt import BoltRequest, BoltResponse

log = logging.getLogger(__name__)

WINDOW_S = 6 * 60  # Slack's signatures are valid for 5 minutes


def request_key(req: BoltRequest) -> str:
    """What makes this request unique: its trigger_id, event_id, or body hash."""
    body = req.body or {}
    for name in ("event_id", "trigger_id"):
        value = body.get(name)
        if isinstance(value, str) and value:
            return f"{name}:{value}"
    raw = req.raw_body if isinstance(req.raw_body, str) else ""
    if not body and raw.startswith("payload="):  # an interaction before Bolt parsed it
        payload = json.loads(parse_qs(raw).get("payload", ["{}"])[0] or "{}")
        if payload.get("trigger_id"):
            return f"trigger_id:{payload['trigger_id']}"
    return "body:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()


class ReplayGuard:
    """Remembers the requests of the last WINDOW_S seconds; a Bolt global middleware."""

    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self.clock = window_s, clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.dropped = 0

    def first_time(self, key: str) -> bool:
        """Whether `key` is new within the window (and remember it)."""
        now = self.clock()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now - self.window_s:
                self._seen.popitem(last=False)
            if key in self._seen:
                self.dropped += 1
                return False
            self._seen[key] = now
            return True

    def middleware(self, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        key = request_key(req)
        if self.first_time(key):
            return next()
        log.warning("a Slack request was received again (%s): acknowledged, not acted on", key.split(":", 1)[0])
        return BoltResponse(status=200, body="")
