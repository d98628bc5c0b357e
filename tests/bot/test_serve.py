"""`copybot serve`: credentials, identity, HTTP and Socket Mode transports, shutdown and recovery."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.composition import Bot, build_bot
from bot.settings import Settings
from bot.slack.serve import HttpRunner, SocketRunner
from tests.bot.conftest import Harness
from tests.fakes import signing
from tests.fakes.backends import POLITE, ScriptedBackend
from tests.fakes.slack_api import FakeSlack
from tests.fakes.socket_mode import FakeSocketMode


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COPYBOT_", "SLACK_"))}
    env["COPYBOT_HOME"] = str(home)
    env.update(extra)
    return env


@pytest.mark.parametrize(("args", "missing"), [([], "SLACK_BOT_TOKEN"), (["--http"], "SLACK_SIGNING_SECRET")])
def test_a_missing_token_is_one_line_naming_it_and_status_2(home: Path, args: list[str], missing: str) -> None:
    extra = {"SLACK_BOT_TOKEN": "xoxb-1"} if missing != "SLACK_BOT_TOKEN" else {}
    result = subprocess.run([sys.executable, "-m", "bot", "serve", *args], env=_env(home, **extra),
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert missing in line and "README section 'Create the Slack app'" in line


def test_a_refused_token_is_reported_with_status_2(home: Path, fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("auth.test", "invalid_auth")
    env = _env(home, SLACK_BOT_TOKEN="xoxb-bad", SLACK_APP_TOKEN="xapp-1", SLACK_API_URL=fake_slack.url,
               COPYBOT_BASE_MODEL=str(home / "unused"))  # fmt: skip
    settings = Settings.from_env(env)
    from bot.slack.serve import SlackAuthError

    with pytest.raises(SlackAuthError, match=r"invalid_auth.*Bot User OAuth Token"):
        build_bot(
            settings, lambda store: pytest.fail("the model must not load before the token is checked"), http=False
        )


@pytest.mark.slow
def test_serve_http_end_to_end_then_sigterm(home_with_starter: Path, fake_slack: FakeSlack) -> None:
    env = _env(home_with_starter, SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET=signing.SECRET,
               SLACK_API_URL=fake_slack.url)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--http", "--port", "0"], env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        port = None
        log_lines = []
        deadline = time.monotonic() + 120
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            log_lines.append(line)
            if m := re.search(r"listening for Slack on http://127\.0\.0\.1:(\d+)/slack/events", line):
                port = int(m.group(1))
        assert port, "".join(log_lines)
        assert any("signed in to Slack as @copybot (UBOT)" in line for line in log_lines)
        body = signing.command_body("린넨 셔츠 / 여름 세일 / 20대 / 3개")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/slack/events", data=body.encode(),
                                         headers=signing.headers(body, "application/x-www-form-urlencoded"))  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        bad = urllib.request.Request(f"http://127.0.0.1:{port}/slack/events", data=body.encode(),
                                     headers=signing.headers(body, "application/x-www-form-urlencoded", secret="wrong"))  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=10)
        assert refused.value.code == 401
        fake_slack.wait_for("chat.update", 1, timeout=60)
        assert len([p for p in fake_slack.of("chat.postMessage") if p.get("thread_ts")]) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0
    assert "stopped (0 request(s) failed at shutdown)" in rest


def _bot(h: Harness, runner: HttpRunner) -> Bot:
    return Bot(h.deps, h.app.client, runner)


def test_shutdown_finishes_running_work_and_fails_queued_work(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(ScriptedBackend(delay_s=1.5))
    h.deps.pool = type(h.deps.pool)(workers=1, queue=4)
    bot = _bot(h, HttpRunner(h.app, "127.0.0.1", 0))
    bot.runner.start()
    for product in ("셔츠", "바지", "모자"):
        h.command(f"{product} / 세일 / 20대 / 1개")
    h.fake.wait_for("chat.postMessage", 3)
    time.sleep(0.3)  # the first job is now running
    unfinished = bot.shutdown(grace_s=10)
    assert len(unfinished) == 2
    statuses = {r["product"]: r["status"] for r in h.store.requests_with_status("done", "failed")}
    assert statuses == {"셔츠": "done", "바지": "failed", "모자": "failed"}
    updates = [u["text"] for u in h.fake.of("chat.update")]
    assert sum("재시작" in u for u in updates) == 2
    late = h.ack_json(h.command("양말 / 세일 / 20대"))
    assert "재시작 중" in late["text"]


def test_recover_marks_interrupted_requests_failed_and_updates_them(make_harness: Callable[..., Harness]) -> None:
    h = make_harness()
    brief = {"product": "셔츠", "event": "", "age_group": "20대", "channel": "sns", "n": 1, "notes": ""}
    rid = h.store.record_request(brief, source="slack", user_id="U1", slack_channel="C100")
    h.store.set_request_message(rid, slack_channel="C100", slack_ts="1.5")
    h.store.mark_request_running(rid)
    _bot(h, HttpRunner(h.app, "127.0.0.1", 0)).recover()
    assert h.store.get_request(rid)["status"] == "failed"
    [update] = h.fake.wait_for("chat.update", 1)
    assert update["ts"] == "1.5" and "재시작" in update["text"]


def test_socket_mode_delivers_a_command_and_a_reaction_and_acks_them(make_harness: Callable[..., Harness]) -> None:
    socket = FakeSocketMode()
    h = make_harness(ScriptedBackend(script=[POLITE[:1]]))
    h.fake.socket_url = socket.url
    runner = SocketRunner(h.app, "xapp-test", h.app.client)
    runner.start()
    try:
        assert socket.connected.wait(10)
        command = dict(pair.split("=", 1) for pair in signing.command_body("help").split("&"))
        socket.send({"envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True,
                     "payload": {**command, "text": "help", "command": "/copy"}})  # fmt: skip
        ack = socket.wait_ack("env-1")
        assert ack["payload"]["response_type"] == "ephemeral" and "사용법" in ack["payload"]["text"]

        # a command of its own, with its own trigger_id (the bot acts once per trigger_id)
        socket.send(
            {
                "envelope_id": "env-2",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {
                    **command,
                    "text": "셔츠 / 세일 / 30대 / 1개",
                    "command": "/copy",
                    "trigger_id": "T.sock.2",
                },
            }
        )
        socket.wait_ack("env-2")
        h.fake.wait_for("chat.update", 1)
        [candidate] = h.store.candidates_for(h.store.requests_with_status("done")[0]["id"])
        event = {"type": "reaction_added", "user": "U300", "reaction": "fire", "event_ts": "1700000500.0",
                 "item": {"type": "message", "channel": "C100", "ts": candidate["slack_ts"]}}  # fmt: skip
        socket.send({"envelope_id": "env-3", "type": "events_api", "accepts_response_payload": False,
                     "retry_attempt": 0, "retry_reason": "", "payload": json.loads(signing.event_body(event, event_id="EvS"))})  # fmt: skip
        socket.wait_ack("env-3")
        h.listeners.drain()
        deadline = time.monotonic() + 10
        while not h.store.feedback_for(candidate["id"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert h.store.feedback_for(candidate["id"])[0]["signal"] == "up"
        assert h.fake.of("apps.connections.open")
    finally:
        runner.stop()
        socket.stop()
