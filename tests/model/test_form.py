"""Only complete copies are shown (model/writing/form.py): each rule on its own examples, none on human copy, and
the writer writing such texts again and never showing them."""

from __future__ import annotations

import pytest

from model.errors import ModelSideError
from model.starter.corpus import load_corpus
from model.writing.form import FAULTS, form_faults, form_faults_many
from model.writing.writer import CopyWriter
from tests.model.test_writer import ScriptedBackend, brief

# (text, the rules it breaks): every example the module's docstring gives, both ways
EXAMPLES = [
    ("상품명: 100% 폴리 에코백 재질: 면", ["label_list"]),
    ("채점: 인기: 명예: 가격:", ["label_list"]),
    ("<사양> 하드웨어 가죽 가격: 100000원", ["label_list"]),
    ("오늘의 특가: 린넨 셔츠 3만 원대", []),
    ("여름 세일을 시작해요\n▶ 기간: 7월 1일~7월 14일\n▶ 혜택: 20% 할인", []),
    ("머리 어깨 머리 어깨 머리 어깨 무릎 발", ["loop"]),
    ("(광고글) 하위위 제품, 청소기, 40리터짜기, 40리터짜기, 40리터짜기, 45리터짜기, …", ["loop"]),
    ("추석 연휴 한방샴푸, 한방샴푸 21% 할인 추석 선물전 연휴 한방샴푸, 추석 연휴 한방샴푸", ["loop"]),
    ("손주 기억에 남을 선물, 한 땀 한 땀 수놓은 한복을 준비했습니다.", []),
    ("크리스마스엔 포근한 담요를 덮으십시오. 크리스마스 기획전에서 만나십시오. #크리스마스 #무릎담요", []),
    (
        "린넨 셔츠가 돌아왔습니다. 올여름 린넨 셔츠 기획전에서 시원한 소재와 넉넉한 품을 확인하시고, "
        "여름 내내 입기 좋은 색을 골라 보십시오. 이번 주에는 린넨 셔츠 두 벌 이상 구매하시면 배송비가 없습니다.",
        [],
    ),
    ("시원한 린넨 셔츠를", ["cut_off"]),
    ("올여름 가장 시원한", ["cut_off"]),
    ("지금 바로 만나보", ["cut_off"]),
    ("교복에 딱, 맨얼굴 같은 톤업 크림", []),
    ("블프 한정 립 오일 1+1, 딱 3일", []),
    ("블프 특가 마사지 건, 오늘 자정까지", []),
    ("여름 세일, 지금 바로!", []),
    ("더 가볍게, 더 시원하게", []),
    ("떠나요 제주로", []),
    ("#린넨 #여름세일", ["no_ending"]),
    ("100% !!!", ["no_ending"]),
    ("", ["no_ending"]),
]


@pytest.mark.parametrize(("text", "faults"), EXAMPLES)
def test_each_rule_on_its_examples(text: str, faults: list[str]) -> None:
    assert form_faults(text) == faults
    assert set(faults) <= set(FAULTS)


def test_no_rule_fires_on_any_human_written_copy_of_the_corpus() -> None:
    texts = [row["text"] for row in load_corpus()]
    assert len(texts) > 900
    assert [(t, f) for t, f in zip(texts, form_faults_many(texts), strict=True) if f] == []


def test_the_writer_writes_them_again_never_shows_them_and_counts_them() -> None:
    backend = ScriptedBackend(
        [
            ["상품명: 한우 등심 중량: 1kg", "정성을 담은 한우를 준비했습니다.", "명절 선물로 귀한 한우를"],
            ["한우 한우 한우 선물", "넉넉한 명절 되십시오.", "한가위 선물 고민 끝!"],
        ]
    )
    result = CopyWriter(backend).write(brief())
    assert [c.text for c in result.candidates] == [
        "정성을 담은 한우를 준비했습니다.",
        "넉넉한 명절 되십시오.",
        "한가위 선물 고민 끝!",
    ]
    assert result.rounds == 2 and len(backend.calls[1]) == 2 * 2  # two texts were not copy: twice that retried
    assert result.malformed == [["label_list"], ["cut_off"], ["loop"]]


def test_when_nothing_but_malformed_text_comes_back_nothing_is_shown() -> None:
    backend = ScriptedBackend([["채점: 인기: 명예: 가격:"]] * 3)
    with pytest.raises(ModelSideError, match="no usable text") as caught:
        CopyWriter(backend).write(brief(n=1))
    assert "다시 요청해 주세요" in caught.value.user_message
