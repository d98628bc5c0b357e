"""Brief validation: age spellings, channel aliases, counts and lengths, with clear messages."""

from __future__ import annotations

import pytest

from model.errors import BriefError
from model.writing.brief import Brief, normalize_age, normalize_channel


@pytest.mark.parametrize(
    ("raw", "group"),
    [
        ("20대", "20대"), ("20s", "20대"), ("25", "20대"), ("50대 이상", "50대"), ("60+", "60대+"), ("60대+", "60대+"),
        ("72", "60대+"), ("10대", "10대"), ("19세", "10대"), ("이십대", "20대"), ("시니어", "60대+"), ("30 대", "30대"),
        ("４０대", "40대"),
    ],
)  # fmt: skip
def test_age_spellings(raw: str, group: str) -> None:
    assert normalize_age(raw) == group


@pytest.mark.parametrize("raw", ["9", "abc", "200", "20대대", "-20", "스무살쯤"])
def test_unknown_ages_list_the_valid_values(raw: str) -> None:
    with pytest.raises(BriefError) as info:
        normalize_age(raw)
    assert "10대, 20대, 30대, 40대, 50대, 60대+" in str(info.value)
    assert info.value.field == "age_group"
    assert "연령대" in info.value.user_message


def test_channel_aliases_and_default() -> None:
    assert normalize_channel("문자") == "sms"
    assert normalize_channel("SMS") == "sms"
    assert normalize_channel("배너") == "banner"
    assert normalize_channel("") == "sns"
    with pytest.raises(BriefError, match="banner, push, sms, sns, print"):
        normalize_channel("fax")


def test_create_normalises_fields() -> None:
    brief = Brief.create(product="  린넨   셔츠 ", event="여름 세일", age="25", channel="push", n="3", notes=" 시원함 ")
    assert brief == Brief("린넨 셔츠", "여름 세일", "20대", "push", 3, "시원함")
    assert Brief.create(product="p", age="30대").n == 5


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"product": "  ", "age": "20대"}, "product"),
        ({"product": "p", "age": ""}, "age_group"),
        ({"product": "p", "age": "20대", "n": 0}, "n"),
        ({"product": "p", "age": "20대", "n": "11"}, "n"),
        ({"product": "p", "age": "20대", "n": "many"}, "n"),
        ({"product": "x" * 81, "age": "20대"}, "product"),
        ({"product": "p", "age": "20대", "notes": "x" * 301}, "notes"),
    ],
)
def test_bad_briefs_name_the_field(fields: dict, field: str) -> None:
    with pytest.raises(BriefError) as info:
        Brief.create(**fields)
    assert info.value.field == field
    assert info.value.user_message
