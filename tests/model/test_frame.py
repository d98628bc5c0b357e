"""The legal frame of promotional messages: cp949 byte counts at the SMS limit, every channel's frame, missing
settings, the new compliance terms with a hit and a near miss each, and the writer putting it all together."""

from __future__ import annotations

import pytest

from model.writing.brief import Brief, channel_table
from model.writing.compliance import load_rules, screen
from model.writing.frame import AdFrame, needs_frame
from model.writing.postprocess import channel_limit, length_flag, measure
from model.writing.prompt import brief_lines
from model.writing.writer import CopyWriter
from tests.fakes.backends import ScriptedBackend

FRAME = AdFrame(sender="현대백화점", optout="080-123-4567")


def test_an_sms_is_measured_whole_and_the_body_gets_what_the_frame_leaves() -> None:
    # "(광고)현대백화점" 16 bytes + 2 line breaks + "무료수신거부 080-123-4567" 25 bytes = 43: 47 left of 90
    assert FRAME.wrap("", "sms") == "(광고)현대백화점\n\n무료수신거부 080-123-4567"
    assert FRAME.budget("sms") == 47
    body = "여름 린넨 셔츠 전 품목 20% 할인해요. 이번 주만!"  # 47 bytes in cp949 (Hangul 2, the rest 1)
    assert measure(body, "sms") == 47
    message = FRAME.wrap(body, "sms")
    assert message.startswith("(광고)현대백화점\n") and message.endswith("\n무료수신거부 080-123-4567")
    assert measure(message, "sms") == 90 and length_flag(message, "sms") == []
    over = FRAME.wrap(body + "!", "sms")
    assert length_flag(over, "sms") == ["too_long: 91 bytes, sms allows 90; 줄이거나 장문 문자(LMS)로 보내세요"]


def test_every_channel_that_needs_the_frame_gets_it_and_no_other() -> None:
    framed = {name for name in channel_table()["channels"] if needs_frame(name)}
    assert framed == {"sms", "lms", "push", "kakao", "kakao_image"}
    for name in channel_table()["channels"]:
        message = FRAME.wrap("지금 만나 보세요", name)
        if name in framed:
            assert message == "(광고)현대백화점\n지금 만나 보세요\n무료수신거부 080-123-4567", name
            assert FRAME.budget(name) == channel_limit(name) - measure(FRAME.wrap("", name), name)
        else:
            assert message == "지금 만나 보세요" and FRAME.budget(name) == channel_limit(name), name
    assert (channel_limit("lms"), channel_limit("kakao"), channel_limit("kakao_image")) == (2000, 400, 300)
    assert FRAME.budget("kakao") == 400 - 30  # characters: 10 + 2 line breaks + 18


def test_kakao_counts_lines_and_an_image_message_has_300_characters() -> None:
    lines = "\n".join(["한 줄"] * 28)  # with the frame's two lines: 30 lines, 29 line breaks
    assert length_flag(FRAME.wrap(lines, "kakao"), "kakao") == []
    assert length_flag(FRAME.wrap(lines + "\n한 줄 더", "kakao"), "kakao") == [
        "too_many_lines: 31 lines, kakao allows 30"
    ]
    long = "가" * 271  # 271 + 30 = 301 characters
    assert length_flag(FRAME.wrap(long, "kakao_image"), "kakao_image") == [
        "too_long: 301 chars, kakao_image allows 300"
    ]
    assert length_flag(FRAME.wrap(long, "kakao"), "kakao") == []


def test_missing_settings_show_placeholders_and_a_flag_naming_them() -> None:
    bare = AdFrame()
    assert bare.wrap("본문", "sms") == "(광고)[발신자명]\n본문\n무료수신거부 [080-000-0000]"
    [flag] = bare.flags("sms")
    assert flag.startswith("ad_frame:") and "COPYBOT_AD_SENDER and COPYBOT_AD_OPTOUT" in flag and "정보통신망법" in flag
    assert "COPYBOT_AD_SENDER" not in AdFrame(sender="현대백화점").flags("push")[0]
    assert FRAME.flags("sms") == [] and bare.flags("sns") == []


@pytest.mark.parametrize(("hit", "near_miss", "code", "law"), [
    ("홍삼으로 당뇨 개선까지", "홍삼, 당 걱정 없는 맛", "disease_claim", "식품 등의 표시·광고에 관한 법률"),
    ("매일 한 포, 암예방 습관", "암막 커튼 20% 할인", "disease_claim", "식품 등의 표시·광고에 관한 법률"),

    ("국내 1위 린넨", "1인 가구를 위한 린넨", "absolute_claim", "표시·광고의 공정화에 관한 법률"),
])  # fmt: skip
def test_each_compliance_rule_flags_its_terms_names_its_law_and_leaves_near_misses(
    hit: str, near_miss: str, code: str, law: str
) -> None:
    rules = load_rules()
    flags = screen(hit, rules)
    assert [f.split(":")[0] for f in flags] == [code] and law in flags[0]
    assert screen(near_miss, rules) == []


