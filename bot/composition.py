"""The composition root of `copybot serve`: settings -> store, writer, scheduler, weekly job, Slack app and
transport, wired once here so that no other module decides what the running bot is made of."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from slack_sdk import WebClient

from bot.learning.schedule import WeeklySchedule, cron_trigger
from bot.learning.weekly import retrain_and_report
from bot.reactions import ReactionMap
from bot.settings import Settings, SettingsError
from bot.slack.app import create_app, web_client
from bot.slack.copy_requests import BotDeps, fail_unfinished
from bot.slack.pool import GenerationPool
from bot.slack.serve import HttpRunner, Runner, SocketRunner, check_identity
from model.locks import LockHeld, ProcessLock
from model.writing.tone import warm_up
from model.writing.writer import CopyWriter
from storage import Store

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 30.0
RESTARTED = "bot restarted before the request finished"
SHUT_DOWN = "bot shut down before the request finished"


@dataclass
class Bot:
    """A running bot: its dependencies, client and transport."""

    deps: BotDeps
    client: WebClient
    runner: Runner
    lock: ProcessLock | None = None  # one `copybot serve` per database (released at shutdown, or by the OS)

    def recover(self) -> None:
        """Writes held while the database was locked, which the last run spilled, are applied (each once);
        requests left pending or running by a crash or kill are marked failed, and their messages say so."""
        if self.deps.held is not None:
            self.deps.held.replay()
        leftovers = [int(r["id"]) for r in self.deps.store.requests_with_status("pending", "running")]
        if leftovers:
            log.warning("marking %d request(s) interrupted by the last shutdown as failed", len(leftovers))
            fail_unfinished(self.deps, self.client, leftovers, RESTARTED)

    def shutdown(self, grace_s: float = SHUTDOWN_GRACE_S) -> list[int]:
        """Stop taking work, let running generations finish for `grace_s`, fail the rest, close the transport."""
        log.info("shutting down: no new requests; waiting up to %.0fs for generations in flight", grace_s)
        self.deps.intake.shutdown(wait=True)  # commands already acknowledged are stored and queued (or failed)
        unfinished = self.deps.pool.shutdown(timeout=grace_s)
        fail_unfinished(self.deps, self.client, unfinished, SHUT_DOWN)
        if self.deps.held is not None and self.deps.held.close():
            log.warning(
                "writes the database was too busy for are in %s; the next start applies them",
                self.deps.settings.spill_path,
            )
        if self.deps.notices is not None:
            self.deps.notices.close()
        close = getattr(self.deps.writer.backend, "close", None)
        if close is not None:  # the batching engine: a batch still being written stops at its next step
            close()
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

    def weekly(trigger: str, now: datetime) -> dict[str, Any]:
        return retrain_and_report(settings, store, client, trigger=trigger, now=now)

    schedule = WeeklySchedule(store, cron_trigger(settings), lambda slot: weekly("schedule", slot))
    deps = BotDeps(settings, store, writer, pool=GenerationPool(settings.generation_workers),
                   reactions=ReactionMap(settings.reactions_file), schedule=schedule, weekly=weekly)  # fmt: skip
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
