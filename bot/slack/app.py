"""Build the Bolt app: the Web API client (with 429 retries), the app itself, and its listeners."""

from __future__ import annotations

import logging
from concurrent.futures import Executor

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.settings import Settings
from bot.slack import listeners
from bot.slack.copy_requests import BotDeps, notify_unstarted
from bot.slack.notices import Notices
from bot.slack.replays import ReplayGuard

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"


def web_client(settings: Settings) -> WebClient:
    """A WebClient on SLACK_API_URL that waits out 429s (Retry-After) and retries dropped connections and 5xx."""
    base_url = settings.slack_api_url or DEFAULT_API_URL
    return WebClient(
        token=settings.slack_bot_token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def create_app(deps: BotDeps, *, client: WebClient, http: bool, listener_executor: Executor | None = None) -> App:
    """The Bolt app with copybot's listeners; `http` turns request signature verification on."""
    app = App(
        listener_executor=listener_executor,
        client=client,
        signing_secret=deps.settings.slack_signing_secret if http else None,
        request_verification_enabled=http,
        process_before_response=False,
        logger=logging.getLogger("copybot.bolt"),
    )
    if deps.notices is None:
        deps.notices = Notices(client)
    if deps.held is not None and deps.held.on_unstarted is None:
        deps.held.on_unstarted = lambda payload: notify_unstarted(deps, dict(payload))
    guard = ReplayGuard()
    app.use(guard.middleware)  # after Bolt's signature check: a forged request never reaches it
    app.copybot_replays = guard  # type: ignore[attr-defined]
    app.copybot_listeners = listeners.register(app, deps)  # type: ignore[attr-defined]
    return app
