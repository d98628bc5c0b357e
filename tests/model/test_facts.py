"""Facts in, facts out (model/writing/facts.py): what a text states, normalised; what a copy states that its brief
does not give; and the writer writing such a copy again, then showing it last with the clause it risks."""

from __future__ import annotations

import pytest

from model.writing.brief import Brief
from model.writing.facts import facts, flags_for, ungrounded
from model.writing.writer import CopyWriter
from tests.model.test_writer import ScriptedBackend


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("린넨 셔츠 20% 할인해요", [("percent", "20")]),
        ("20 퍼센트, 20프로, 20퍼 적립", [("percent", "20")] * 3 + [("points", "")]),
        ("반값 세일", [("percent", "50")]),
        ("정가 39,000원 → 2만 9천원", [("won", "39000"), ("won", "29000")]),
        ("2.9만원, 3만원대, 5천원", [("won", "29000"), ("won", "30000"), ("won", "5000")]),
        ("1+1, 2 + 1", [("bundle", "1+1"), ("bundle", "2+1")]),
        ("~11월 30일까지, 12/25", [("date", "11-30"), ("date", "12-25")]),
        ("2월 30일", [("number", "2"), ("number", "30")]),  # no such date: two numbers
        (
            "무료 배송에 사은품 증정, 배송비 무료",
            [("free_shipping", ""), ("gift", ""), ("gift", ""), ("free_shipping", "")],
        ),
        ("40리터, 16개월, 선착순 100명", [("number", "40"), ("number", "16"), ("number", "100")]),
        ("한 땀 한 땀, 한 팩 더", []),  # numbers in words are not read
    ],
)
def test_each_kind_of_fact_is_found_and_normalised(text: str, found: list[tuple[str, str]]) -> None:
    assert [(f.kind, f.value) for f in facts(text)] == found


BRIEF = ["린넨 셔츠", "여름 세일", "20대"]


def test_a_copy_may_state_only_what_the_brief_gives() -> None:
    offer = "정가 39,000원 판매가 29,000원, 12월 1일~12월 3일, 2벌 구매 시 무료배송"
    assert ungrounded("29,000원! 딱 3일, 26% 할인, 2벌 사면 무료배송 12/3까지", [*BRIEF, offer]) == []
    # 10,000 off 39,000 is 25.6 %: 25 and 26 are given, 27 is not
    assert ungrounded("25% 할인", [*BRIEF, offer]) == []
    assert [f.text for f in ungrounded("27% 할인", [*BRIEF, offer])] == ["27%"]
    invented = ungrounded("70% 할인, 1+1에 사은품까지, 16개월 무이자", [*BRIEF, ""])
    assert [f.text for f in invented] == ["70%", "1+1", "사은품", "16개월"]
    assert ungrounded("20대를 위한 갤럭시 S24", ["갤럭시 S24", "", "20대", ""]) == []  # the brief's own figures


def test_the_flag_names_the_figure_and_the_law() -> None:
    brief = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대")
    [flag] = flags_for("린넨 셔츠 21% 할인해요", brief)
    assert flag.startswith("ungrounded: '21%' — ") and "표시·광고법 §3" in flag
    assert flags_for("린넨 셔츠 21% 할인해요", Brief.create(product="린넨 셔츠", age="20대", notes="21% 할인")) == []


def test_the_writer_writes_an_invented_figure_again_and_shows_it_last_flagged_when_it_stays() -> None:
    brief = Brief.create(product="한우 선물세트", event="추석", age="50대", n=2, notes="10% 할인")
    backend = ScriptedBackend(
        [
            ["한우 선물세트 30% 할인합니다.", "정성을 담은 한우를 준비했습니다."],
            ["한우 선물세트 10% 할인합니다.", "한우 1+1 행사입니다."],
        ]
    )
    result = CopyWriter(backend).write(brief)
    assert [c.text for c in result.candidates] == ["정성을 담은 한우를 준비했습니다.", "한우 선물세트 10% 할인합니다."]
    assert result.rounds == 2 and all(not c.flags for c in result.candidates)

    stubborn = CopyWriter(ScriptedBackend([["한우 선물세트 30% 할인합니다.", "정성을 담은 한우를 준비했습니다."]] * 3))
    first, last = stubborn.write(brief).candidates
    assert first.text == "정성을 담은 한우를 준비했습니다." and not first.flags
    assert last.text == "한우 선물세트 30% 할인합니다." and last.register_ok  # shown last, flagged
    assert [f.split(":")[0] for f in last.flags] == ["ungrounded"]
