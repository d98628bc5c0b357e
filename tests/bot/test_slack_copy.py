"""`/copy` through the real Bolt app: acks, the request message, thread posts, seeded reactions, rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from model.writing.engine import LocalEngine
from tests.bot.conftest import Harness
from tests.fakes.backends import FORMAL, POLITE, FailingBackend, ScriptedBackend


def _wait_status(h: Harness, request_id: int, status: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = h.store.get_request(request_id)
        if row and row["status"] == status:
            return row
        time.sleep(0.02)
    raise AssertionError(f"request {request_id} is {h.store.get_request(request_id)}")


@pytest.mark.slow
def test_copy_text_posts_candidates_in_a_thread_with_the_starter_model(
    make_harness: Callable[..., Harness], starter_dir: Path
) -> None:
    h = make_harness(LocalEngine(starter_dir, version="starter"))
    response = h.command("린넨 셔츠 / 여름 세일 / 20대")
    assert h.ack_json(response) == {}
    [placeholder] = h.fake.wait_for("chat.postMessage", 1)
    assert "린넨 셔츠" in placeholder["text"] and "<@U100>" in placeholder["text"] and "작성 중" in placeholder["text"]
    posts = h.fake.wait_for("chat.postMessage", 6)
    thread = [p for p in posts if p.get("thread_ts")]
    assert len(thread) == 5
    assert {p["thread_ts"] for p in thread} == {"1700000000.000001"}
    assert all(p["blocks"][2]["elements"][0]["action_id"] == "edit_candidate" for p in thread)
    reactions = h.fake.wait_for("reactions.add", 10)
    assert sorted(r["name"] for r in reactions).count("+1") == 5
    [update] = h.fake.wait_for("chat.update", 1)
    assert "후보 5개" in update["text"] and "starter" in update["text"]

    [request] = h.store.requests_with_status("done")
    assert (request["source"], request["user_id"], request["slack_channel"]) == ("slack", "U100", "C100")
    assert request["slack_ts"] == "1700000000.000001"
    candidates = h.store.candidates_for(request["id"])
    assert [c["slack_ts"] for c in candidates] == [f"1700000000.{i:06d}" for i in range(2, 7)]
    assert all(c["model_version"] == "starter" for c in candidates)


def test_help_and_unparseable_text_answer_ephemerally_and_post_nothing(make_harness: Callable[..., Harness]) -> None:
    h = make_harness()
    help_reply = h.ack_json(h.command("help"))
    assert help_reply["response_type"] == "ephemeral"
    assert "/copy 린넨 셔츠 / 여름 세일 / 20대" in help_reply["text"]
    for text in ("린넨 셔츠", "셔츠 / 여름 / 9살", "제품: 셔츠, 연령: 20대, 개수: 40"):
        reply = h.ack_json(h.command(text))
        assert reply["response_type"] == "ephemeral"
        assert reply["text"].startswith("⚠️")
        assert "사용법" in reply["text"]
    time.sleep(0.2)
    assert h.fake.of("chat.postMessage") == []
    assert h.store.counts()["requests"] == 0


def test_model_failure_updates_the_message_and_stores_a_failed_request(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(FailingBackend())
    h.ack_json(h.command("한우 선물세트 / 추석 / 60대+"))
    [update] = h.fake.wait_for("chat.update", 1)
    assert "모델 서버에 연결하지 못했어요" in update["text"] and "다시 요청해 주세요" in update["text"]
    [request] = h.store.requests_with_status("failed")
    assert request["error"] == "model host unreachable"


def test_model_text_is_escaped_so_it_cannot_mention_or_link(make_harness: Callable[..., Harness]) -> None:
    hostile = [
        "<!channel> 지금 바로 확인해 보세요, 여름 린넨 셔츠 전 품목 세일 중 <https://ev.il|여기>",
        "A&B 세트를 준비했어요",
    ]
    h = make_harness(ScriptedBackend(script=[hostile], fallback=hostile))
    h.ack_json(h.command("셔츠 / 세일 / 30대 / 2개"))
    posts = [p for p in h.fake.wait_for("chat.postMessage", 3) if p.get("thread_ts")]
    joined = " ".join(p["text"] + str(p["blocks"]) for p in posts)
    assert "<!channel>" not in joined and "<https://" not in joined
    assert "&lt;!channel&gt;" in joined and "A&amp;B" in joined


def test_copy_outside_allowed_channels_is_refused_ephemerally(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(COPYBOT_ALLOWED_CHANNELS="C999")
    reply = h.ack_json(h.command("셔츠 / 세일 / 20대", channel="C100"))
    assert reply["response_type"] == "ephemeral" and "<#C999>" in reply["text"]
    assert h.store.counts()["requests"] == 0


def test_a_channel_the_bot_cannot_post_in_fails_clearly(make_harness: Callable[..., Harness]) -> None:
    h = make_harness()
    h.fake.fail_next("chat.postMessage", "channel_not_found")
    h.ack_json(h.command("셔츠 / 세일 / 20대"))
    # told through the command's response_url, which reaches the user even where the bot cannot post
    [told] = h.fake.wait_for("response_url", 1)
    assert "/invite @copybot" in told["text"] and told["response_type"] == "ephemeral"
    [request] = h.store.requests_with_status("failed")
    assert "channel_not_found" in request["error"]


def test_a_429_is_retried_after_retry_after(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(ScriptedBackend(script=[FORMAL]))
    h.fake.fail_next("chat.postMessage", "ratelimited")
    started = time.monotonic()
    h.ack_json(h.command("한우 / 추석 / 50대 / 2개"))
    posts = h.fake.wait_for("chat.postMessage", 4)
    assert time.monotonic() - started >= 1.0  # waited out Retry-After: 1
    assert len([p for p in posts if p.get("thread_ts")]) == 2
    assert h.store.requests_with_status("done")


def test_ten_commands_at_once_with_a_slow_model_are_all_acknowledged_quickly(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(ScriptedBackend(delay_s=0.5))
    h.deps.pool = type(h.deps.pool)(workers=2, queue=20)
    acks = []
    for i in range(10):
        t = time.perf_counter()
        response = h.command(f"셔츠{i} / 세일 / 20대 / 1개")
        acks.append(time.perf_counter() - t)
        assert response.status == 200
    assert max(acks) < 0.4  # each call includes its listener; the 0.5 s model runs on the pool, not there
    deadline = time.monotonic() + 30
    while len(h.store.requests_with_status("done")) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(h.store.requests_with_status("done")) == 10


def test_a_full_queue_says_so_and_keeps_the_request(make_harness: Callable[..., Harness]) -> None:
    gate = threading.Event()  # the first generation holds the only slot until the test is done
    h = make_harness(ScriptedBackend(gate=gate))
    h.deps.pool = type(h.deps.pool)(workers=1, queue=0)
    h.ack_json(h.command("셔츠 / 세일 / 20대 / 1개"))
    busy = h.ack_json(h.command("바지 / 세일 / 20대 / 1개"))
    gate.set()
    assert busy["response_type"] == "ephemeral" and "다시 요청해 주세요" in busy["text"]
    [failed] = h.store.requests_with_status("failed")
    assert (failed["product"], failed["error"]) == ("바지", "queue full")


def test_a_slack_500_is_retried(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(ScriptedBackend(script=[FORMAL]))
    h.fake.fail_next("chat.postMessage", "500")
    h.ack_json(h.command("한우 / 추석 / 50대 / 1개"))
    h.fake.wait_for("chat.update", 1)
    assert len([p for p in h.fake.of("chat.postMessage") if p.get("thread_ts")]) == 1
    assert "후보 1개" in h.fake.of("chat.update")[0]["text"]


def test_candidates_slack_refuses_to_show_are_kept_and_the_request_says_so(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(ScriptedBackend(script=[FORMAL]))
    h.fake.fail_next("chat.postMessage", "500", times=3, after=1)  # the first candidate fails through every retry
    h.ack_json(h.command("한우 / 추석 / 50대 / 2개"))
    [update] = h.fake.wait_for("chat.update", 1)
    assert "2개 중 0개만 올렸어요" in update["text"]
    [request] = h.store.requests_with_status("done")
    assert len(h.store.candidates_for(request["id"])) == 2


def test_an_sms_candidate_is_posted_as_the_whole_legal_message_with_its_byte_count(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(ScriptedBackend(script=[POLITE[:2]]), COPYBOT_AD_SENDER="현대백화점",
                     COPYBOT_AD_OPTOUT="080-123-4567")  # fmt: skip
    assert h.ack_json(h.command("린넨 셔츠 / 여름 세일 / 30대 / 문자 / 2개")) == {}
    [update] = h.fake.wait_for("chat.update", 1)
    thread = [p for p in h.fake.of("chat.postMessage") if p.get("thread_ts")]
    first = thread[0]["blocks"]
    assert first[0]["text"]["text"] == "*1.*\n```(광고)현대백화점\n여름엔 린넨이죠!\n무료수신거부 080-123-4567```"
    size = len("(광고)현대백화점\n여름엔 린넨이죠!\n무료수신거부 080-123-4567".encode("cp949"))
    assert f"메시지 {size}/90바이트" in first[1]["elements"][0]["text"] and "⚠️" not in first[1]["elements"][0]["text"]
    assert "📌" in update["text"] and "21:00~08:00" in update["text"]
    [request] = h.store.requests_with_status("done")
    stored = h.store.candidates_for(request["id"])[0]
    assert (stored["text"], stored["length"]) == ("여름엔 린넨이죠!", size)
    assert stored["message"].startswith("(광고)현대백화점\n")


def test_without_the_ad_settings_the_message_shows_placeholders_and_says_what_to_set(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(ScriptedBackend(script=[POLITE[:1]]))
    h.ack_json(h.command("린넨 셔츠 / 여름 세일 / 30대 / 카톡 / 1개"))
    h.fake.wait_for("chat.update", 1)
    [post] = [p for p in h.fake.of("chat.postMessage") if p.get("thread_ts")]
    assert "(광고)[발신자명]" in post["blocks"][0]["text"]["text"]
    assert "무료수신거부 [080-000-0000]" in post["blocks"][0]["text"]["text"]
    facts = post["blocks"][1]["elements"][0]["text"]
    assert "/400자" in facts and "COPYBOT_AD_SENDER and COPYBOT_AD_OPTOUT" in facts


def test_an_unexpected_failure_is_stored_on_the_request_and_the_channel_is_told(
    make_harness: Callable[..., Harness],
) -> None:
    class Broken(ScriptedBackend):
        def complete(self, prompts: list[str], **_: object) -> list[str]:
            raise RuntimeError("a bug, not the model")

    h = make_harness(Broken())
    h.ack_json(h.command("린넨 셔츠 / 여름 세일 / 30대"))
    [update] = h.fake.wait_for("chat.update", 1)
    assert "⚠️" in update["text"]
    [request] = h.store.requests_with_status("failed")
    assert request["error"] == "RuntimeError('a bug, not the model')"  # stored by the one path CLI and Slack share
