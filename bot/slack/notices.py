"""Telling a user something in Slack now, or as soon as Slack can be reached again.

A request that could not be shown (Slack unreachable when its placeholder was posted) or not started (the database
was busy) is stored as failed, and its user is told here: through the command's `response_url` when there is one
(it reaches the user wherever they typed, for 30 minutes), else as an ephemeral message in the channel. When Slack
cannot be reached the notice waits and is tried again with backoff for up to `give_up_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)

GIVE_UP_S = 1800.0  # a response_url answers for 30 minutes
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 30.0


@dataclass
class Notice:
    channel: str
    user: str
    text: str
    response_url: str = ""
    since: float = field(default_factory=time.monotonic)


class Notices:
    """An outbox of notices to users; `tell` sends at once when it can."""

    def __init__(self, client: WebClient, *, give_up_s: float = GIVE_UP_S) -> None:
        self.client, self.give_up_s = client, give_up_s
        self._waiting: list[Notice] = []
        self._lock = threading.Lock()
        self._fresh = threading.Event()  # a notice arrived, or the outbox closes
        self._closed = False
        self._thread: threading.Thread | None = None

    def tell(self, *, channel: str, user: str, text: str, response_url: str = "") -> None:
        """Queue the notice; the outbox's thread sends it at once, or when Slack is back. Never blocks the caller,
        which may hold a generation slot that the next marketer needs."""
        with self._lock:
            if self._closed:
                log.warning("bot stopping: a notice to %s was not sent: %s", user, text)
                return
            self._waiting.append(Notice(channel, user, text, response_url))
            if self._thread is None:
                self._thread = threading.Thread(target=self._retry, name="copybot-notices", daemon=True)
                self._thread.start()
        self._fresh.set()

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def _send(self, notice: Notice) -> bool:
        """True when delivered, or refused for good (logged); False when Slack could not be reached."""
        try:
            if notice.response_url:
                reply = WebhookClient(notice.response_url, timeout=10).send(text=notice.text, response_type="ephemeral")
                if reply.status_code >= 500:
                    return False
                if reply.status_code >= 400:
                    log.warning("notice to %s refused by its response_url (%s)", notice.user, reply.status_code)
                return True
            self.client.chat_postEphemeral(channel=notice.channel, user=notice.user, text=notice.text)
            return True
        except SlackApiError as exc:
            log.warning("notice to %s in %s refused: %s", notice.user, notice.channel, exc.response.get("error"))
            return True
        except OSError as exc:  # unreachable: URLError, a reset connection, a timeout
            log.warning("Slack unreachable; a notice to %s waits (%s)", notice.user, exc)
            return False

    def _retry(self) -> None:
        delay: float | None = 0.0  # a new notice is sent at once; while Slack is unreachable, tries back off
        while True:
            self._fresh.wait(delay)
            self._fresh.clear()
            with self._lock:
                if self._closed:
                    return
                notices = list(self._waiting)
            sent = [n for n in notices if self._send(n)]
            now = time.monotonic()
            stale = [n for n in notices if n not in sent and now - n.since > self.give_up_s]
            for notice in stale:
                log.error("gave up telling %s after %.0fs without Slack: %s", notice.user, self.give_up_s, notice.text)
            with self._lock:
                for notice in sent + stale:
                    self._waiting.remove(notice)
                left = bool(self._waiting)
            delay = None if not left else (FIRST_RETRY_S if sent or not delay else min(delay * 2, MAX_RETRY_S))

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._fresh.set()
