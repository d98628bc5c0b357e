"""The work behind a `/copy`: store the request, show it, generate on the pool, post candidates, summarise."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.generation import write_and_store
from bot.held import HeldWrites
from bot.learning.trials import Trials
from bot.reactions import ReactionMap
from bot.settings import Settings
from bot.slack import blocks
from bot.slack.notices import Notices
from bot.slack.pool import GenerationPool
from model.errors import ModelSideError
from model.writing.brief import Brief, brief_fields
from model.writing.writer import CopyWriter
from storage import Store, StoreBusy

log = logging.getLogger(__name__)

SEED_REACTIONS = ("+1", "-1")
INTAKE_WORKERS = 8
BUSY = "요청이 밀려 있어요. 1~2분 뒤에 다시 요청해 주세요."
NOT_IN_CHANNEL = "이 채널에 글을 쓸 수 없어요. `/invite @copybot`으로 봇을 채널에 초대한 뒤 다시 요청해 주세요."
RESTARTING = "봇이 재시작 중이에요. 1~2분 뒤에 다시 요청해 주세요."
SHUTTING_DOWN = "봇이 재시작되는 동안 요청이 중단됐어요."
UNEXPECTED = "알 수 없는 오류로 카피를 만들지 못했어요. 계속되면 운영자에게 알려 주세요."
SLACK_DOWN = "Slack에 연결할 수 없어서 카피 요청을 시작하지 못했어요. 요청은 저장돼 있어요. 다시 요청해 주세요."
NOT_STARTED = "저장소가 잠시 응답하지 않아 카피 요청을 시작하지 못했어요. 요청은 기록해 뒀어요. 다시 요청해 주세요."


@dataclass
class BotDeps:
    """What the listeners and jobs share."""

    settings: Settings
    store: Store
    writer: CopyWriter
    pool: GenerationPool = field(default_factory=GenerationPool)
    reactions: ReactionMap = field(default_factory=ReactionMap)
    schedule: Any = None  # bot.learning.schedule.WeeklySchedule when the scheduler runs (for /copy status)
    weekly: Callable[[str, datetime], dict[str, Any]] | None = None  # (trigger, now) -> retrain and report
    trials: Trials | None = None  # the live trial's rule and state; made from the settings when not given
    # where a /copy is stored and shown after its ack: off Bolt's listener threads, so that a slow Slack or a busy
    # database never keeps the next command from being acknowledged within Slack's 3 seconds
    intake: Executor = field(default_factory=lambda: ThreadPoolExecutor(INTAKE_WORKERS, "copybot-intake"))
    held: HeldWrites | None = None  # writes a locked database refused, tried again (made from the settings)
    notices: Notices | None = None  # telling users what failed, when Slack is back (made by create_app)

    def __post_init__(self) -> None:
        if self.trials is None:
            self.trials = Trials(self.store, self.settings.trial_rule)
        if self.held is None:
            self.held = HeldWrites(self.store, self.settings.spill_path, hold_s=self.settings.hold_seconds)

    def tell(self, origin: Origin, text: str) -> None:
        """Tell the user who asked, now or once Slack can be reached (bot/slack/notices.py)."""
        if self.notices is not None:
            self.notices.tell(
                channel=origin.channel_id, user=origin.user_id, text=text, response_url=origin.response_url
            )


@dataclass(frozen=True)
class Origin:
    """Who asked, and where the answer goes."""

    user_id: str
    team_id: str
    channel_id: str
    source: str
    response_url: str = ""  # a slash command's: reaches the user for 30 minutes, wherever they typed


def unstarted_payload(brief: Brief, origin: Origin) -> dict[str, Any]:
    """A `/copy` the database could not take, as `HeldWrites` keeps it (and tells its user through `notify_unstarted`)."""
    return {
        "brief": brief.as_dict(),
        "source": origin.source,
        "user_id": origin.user_id,
        "team_id": origin.team_id,
        "channel": origin.channel_id,
        "response_url": origin.response_url,
    }


def notify_unstarted(deps: BotDeps, payload: dict[str, Any]) -> None:
    """Tell the user of a held `/copy` that it was not started (called once it is stored as failed)."""
    origin = Origin(
        payload["user_id"], payload["team_id"], payload["channel"], payload["source"], payload.get("response_url", "")
    )
    deps.tell(origin, NOT_STARTED)


def reject_busy(deps: BotDeps, brief: Brief, origin: Origin) -> None:
    """Keep a request that the pool turned away (full, or shutting down), as failed, so nothing is lost."""
    try:
        request_id = _record(deps, brief, origin)
    except StoreBusy:
        assert deps.held is not None
        deps.held.write("request", unstarted_payload(brief, origin))
        return
    deps.store.fail_request(request_id, error="queue full" if deps.pool.accepting else "bot shutting down")


def _record(deps: BotDeps, brief: Brief, origin: Origin) -> int:
    return deps.store.record_request(
        brief.as_dict(),
        source=origin.source,
        user_id=origin.user_id,
        team_id=origin.team_id,
        slack_channel=origin.channel_id,
    )


def accept(deps: BotDeps, client: WebClient, brief: Brief, origin: Origin) -> None:
    """After the ack, with a pool slot reserved: launch the request on the intake threads, and tell the user if it
    could not be shown. If even that cannot start (the bot is stopping), the slot comes back and the request is kept
    as failed."""

    def run() -> None:
        try:
            problem = launch(deps, client, brief, origin)
        except Exception:  # launch gave the slot back; the request, if stored, is failed at the next start
            log.exception("request from %s in %s could not be launched", origin.user_id, origin.channel_id)
            problem = UNEXPECTED
        if problem:
            deps.tell(origin, problem)

    try:
        deps.intake.submit(run)
    except RuntimeError:  # the intake is shut down: the bot is stopping
        deps.pool.release()
        reject_busy(deps, brief, origin)


def launch(deps: BotDeps, client: WebClient, brief: Brief, origin: Origin) -> str | None:
    """With a pool slot already reserved: store, post the placeholder, queue the job. The slot comes back on every
    path that does not queue the job: a Slack error, Slack unreachable, a busy database, anything else.

    Returns a Korean message for the user when the request could not even be shown, else None.
    """
    submitted = False
    try:
        try:
            request_id = _record(deps, brief, origin)
        except StoreBusy:  # kept by the held writes as not started, and the user told so once it is stored
            assert deps.held is not None
            deps.held.write("request", unstarted_payload(brief, origin))
            return None
        queued_at = time.monotonic()
        try:
            posted = client.chat_postMessage(
                channel=origin.channel_id,
                **blocks.request_message(brief.as_dict(), origin.user_id, blocks.working_status(deps.pool.depth())),
            )
        except SlackApiError as exc:
            deps.store.fail_request(request_id, error=f"placeholder not posted: {exc.response.get('error')}")
            log.warning(
                "cannot post in %s: %s; the bot may not be a member", origin.channel_id, exc.response.get("error")
            )
            return NOT_IN_CHANNEL
        except OSError as exc:  # Slack unreachable (the client's retries are spent): told once it is back
            deps.store.fail_request(request_id, error=f"placeholder not posted: Slack unreachable ({exc})")
            log.warning("request %s not started: Slack unreachable (%s)", request_id, exc)
            deps.tell(origin, SLACK_DOWN)
            return None
        ts = str(posted["ts"])
        try:
            deps.store.set_request_message(request_id, slack_channel=origin.channel_id, slack_ts=ts)
        except StoreBusy as exc:  # the job still knows its message; only a restart's clean-up would miss it
            log.warning("request %s: message ts not stored (%s)", request_id, exc)
        job = CopyRequestRun(deps, client, request_id, brief, origin, ts, queued_at)
        deps.pool.submit(request_id, job.run)
        submitted = True
        return None
    finally:
        if not submitted:
            deps.pool.release()


@dataclass
class CopyRequestRun:
    """One request's generation and posting, run on the pool."""

    deps: BotDeps
    client: WebClient
    request_id: int
    brief: Brief
    origin: Origin
    ts: str
    queued_at: float

    def run(self) -> None:
        """Generate, store, post each candidate in the thread, then update the request message."""
        queue_ms = int((time.monotonic() - self.queued_at) * 1000)
        try:  # a failure is stored on the request there; here the channel is told how to retry
            stored = write_and_store(self.deps.store, self.deps.writer, self.brief, self.request_id, queue_ms=queue_ms)
        except ModelSideError as exc:
            log.warning("request %s failed in the model: %s", self.request_id, exc)
            self.update(blocks.failed_status(exc.user_message))
            return
        except Exception:
            log.exception("request %s failed unexpectedly", self.request_id)
            self.update(blocks.failed_status(UNEXPECTED))
            return
        generation, ids, trial_id = stored.generation, stored.candidate_ids, stored.trial_id
        candidates = [c.as_dict() for c in generation.candidates]
        posted = 0
        try:
            for rank, (candidate, candidate_id) in enumerate(zip(candidates, ids, strict=True), start=1):
                self.post_candidate(candidate, rank, candidate_id)
                posted += 1
        except (SlackApiError, OSError) as exc:  # the candidates are stored; say in the channel that some did not show
            why = exc.response.get("error") if isinstance(exc, SlackApiError) else f"Slack unreachable ({exc})"
            log.warning("request %s: posted %d of %d candidates: %s", self.request_id, posted, len(ids), why)
        seconds = time.monotonic() - self.queued_at
        status = blocks.done_status(len(ids), generation.model_version, seconds, trial=trial_id is not None,
                                    notes=generation.notes)  # fmt: skip
        self.update(status if posted == len(ids) else blocks.partial_status(posted, len(ids)))

    def post_candidate(self, candidate: dict[str, object], rank: int, candidate_id: int) -> None:
        """One thread message per candidate (only chat.postMessage returns the ts reactions refer to)."""
        message = blocks.candidate_message(candidate, rank, candidate_id, channel=self.brief.channel)
        posted = self.client.chat_postMessage(channel=self.origin.channel_id, thread_ts=self.ts, **message)
        ts = str(posted["ts"])
        self.deps.store.set_candidate_message(candidate_id, slack_channel=self.origin.channel_id, slack_ts=ts)
        for name in SEED_REACTIONS:
            try:
                self.client.reactions_add(channel=self.origin.channel_id, timestamp=ts, name=name)
            except SlackApiError as exc:  # a missing seed reaction costs nothing; people can still react
                log.warning("could not seed :%s: on %s: %s", name, ts, exc.response.get("error"))

    def update(self, status: str) -> None:
        """Rewrite the request message with a new status line."""
        message = blocks.request_message(self.brief.as_dict(), self.origin.user_id, status)
        try:
            self.client.chat_update(channel=self.origin.channel_id, ts=self.ts, **message)
        except SlackApiError as exc:
            log.warning("could not update request %s in Slack: %s", self.request_id, exc.response.get("error"))
        except OSError as exc:  # Slack unreachable: the user hears how it ended once it is back
            log.warning("could not update request %s: Slack unreachable (%s)", self.request_id, exc)
            self.deps.tell(self.origin, blocks.status_notice(status))


def fail_unfinished(deps: BotDeps, client: WebClient, request_ids: list[int], reason: str) -> None:
    """Mark requests failed and say so on their Slack messages (shutdown, or leftovers of a crash)."""
    for request_id in request_ids:
        row = deps.store.get_request(request_id)
        if row is None or row["status"] in ("done", "failed"):
            continue
        deps.store.fail_request(request_id, error=reason)
        if row["slack_channel"] and row["slack_ts"]:
            brief = brief_fields(row)
            message = blocks.request_message(brief, row["user_id"] or "", blocks.failed_status(SHUTTING_DOWN))
            try:
                client.chat_update(channel=row["slack_channel"], ts=row["slack_ts"], **message)
            except SlackApiError as exc:
                log.warning("could not update request %s: %s", request_id, exc.response.get("error"))
