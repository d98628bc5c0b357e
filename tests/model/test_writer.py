"""CopyWriter: register retries, flags and channel fitting, with a scripted backend and with the real starter."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from model.errors import ModelSideError
from model.writing.brief import Brief
from model.writing.engine import LocalEngine
from model.writing.postprocess import MIN_HANGUL_SHARE, hangul_share, measure
from model.writing.writer import CopyWriter


@dataclass
class ScriptedBackend:
    """A hand-written backend that answers each batch from a script, and records the prompts it got."""

    script: list[list[str]]
    version: str = "scripted"
    calls: list[list[str]] = field(default_factory=list)
    avoided: list[list[str]] = field(default_factory=list)  # each call's `avoid`: copies the set already holds
    models: list[str | None] = field(default_factory=list)

    def prompt_for(self, brief: Brief, register: str) -> str:
        return f"{brief.product}|{register}"

    def complete(self, prompts: list[str], **kwargs: object) -> list[str]:
        self.calls.append(prompts)
        self.avoided.append(list(kwargs.get("avoid", [])))  # type: ignore[call-overload]
        self.models.append(kwargs.get("model"))  # type: ignore[arg-type]
        answers = self.script[len(self.calls) - 1] if len(self.calls) <= len(self.script) else []
        return answers[: len(prompts)] + [""] * (len(prompts) - len(answers))


def brief(age: str = "50대", n: int = 3, channel: str = "sns") -> Brief:
    return Brief.create(product="한우 선물세트", event="추석", age=age, channel=channel, n=n)


def test_mismatched_registers_are_regenerated() -> None:
    backend = ScriptedBackend(
        [
            ["정성을 담은 한우를 준비했습니다.", "이거 완전 맛있어!", "한가위 선물 고민 끝!"],
            ["귀한 분께 마음을 전하십시오.", "넉넉한 명절 되십시오."],
        ]
    )
    result = CopyWriter(backend).write(brief())
    assert [c.text for c in result.candidates] == [
        "정성을 담은 한우를 준비했습니다.",
        "한가위 선물 고민 끝!",
        "귀한 분께 마음을 전하십시오.",
    ]
    assert all(c.register_ok for c in result.candidates)
    assert result.rounds == 2
    assert len(backend.calls[1]) == 2 * 1  # a retry asks for twice the missing count
    # the retry is kept apart from every copy the first round wrote, in register or not
    assert backend.avoided[0] == []
    assert sorted(backend.avoided[1]) == sorted(
        ["정성을 담은 한우를 준비했습니다.", "이거 완전 맛있어!", "한가위 선물 고민 끝!"]
    )


def test_in_a_trial_the_second_side_is_kept_apart_from_the_first_sides_copies() -> None:
    champion = ["정성을 담은 한우를 준비했습니다.", "귀한 분께 마음을 전하십시오.", "넉넉한 명절 되십시오."]
    challenger = ["한가위에는 한우를 드리십시오.", "감사의 마음을 전하십시오."]
    backend = ScriptedBackend([champion, challenger])
    result = CopyWriter(backend).write(brief(n=5), seed=3, versions=["v1"] * 3 + ["v2"] * 2)
    assert backend.models == ["v1", "v2"]
    # the champion writes first and alone; the challenger's call names the champion's three copies
    assert backend.avoided == [[], champion]
    assert sorted(c.text for c in result.candidates) == sorted(champion + challenger)


def test_persistent_mismatch_is_kept_marked_and_flagged_after_bounded_retries() -> None:
    backend = ScriptedBackend([["완전 맛있어!"], ["진짜 좋아!", "같이 먹자!"], ["최고로 맛있지?"]])
    result = CopyWriter(backend, max_extra_rounds=2).write(brief(n=1))
    assert len(backend.calls) == 3
    [candidate] = result.candidates
    assert not candidate.register_ok
    assert candidate.flags == ["register_mismatch: 반말, 50대 expects 하십시오체"]


def test_compliance_and_length_flags_do_not_hide_a_candidate() -> None:
    backend = ScriptedBackend([["국내 최초로 선보입니다.", "한 " * 30 + "준비했습니다"]])
    result = CopyWriter(backend).write(brief(n=2, channel="banner"))
    texts = [c.text for c in result.candidates]
    assert texts[0] == "국내 최초로 선보입니다."
    assert result.candidates[0].flags[0].startswith("absolute_claim: '최초'")
    assert any(f.startswith("too_long") for f in result.candidates[1].flags)


def test_nothing_usable_is_a_clear_error() -> None:
    with pytest.raises(ModelSideError) as info:
        CopyWriter(ScriptedBackend([])).write(brief(n=2))
    assert "no usable text" in str(info.value)
    assert "다시" in info.value.user_message


def test_20s_prompts_alternate_polite_and_casual() -> None:
    backend = ScriptedBackend([["시원하게 입어요", "시원하게 입자", "여름엔 린넨이죠", "가볍게 가자"]])
    CopyWriter(backend).write(brief(age="20대", n=4))
    assert [p.split("|")[1] for p in backend.calls[0]] == ["polite", "casual", "polite", "casual"]


@pytest.mark.slow
@pytest.mark.parametrize(("age", "channel"), [("20대", "sns"), ("50대", "sms"), ("40대", "push")])
def test_real_starter_writes_korean_candidates_in_register(starter_dir: Path, age: str, channel: str) -> None:
    writer = CopyWriter(LocalEngine(starter_dir, version="starter"))
    result = writer.write(Brief.create(product="린넨 셔츠", event="여름 세일", age=age, channel=channel), seed=7)
    assert len(result.candidates) == 5
    assert len({c.text for c in result.candidates}) == 5
    for c in result.candidates:
        # Korean by the product's own rule (a short exclamation such as "출비!" counts, as it would for a person)
        assert hangul_share(c.text) >= MIN_HANGUL_SHARE and any("가" <= ch <= "힣" for ch in c.text)
        assert "\ufffd" not in c.text
        assert measure(c.message or c.text, channel) == c.length  # a framed channel: the whole message
    assert sum(c.register_ok for c in result.candidates) >= 3
