"""`copybot serve`: connect to Slack (Socket Mode or HTTP), run until SIGTERM, then shut down cleanly."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.locks import LockHeld, ProcessLock
from bot.settings import Settings, SettingsError
from bot.slack.app import create_app, web_client
from bot.slack.jobs import BotDeps, fail_unfinished
from bot.slack.pool import GenerationPool
from bot.slack.reactions import ReactionMap
from model.tone import warm_up
from model.writer import CopyWriter
from storage import Store

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SHUTDOWN_GRACE_S = 30.0
RESTARTED = "bot restarted before the request finished"
SHUT_DOWN = "bot shut down before the request finished"


class SlackAuthError(RuntimeError):
    """Slack refused the bot token, or could not be reached to check it."""


class Runner(Protocol):
    """A transport that delivers Slack requests to the app."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # the stdlib default of 5 refuses connections when Slack sends a burst


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        log.debug("http: " + format, *args)


class HttpRunner:
    """Bolt's WSGI adapter on a threading stdlib server: POST /slack/events with signature checks."""

    def __init__(self, app: App, host: str, port: int) -> None:
        self.server = make_server(
            host, port, SlackRequestHandler(app, path=EVENTS_PATH), _ThreadingWSGIServer, _QuietHandler
        )
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="copybot-http", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("listening for Slack on http://%s:%s%s", self.server.server_address[0], self.port, EVENTS_PATH)

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which never ran if start() did not
            self.server.shutdown()
        self.server.server_close()


class SocketRunner:
    """Socket Mode: an outbound WebSocket opened with the app-level token; no public URL needed."""

    def __init__(self, app: App, app_token: str, client: WebClient) -> None:
        self.handler = SocketModeHandler(app, app_token=app_token, web_client=client)

    def start(self) -> None:
        self.handler.connect()
        log.info("connected to Slack over Socket Mode")

    def stop(self) -> None:
        self.handler.close()


def check_identity(client: WebClient) -> dict[str, str]:
    """Call auth.test and log who the bot is; raise SlackAuthError with a fix when it fails."""
    try:
        me = client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error")
        raise SlackAuthError(
            f"SLACK_BOT_TOKEN was refused by Slack ({error}); copy the Bot User OAuth Token again"
        ) from exc
    except OSError as exc:
        raise SlackAuthError(f"cannot reach the Slack Web API ({exc}); check the network and SLACK_API_URL") from exc
    log.info(
        "signed in to Slack as @%s (%s) in %s (%s)",
        me.get("user"),
        me.get("user_id"),
        me.get("team"),
        me.get("team_id"),
    )
    return {k: str(me.get(k, "")) for k in ("user", "user_id", "team", "team_id")}


@dataclass
class Bot:
    """A running bot: its dependencies, client and transport."""

    deps: BotDeps
    client: WebClient
    runner: Runner
    lock: ProcessLock | None = None  # one `copybot serve` per database (released at shutdown, or by the OS)

    def recover(self) -> None:
        """Requests left pending or running by a crash or kill are marked failed, and their messages say so."""
        leftovers = [int(r["id"]) for r in self.deps.store.requests_with_status("pending", "running")]
        if leftovers:
            log.warning("marking %d request(s) interrupted by the last shutdown as failed", len(leftovers))
            fail_unfinished(self.deps, self.client, leftovers, RESTARTED)

    def shutdown(self, grace_s: float = SHUTDOWN_GRACE_S) -> list[int]:
        """Stop taking work, let running generations finish for `grace_s`, fail the rest, close the transport."""
        log.info("shutting down: no new requests; waiting up to %.0fs for generations in flight", grace_s)
        unfinished = self.deps.pool.shutdown(timeout=grace_s)
        fail_unfinished(self.deps, self.client, unfinished, SHUT_DOWN)
        self.runner.stop()
        if self.lock is not None:
            self.lock.release()
        log.info("stopped (%d request(s) failed at shutdown)", len(unfinished))
        return unfinished


def build_bot(
    settings: Settings,
    make_writer: Callable[[Store], CopyWriter],
    *,
    http: bool,
    host: str = "127.0.0.1",
    port: int = 3000,
) -> Bot:
    """Check the credentials first (fast), then load the model, open the store and wire the transport."""
    settings.require_slack(http=http)
    client = web_client(settings)
    check_identity(client)
    # A second bot on the same database would mark the first one's live requests as interrupted (recover) and
    # double the scheduler; refuse it, naming the first.
    lock = ProcessLock(Path(f"{settings.db_path}.serve.lock"), f"copybot serve on {settings.db_path}")
    try:
        lock.acquire()
    except LockHeld as exc:
        raise SettingsError(
            "COPYBOT_DB", str(exc), "Stop the other bot first, or give this one its own COPYBOT_HOME."
        ) from exc
    store = Store.open(settings.db_path)
    writer = make_writer(store)
    warm_up()  # load the Korean analyser now, not on the first request
    from bot.schedule import WeeklySchedule, cron_trigger
    from bot.weekly import retrain_and_report

    def weekly(trigger: str, now: datetime) -> dict[str, Any]:
        return retrain_and_report(settings, store, client, trigger=trigger, now=now)

    schedule = WeeklySchedule(store, cron_trigger(settings), lambda slot: weekly("schedule", slot))
    deps = BotDeps(settings, store, writer, pool=GenerationPool(), reactions=ReactionMap(settings.reactions_file),
                   schedule=schedule, weekly=weekly)  # fmt: skip
    app = create_app(deps, client=client, http=http)
    runner: Runner = HttpRunner(app, host, port) if http else SocketRunner(app, settings.slack_app_token or "", client)
    return Bot(deps, client, runner, lock)


def run_until_signalled(bot: Bot) -> None:
    """Start the bot and block until SIGTERM or SIGINT, then shut down cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    bot.recover()
    bot.runner.start()
    if bot.deps.schedule is not None:
        bot.deps.schedule.start()  # the weekly retrain, and a catch-up if one was missed while the bot was down
    stop.wait()
    if bot.deps.schedule is not None:
        bot.deps.schedule.stop()
    bot.shutdown()
