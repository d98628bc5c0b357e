"""Failure scenarios not covered elsewhere, each showing that nothing was lost and the user or operator was told.

Covered in other files: duplicate and out-of-order reaction events (test_slack_feedback.py), a restart during a
generation (test_serve.py), a model host that is down or slow (test_remote_model.py, model/test_client.py), Slack
429/500/channel_not_found (test_slack_copy.py, test_report.py), the disk full while saving an adapter and corrupt
adapter folders (model/test_registry.py, model/test_engine.py), training killed mid-run (test_retrain.py,
model/test_jobs.py), two processes writing at once (storage/test_store.py).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bot.composition import build_bot
from bot.settings import Settings, SettingsError
from model.serving.client import ModelClient
from model.serving.remote import RemoteBackend
from model.writing.writer import CopyWriter
from storage import Store, StoreError
from tests.bot.conftest import Harness
from tests.bot.test_slack_feedback import posted, reaction  # noqa: F401  (the fixture)
from tests.fakes.backends import ScriptedBackend
from tests.fakes.slack_api import FakeSlack
from tests.fakes.vllm import MODELS


def test_a_reaction_on_a_deleted_candidate_is_ignored_and_logged(
    posted: tuple[Harness, list[dict]],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    h, cands = posted
    gone = cands[2]
    h.store.db.execute("delete from candidates where id = ?", [gone["id"]])  # an operator purged it
    h.store.db.conn.commit()
    with caplog.at_level(logging.INFO):
        response = h.event(reaction("reaction_added", "+1", gone["slack_ts"]), event_id="EvGone")
    assert response.status == 200  # acknowledged, so Slack does not retry it forever
    assert h.store.counts()["feedback_events"] == 0
    assert any("no candidate there" in r.getMessage() for r in caplog.records)
    h.event(reaction("reaction_added", "+1", cands[0]["slack_ts"]), event_id="EvKept")  # the others still count
    assert h.store.candidate_scores()[cands[0]["id"]].up == 1


def _garbage(kind: str) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=MODELS)
        if kind == "html":
            return httpx.Response(200, text="<html><body>502 Bad Gateway</body></html>")
        if kind == "no_choices":
            return httpx.Response(200, json={"id": "x", "object": "text_completion"})
        if kind == "bad_choice":
            return httpx.Response(200, json={"choices": [{"text": None}]})
        prompts = json.loads(request.content)["prompt"]
        return httpx.Response(200, json={"choices": [{"index": 0, "text": "하나뿐"}] * (len(prompts) - 1)})

    return httpx.MockTransport(answer)


@pytest.mark.parametrize("kind", ["html", "no_choices", "bad_choice", "too_few"])
def test_a_model_host_answering_garbage_fails_the_request_clearly(
    make_harness: Callable[..., Harness], kind: str
) -> None:
    h = make_harness(RemoteBackend(ModelClient("http://gpu:8000", transport=_garbage(kind))))
    h.ack_json(h.command("린넨 셔츠 / 여름 세일 / 20대"))
    [update] = h.fake.wait_for("chat.update", 1)
    assert "모델 서버에서 오류가 났어요" in update["text"]
    [request] = h.store.requests_with_status("failed")
    assert "model host" in request["error"] or "OpenAI" in request["error"]
    assert h.store.counts()["candidates"] == 0


def test_a_database_locked_by_another_process_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "copybot.db"
    Store.open(path).close()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(3); c.execute('COMMIT')"), str(path)],
        stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    store = Store.open(path, busy_timeout_s=0.3)
    brief = {"product": "셔츠", "event": "", "age_group": "20대", "channel": "sns", "n": 3}
    with pytest.raises(StoreError, match="the database is locked: another process has held its write lock"):
        store.record_request(brief, source="cli")
    holder.wait(10)
    assert store.record_request(brief, source="cli") == 1  # once the lock is gone, the write goes through
    assert store.counts()["requests"] == 1


def test_two_bot_processes_on_one_database_are_refused(tmp_path: Path, fake_slack: FakeSlack) -> None:
    settings = Settings.from_env({"COPYBOT_HOME": str(tmp_path / "home"), "SLACK_BOT_TOKEN": "xoxb-test",
                                  "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": fake_slack.url})  # fmt: skip

    def writer(_: Store) -> CopyWriter:
        return CopyWriter(ScriptedBackend())

    first = build_bot(settings, writer, http=True, port=0)
    try:
        started = time.monotonic()
        with pytest.raises(SettingsError, match=r"copybot serve on .*copybot.db is already running \(pid \d+"):
            build_bot(settings, writer, http=True, port=0)
        assert time.monotonic() - started < 10  # refused at once, before loading a model
    finally:
        first.shutdown(grace_s=1)
    second = build_bot(settings, writer, http=True, port=0)  # the first one stopped: the lock is free again
    second.shutdown(grace_s=1)