def test_an_ad_label_is_flagged_in_framed_messages_only() -> None:
    rules = load_rules()
    [flag] = screen("봄맞이 (광고) 세일해요", rules, framed=True)
    assert flag.startswith("ad_label: '(광고)'") and "정보통신망법 제50조" in flag
    assert screen("광고 모델이 입은 그 셔츠", rules, framed=True) == []  # the word alone is no label
    assert screen("봄맞이 (광고) 세일해요", rules) == []  # an SNS post is not a message to a phone


def test_sending_time_advice_is_a_note_on_promotional_requests_only() -> None:
    [note] = FRAME.notes("sms")
    assert "21:00~08:00" in note and "동의" in note
    assert FRAME.notes("sns") == [] and FRAME.notes("banner") == []


def test_the_writer_asks_for_the_budget_and_shows_each_candidate_as_the_whole_message() -> None:
    asked: list[Brief] = []

    class Recording(ScriptedBackend):
        def prompt_for(self, brief: Brief, register: str) -> str:
            asked.append(brief)
            return super().prompt_for(brief, register)

    backend = Recording(script=[["(광고) 여름 린넨 셔츠 20% 할인해요.", "오늘만 (광고) 특가예요."]])
    brief = Brief.create(product="린넨 셔츠", event="여름 세일", age="30대", channel="문자", n=2, notes="20% 할인")
    result = CopyWriter(backend, frame=FRAME).write(brief, seed=1)
    first, second = result.candidates
    assert first.text == "여름 린넨 셔츠 20% 할인해요."  # its own label dropped: the frame adds one
    assert first.message == "(광고)현대백화점\n여름 린넨 셔츠 20% 할인해요.\n무료수신거부 080-123-4567"
    assert first.length == measure(first.message, "sms") and not first.flags
    assert [f.split(":")[0] for f in second.flags] == ["ad_label"]  # a label inside the body stays, flagged
    assert result.notes == FRAME.notes("sms")
    assert {b.limit for b in asked} == {47}  # the model is asked for a body within the budget
    assert "본문 47바이트(cp949)" in "\n".join(brief_lines(Brief(**{**brief.__dict__, "limit": 47}), "polite"))
    on_sns = CopyWriter(ScriptedBackend(), frame=FRAME).write(Brief.create(product="셔츠", age="30대", n=1), seed=1)
    assert on_sns.candidates[0].message == "" and on_sns.notes == []


def test_a_sender_too_long_for_an_sms_is_refused_with_where_it_fits() -> None:
    from model.errors import ModelSideError

    crowded = AdFrame(sender="현대백화점무역센터점식품관프리미엄선물세트기획팀", optout="080-123-4567")
    brief = Brief.create(product="린넨 셔츠", age="30대", channel="sms", n=1)
    with pytest.raises(ModelSideError, match="lms") as caught:
        CopyWriter(ScriptedBackend(), frame=crowded).write(brief)
    assert "LMS" in caught.value.user_message
    lms = CopyWriter(ScriptedBackend(), frame=crowded).write(
        Brief.create(product="셔츠", age="30대", channel="lms", n=1)
    )
    assert lms.candidates[0].message.startswith("(광고)현대백화점무역센터점식품관프리미엄선물세트기획팀\n")


def test_a_body_too_long_for_the_frame_is_written_again_and_kept_last_if_no_retry_helps() -> None:
    long = "여름 린넨 셔츠 전 품목 이십 퍼센트 할인하는 특별한 기회를 놓치지 마세요"  # 93 bytes alone: no sentence end fits
    short = "린넨 셔츠 20% 할인해요."
    backend = ScriptedBackend(script=[[long], [short, short + "!"]])
    brief = Brief.create(product="린넨 셔츠", age="30대", channel="sms", n=1, notes="20% 할인")
    result = CopyWriter(backend, frame=FRAME).write(brief, seed=1)
    assert [c.text for c in result.candidates] == [short] and result.rounds == 2
    stubborn = CopyWriter(ScriptedBackend(script=[[long]], fallback=[long]), frame=FRAME).write(brief, seed=1)
    [kept] = stubborn.candidates
    assert kept.text == long and kept.register_ok and kept.flags[0].startswith("too_long:")  # shown, flagged


def test_training_examples_carry_the_body_budget_the_writer_serves_with() -> None:
    from model.training.dataset import build_dataset, map_briefs

    brief = {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "30대", "register_detected": "polite"}
    corpus = [{**brief, "text": f"린넨 셔츠 할인해요 {i}", "channel": c} for i, c in enumerate(["sms", "sns"] * 4)]
    data = map_briefs(build_dataset([], corpus, corpus[:2], force=True), FRAME.budgeted_brief)
    briefs = [e["brief"] for e in data.sft + data.heldout_corpus] + data.heldout_briefs
    assert {b["channel"] for b in briefs} == {"sms", "sns"}
    for brief in briefs:
        assert brief.get("limit") == (47 if brief["channel"] == "sms" else None)
