"""Fixtures for the Slack bot: a fake Web API server and the real Bolt app driven by signed requests."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slack_bolt import App, BoltRequest, BoltResponse

from bot.reactions import ReactionMap
from bot.settings import Settings
from bot.slack.app import create_app, web_client
from bot.slack.copy_requests import BotDeps
from bot.slack.pool import GenerationPool
from model.writing.frame import AdFrame
from model.writing.writer import Backend, CopyWriter
from storage import Store
from tests.fakes import signing
from tests.fakes.backends import ScriptedBackend
from tests.fakes.slack_api import FakeSlack

TRIGGERS = itertools.count(1)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


class TrackingExecutor(ThreadPoolExecutor):
    """Bolt's listener pool, remembering its futures so a test can wait for listeners that run after the ack."""

    def __init__(self) -> None:
        super().__init__(max_workers=5, thread_name_prefix="bolt-listener")
        self.futures: list[Future[Any]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        self.futures.append(future)
        return future

    def drain(self, timeout: float = 30) -> None:
        wait(list(self.futures), timeout=timeout)


@dataclass
class Harness:
    """The real app plus its store and the fake Slack it talks to."""

    app: App
    deps: BotDeps
    fake: FakeSlack
    listeners: TrackingExecutor

    @property
    def store(self) -> Store:
        return self.deps.store

    def command(self, text: str, **kw: Any) -> BoltResponse:
        """A signed `/copy`; each gets its own trigger_id, as Slack gives each command (the bot acts once per id)."""
        kw.setdefault("trigger", f"T.cmd.{next(TRIGGERS)}")
        body = signing.command_body(text, response_url=self.fake.response_url(), **kw)
        response = self.app.dispatch(
            BoltRequest(body=body, headers=signing.headers(body, "application/x-www-form-urlencoded"))
        )
        self.listeners.drain()  # the listener goes on after its ack; let it finish
        assert isinstance(self.deps.intake, TrackingExecutor)
        self.deps.intake.drain()  # and the intake, which stores the request and posts its placeholder
        return response

    def interact(self, payload: dict[str, Any]) -> BoltResponse:
        """A signed interaction, with a trigger_id of its own as Slack gives each click and submission."""
        payload = {**payload, "trigger_id": f"{payload.get('trigger_id', 'T')}.{next(TRIGGERS)}"}
        body = signing.interaction_body(payload)
        return self.app.dispatch(
            BoltRequest(body=body, headers=signing.headers(body, "application/x-www-form-urlencoded"))
        )

    def event(self, event: dict[str, Any], *, event_id: str, retry: int | None = None) -> BoltResponse:
        body = signing.event_body(event, event_id=event_id)
        headers = signing.headers(body, "application/json")
        if retry is not None:
            headers.update({"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"})
        response = self.app.dispatch(BoltRequest(body=body, headers=headers))
        self.listeners.drain()  # event listeners run after the ack; let them finish before asserting
        return response

    def ack_json(self, response: BoltResponse) -> dict[str, Any]:
        assert response.status == 200, response.body
        return json.loads(response.body) if response.body else {}


def build_harness(
    tmp_path: Path, fake: FakeSlack, backend: Backend, *, busy_timeout_s: float = 30.0, **env: str
) -> Harness:
    settings = Settings.from_env(
        {
            "COPYBOT_HOME": str(tmp_path / "home"),
            "SLACK_BOT_TOKEN": "xoxb-test-token",
            "SLACK_SIGNING_SECRET": signing.SECRET,
            "SLACK_API_URL": fake.url,
            **env,
        }
    )
    deps = BotDeps(
        settings,
        Store.open(settings.db_path, busy_timeout_s=busy_timeout_s),
        CopyWriter(backend, frame=AdFrame(settings.ad_sender, settings.ad_optout)),  # as make_writer builds it
        pool=GenerationPool(workers=2, queue=4),
        intake=TrackingExecutor(),
        reactions=ReactionMap(settings.reactions_file),
    )
    executor = TrackingExecutor()
    app = create_app(deps, client=web_client(settings), http=True, listener_executor=executor)
    return Harness(app, deps, fake, executor)


@pytest.fixture
def make_harness(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(backend: Backend | None = None, *, busy_timeout_s: float = 30.0, **env: str) -> Harness:
        harness = build_harness(
            tmp_path / f"h{len(made)}", fake_slack, backend or ScriptedBackend(), busy_timeout_s=busy_timeout_s, **env
        )
        made.append(harness)
        return harness

    yield make
    for h in made:
        h.deps.intake.shutdown(wait=True)
        h.deps.pool.shutdown(timeout=10)
        if h.deps.notices is not None:
            h.deps.notices.close()
        if h.deps.held is not None:
            h.deps.held.close()
        h.store.close()
