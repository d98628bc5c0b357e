"""Slack transports for `copybot serve`: Socket Mode, or HTTP through Bolt's ASGI adapter under uvicorn, and the
sign-in check. What the bot is made of is assembled in `bot/composition.py`."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Protocol

import uvicorn
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.asgi import SlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HTTP_STOP_GRACE_S = 5  # requests in flight get this long to finish when the bot stops


class SlackAuthError(RuntimeError):
    """Slack refused the bot token, or could not be reached to check it."""


class Runner(Protocol):
    """A transport that delivers Slack requests to the app."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class _ThreadedHandler(SlackRequestHandler):
    """Bolt's ASGI adapter, except that the (synchronous) app dispatches on a worker thread: Bolt's own calls
    `App.dispatch` on the event loop, which would hold every other request while one listener acks."""

    async def dispatch(self, request: AsgiHttpRequest) -> BoltResponse:
        body = await request.get_raw_body()
        bolt = BoltRequest(body=body, query=request.query_string, headers=request.get_headers())
        return await asyncio.to_thread(self.app.dispatch, bolt)


class HttpRunner:
    """POST /slack/events with signature checks: Bolt's ASGI adapter served by uvicorn on a thread of its own.
    The socket is bound here, so the port (0 picks a free one) is known before the runner starts."""

    def __init__(self, app: App, host: str, port: int) -> None:
        self._socket = socket.create_server((host, port), backlog=128)
        self.host, self.port = host, int(self._socket.getsockname()[1])
        config = uvicorn.Config(_ThreadedHandler(app, path=EVENTS_PATH), log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=HTTP_STOP_GRACE_S)  # fmt: skip
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]},
                                        name="copybot-http", daemon=True)  # fmt: skip

    def start(self) -> None:
        self._thread.start()
        log.info("listening for Slack on http://%s:%s%s", self.host, self.port, EVENTS_PATH)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.should_exit = True
            self._thread.join(HTTP_STOP_GRACE_S + 5)
        self._socket.close()


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
