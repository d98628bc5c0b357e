"""`/copy` text parsing: positional and key-value forms, help, the empty form, and clear errors."""

from __future__ import annotations

import pytest

from bot.slack.parsing import CommandParseError, parse_command


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("린넨 셔츠 / 여름 세일 / 20대", {"product": "린넨 셔츠", "event": "여름 세일", "age": "20대"}),
        ("린넨 셔츠 | 여름 세일 | 20대 | 문자 | 3개",
         {"product": "린넨 셔츠", "event": "여름 세일", "age": "20대", "channel": "문자", "n": "3"}),
        ("린넨 셔츠, 20대, 여름 세일, 시원함 강조",
         {"product": "린넨 셔츠", "age": "20대", "event": "여름 세일", "notes": "시원함 강조"}),
        ("린넨 셔츠\n여름 세일\n50대 이상", {"product": "린넨 셔츠", "event": "여름 세일", "age": "50대 이상"}),
        ("제품: 수분 크림, 행사: 신상품 입고, 연령: 30대, 채널: push, 개수: 3, 메모: 촉촉함",
         {"product": "수분 크림", "event": "신상품 입고", "age": "30대", "channel": "push", "n": "3", "notes": "촉촉함"}),
        ("product=셔츠 age=30s event=블프", {"product": "셔츠", "age": "30s", "event": "블프"}),
        ("상품：한우 세트 / 타깃：60+", {"product": "한우 세트", "age": "60+"}),
    ],
)  # fmt: skip
def test_accepted_forms(text: str, fields: dict[str, str]) -> None:
    parsed = parse_command(text)
    assert parsed.kind == "brief"
    assert parsed.fields == fields


def test_help_and_empty() -> None:
    assert parse_command("help").kind == "help"
    assert parse_command(" 도움말 ").kind == "help"
    assert parse_command("").kind == "modal"
    assert parse_command(None).kind == "modal"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("린넨 셔츠", "연령대"),
        ("제품: 셔츠, 제품: 바지, 연령: 20대", "두 번"),
        ("셔츠 연령: 20대", "이름을 붙여"),
        ("a / b / 20대 / c / d", "어디에 넣을지"),
        ("가" * 1001, "너무 길어요"),
    ],
)
def test_errors_say_what_to_fix_in_korean(text: str, says: str) -> None:
    with pytest.raises(CommandParseError) as info:
        parse_command(text)
    assert says in info.value.user_message
