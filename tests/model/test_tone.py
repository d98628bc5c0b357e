"""Register detection with Kiwi, including the cases it is known to get wrong, and the tone profiles."""

from __future__ import annotations

import pytest

from model.starter.corpus import load_corpus
from model.writing.tone import detect_register, profile_for, register_name, tone_profiles

CASES = [
    ("최고급 원단으로 준비했습니다.", "formal"),
    ("지금 만나보십시오", "formal"),
    ("사랑을 전합시다", "formal"),
    ("준비했답니다", "formal"),
    ("여름 세일 시작! 지금 만나보세요.", "polite"),
    ("가볍게 입기 좋죠", "polite"),
    ("정말 예쁘네요", "polite"),
    ("어디서 샀나요?", "polite"),
    ("기다릴게요", "polite"),
    ("세일 중이에요", "polite"),
    ("이번 주말엔 같이 가자!", "casual"),
    ("놓치지 마", "casual"),
    ("이거 완전 내 스타일이야", "casual"),
    ("같이 갈까?", "casual"),
    ("예쁘잖아", "casual"),
    ("이번 여름, 린넨이 답이다", "plain"),
    ("모두 모여라", "plain"),
    ("봄맞이 특별 할인", "noun"),
    ("입고 완료!", "noun"),
    ("단 3일! 최대 50% 할인", "noun"),
    ("SALE", "unknown"),
    ("", "unknown"),
]

PITFALLS = [
    ("이거요!", "polite"),  # 요/JX closing a fragment is polite
    ("지금 바로요", "polite"),
    ("할인 중이라고요", "polite"),
    ("우리 함께 떠나요 제주로", "polite"),  # inverted order: the ending is not the last word
    ("지금 확인하세요 → 앱에서", "polite"),
    ("진짜 예쁨", "noun"),  # nominal ᆷ tagged as EF is a noun ending
    ("선물 준비 끝났니?", "casual"),  # Kiwi tags this 니 as EC
    ("올해도 함께해", "casual"),
    ("함께하세요~ 😊", "polite"),  # emoji and symbols trail the ending
]


@pytest.mark.parametrize(("text", "expected"), CASES + PITFALLS)
def test_detect_register(text: str, expected: str) -> None:
    assert detect_register(text) == expected


def test_mixed_endings_take_the_majority_then_the_last() -> None:
    assert detect_register("정성을 담았습니다. 감사의 마음을 전하십시오. 함께해요.") == "formal"
    assert detect_register("정성을 담았습니다. 감사의 마음을 전하세요.") == "polite"


def test_detector_agrees_with_the_starter_corpus_labels() -> None:
    rows = load_corpus()
    agree = sum(detect_register(r["text"]) == r["register"] for r in rows)
    assert agree / len(rows) >= 0.95


def test_profiles_follow_the_tone_table() -> None:
    assert list(tone_profiles()) == ["10대", "20대", "30대", "40대", "50대", "60대+"]
    assert set(profile_for("20대").registers) == {"polite", "casual"}
    assert profile_for("40대").registers == ("polite",)
    assert profile_for("60대+").registers == ("formal",)
    assert not profile_for("50대").emoji
    assert all(p.accepts("noun") for p in tone_profiles().values())
    assert not profile_for("50대").accepts("casual")
    assert register_name("formal") == "하십시오체"
