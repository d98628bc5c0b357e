"""Nothing lost, nothing wedged (issue 40), through the real Bolt app with signed requests, a fake Slack Web API and
a real SQLite file: a Slack outage, a database locked past its busy timeout (with a restart that replays the spill
file once), a replayed request, broken form payloads and input that would be misread."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from slack_bolt import BoltRequest

from bot.held import UNSTARTED, HeldWrites
from bot.slack.copy_requests import NOT_STARTED, SLACK_DOWN
from tests.bot.conftest import Harness
from tests.bot.test_slack_feedback import _use_button, _view_submission, reaction
from tests.fakes import signing
from tests.fakes.backends import POLITE, ScriptedBackend
from tests.fakes.db_lock import locked


def _wait(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_an_outage_of_any_length_wedges_no_slot_and_every_user_hears_once_slack_is_back(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(ScriptedBackend(script=[POLITE[:3]] * 20))
    capacity = 2 + 4  # the harness pool's workers and queue: an outage used to keep a slot per request for good
    h.fake.unreachable = True
    for wave in range(2):  # twice the pool's capacity, in two waves: the second finds every slot free again
        with ThreadPoolExecutor(capacity) as pool:
            acks = list(pool.map(h.command, [f"린넨 셔츠 {wave}{i} / 여름 세일 / 20대" for i in range(capacity)]))
        assert [(a.status, a.body) for a in acks] == [(200, "")] * capacity  # each acknowledged, none refused busy
    h.listeners.drain()
    failed = h.store.requests_with_status("failed")
    assert len(failed) == 2 * capacity and all("Slack unreachable" in r["error"] for r in failed)
    assert h.deps.pool.depth() == 0 and h.store.requests_with_status("pending", "running") == []

    h.fake.unreachable = False
    notices = h.fake.wait_for("response_url", 2 * capacity)  # each user is told, through the command's response_url
    assert [n["text"] for n in notices] == [SLACK_DOWN] * 2 * capacity
    h.command("린넨 셔츠 / 여름 세일 / 20대 / 3개")  # the next /copy is served
    h.fake.wait_for("chat.update", 1)
    assert len(h.store.requests_with_status("done")) == 1


def test_a_reaction_edit_and_mark_refused_by_a_locked_database_are_held_and_written_once(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(ScriptedBackend(script=[POLITE[:3]]), busy_timeout_s=0.2)
    h.command("린넨 셔츠 / 여름 세일 / 30대 / 3개")
    h.fake.wait_for("chat.update", 1)
    [request] = h.store.requests_with_status("done")
    cands = h.store.candidates_for(request["id"])
    with locked(h.deps.settings.db_path):
        assert h.event(reaction("reaction_added", "+1", cands[0]["slack_ts"]), event_id="EvLocked").status == 200
        edit = {"text": {"value": {"type": "plain_text_input", "value": "여름엔 역시 린넨"}}}
        assert h.ack_json(h.interact(_view_submission("copy_edit", edit, str(cands[1]["id"])))) == {}
        assert h.interact(_use_button(cands[2])).status == 200
        h.listeners.drain()
        assert h.deps.held is not None and h.deps.held.pending() == 3
        assert h.store.counts()["feedback_events"] == 0
    _wait(lambda: h.deps.held is not None and h.deps.held.pending() == 0)
    assert h.store.candidate_scores()[cands[0]["id"]].up == 1
    assert [e["signal"] for e in h.store.feedback_for(cands[2]["id"])] == ["used"]
    assert [e["edited_text"] for e in h.store.edits_for(cands[1]["id"])] == ["여름엔 역시 린넨"]
    h.event(reaction("reaction_added", "+1", cands[0]["slack_ts"]), event_id="EvLocked")  # Slack's own retry
    assert h.store.counts()["feedback_events"] == 2


def test_a_copy_the_database_refused_is_kept_as_not_started_and_its_user_told(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(busy_timeout_s=0.2)
    with locked(h.deps.settings.db_path):
        assert h.command("린넨 셔츠 / 여름 세일 / 20대").status == 200
        assert h.deps.pool.depth() == 0 and h.fake.of("chat.postMessage") == []
    [told] = h.fake.wait_for("response_url", 1)
    assert told["text"] == NOT_STARTED
    [kept] = h.store.requests_with_status("failed")
    assert (kept["product"], kept["error"], kept["user_id"]) == ("린넨 셔츠", UNSTARTED, "U100")
    h.command("린넨 셔츠 / 여름 세일 / 20대")  # and the bot goes on
    h.fake.wait_for("chat.update", 1)


def test_past_the_bound_held_writes_go_to_the_spill_file_and_the_next_start_replays_each_once(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(ScriptedBackend(script=[POLITE[:3]]), busy_timeout_s=0.2, COPYBOT_HOLD_SECONDS="1")
    h.command("린넨 셔츠 / 여름 세일 / 30대 / 3개")
    h.fake.wait_for("chat.update", 1)
    [request] = h.store.requests_with_status("done")
    first = h.store.candidates_for(request["id"])[0]
    spill = h.deps.settings.spill_path
    with locked(h.deps.settings.db_path):
        h.event(reaction("reaction_added", "+1", first["slack_ts"]), event_id="EvSpilled")
        h.command("셔츠 / 세일 / 20대")
        _wait(spill.exists)
        _wait(lambda: len(spill.read_text("utf-8").splitlines()) == 2)
        assert h.deps.held is not None and h.deps.held.pending() == 0
    saved = spill.read_text("utf-8")

    restarted = HeldWrites(h.store, spill, hold_s=1)  # the next `copybot serve`
    assert restarted.replay() == (2, 0) and not spill.exists()
    assert h.store.candidate_scores()[first["id"]].up == 1
    assert [r["error"] for r in h.store.requests_with_status("failed")] == [UNSTARTED]
    spill.write_text(saved, encoding="utf-8")  # a crash after the writes, before the file was removed
    assert HeldWrites(h.store, spill, hold_s=1).replay() == (0, 2)
    assert h.store.counts()["feedback_events"] == 1 and len(h.store.requests_with_status("failed")) == 1


def test_a_signed_request_sent_twice_is_acted_on_once(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(ScriptedBackend(script=[POLITE[:3]] * 2))
    body = signing.command_body("린넨 셔츠 / 여름 세일 / 30대 / 3개", response_url=h.fake.response_url(), trigger="T.9")
    headers = signing.headers(body, "application/x-www-form-urlencoded")
    for _ in range(2):
        assert h.app.dispatch(BoltRequest(body=body, headers=headers)).status == 200
    h.listeners.drain()
    h.fake.wait_for("chat.update", 1)
    time.sleep(0.3)
    assert h.store.counts()["requests"] == 1
    assert len([m for m in h.fake.of("chat.postMessage") if "thread_ts" not in m]) == 1


@pytest.mark.parametrize(
    ("view", "error_block"),
    [
        ({"state": {"values": {}}}, "product"),  # no block at all
        ({}, "product"),  # no state
        ({"state": {"values": {"product": {"value": {"value": "셔츠"}}}}}, "age"),  # the age block missing
        ({"state": {"values": {"product": {"value": {"value": "셔츠"}}, "age": {"value": {}}}}}, "age"),
    ],
)
def test_a_form_missing_its_fields_answers_with_the_forms_own_errors(
    make_harness: Callable[..., Harness], view: dict, error_block: str
) -> None:
    h = make_harness()
    payload = _view_submission("copy_brief", {}, "C100")
    payload["view"] = {**{k: v for k, v in payload["view"].items() if k != "state"}, **view}
    reply = h.ack_json(h.interact(payload))
    assert reply["response_action"] == "errors" and error_block in reply["errors"]
    assert h.deps.pool.depth() == 0 and h.store.counts()["requests"] == 0


def test_a_form_without_its_channel_is_refused_and_holds_no_slot(make_harness: Callable[..., Harness]) -> None:
    h = make_harness()
    values = {"product": {"value": {"value": "셔츠"}}, "age": {"value": {"selected_option": {"value": "20대"}}}}
    payload = _view_submission("copy_brief", values, "")
    reply = h.ack_json(h.interact(payload))
    assert reply["response_action"] == "errors" and "/copy" in reply["errors"]["product"]
    assert h.deps.pool.depth() == 0 and h.deps.pool.reserve()  # every slot is there
    h.deps.pool.release()
    forged = _view_submission("copy_edit", {"text": {"value": {"value": "고친 카피"}}}, "not-a-number")
    assert h.ack_json(h.interact(forged))["response_action"] == "errors"


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        (
            "제품: 린넨 셔츠, 혜택: 20% 할인, 연령: 20대",
            "'혜택' 항목은 알 수 없어요. 쓸 수 있는 항목: 제품, 행사, 타깃",
        ),
        (" / 여름 세일 / 20대", "제품을 찾지 못했어요"),
        ("\u200b\u202e / 여름 세일 / 20대", "제품을 적어 주세요"),
    ],
)
def test_input_that_would_be_misread_is_refused_in_words(
    make_harness: Callable[..., Harness], text: str, refusal: str
) -> None:
    h = make_harness()
    reply = h.ack_json(h.command(text))
    assert reply["response_type"] == "ephemeral" and refusal in reply["text"]
    assert h.store.counts()["requests"] == 0


def test_invisible_characters_are_cleaned_from_the_brief(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(ScriptedBackend(script=[POLITE[:3]]))
    h.command("린넨\x00 셔\u200b츠\u202e / 여름\u2066 세일 / 30대 / 3개")
    h.fake.wait_for("chat.update", 1)
    [request] = h.store.requests_with_status("done")
    assert (request["product"], request["event"]) == ("린넨 셔츠", "여름 세일")
