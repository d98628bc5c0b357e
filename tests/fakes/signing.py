"""Build Slack requests signed the way Slack signs them (v0 HMAC-SHA256 over 'v0:timestamp:body')."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

SECRET = "test-signing-secret"


def sign(body: str, timestamp: int, secret: str = SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def headers(body: str, content_type: str, *, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": str(ts),
        "x-slack-signature": sign(body, ts, secret),
    }


def command_body(
    text: str, *, user: str = "U100", channel: str = "C100", response_url: str = "", trigger: str = "T.1"
) -> str:
    return urlencode(
        {
            "command": "/copy", "text": text, "user_id": user, "user_name": "marketer", "channel_id": channel,
            "team_id": "T0001", "trigger_id": trigger, "response_url": response_url, "api_app_id": "A1",
        }
    )  # fmt: skip


def interaction_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)})


def event_body(event: dict[str, Any], *, event_id: str) -> str:
    return json.dumps(
        {"type": "event_callback", "team_id": "T0001", "api_app_id": "A1", "event": event, "event_id": event_id,
         "event_time": 1700000000, "authorizations": [{"user_id": "UBOT", "is_bot": True, "team_id": "T0001"}]}
    )  # fmt: skip
