"""Brand voice in the prompt: which corpus copies are shown for a brief, on a small exact corpus, and how the
chat prompt shows them (with the real Qwen3 tokenizer)."""

from __future__ import annotations

from typing import Any

import pytest

from model.training.dataset import build_dataset, map_briefs, render_dataset
from model.writing.brief import Brief
from model.writing.prompt import VOICE_HEADING, render_prompt
from model.writing.voice import BrandVoice, brief_with_voice
from tests.conftest import REPO
from tests.real_tokenizers import TOKENIZERS, tokenizer_folder


def row(text: str, score: float, *, product: str = "린넨 셔츠", category: str = "의류", age: str = "20대",
        channel: str = "sns", event: str = "여름 세일") -> dict[str, Any]:  # fmt: skip
    return {"text": text, "score": score, "score_measure": "ctr", "product": product, "category": category,
            "age_group": age, "channel": channel, "event": event, "register_detected": "polite"}  # fmt: skip


# 8 scored 20대 SNS copies of the clothing category (a group of 8: standings 0, 1/7, … 1); the top quarter is the
# copies with standing >= 0.75: scores 7 and 8 (6/7 and 1). A copy of another channel, alone in its group (no
# standing), and one of another category, ranked among all 9 20대 SNS copies (its category has too few): the best.
CORPUS = [row(f"의류 카피 {i}", float(i), product=f"셔츠 {i}") for i in range(1, 9)] + [
    row("문자 카피", 9.0, channel="sms"),
    row("화장품 카피", 9.0, category="화장품", product="수분 크림"),
]


def test_the_top_quarter_of_the_same_channel_and_age_group_best_first() -> None:
    voice = BrandVoice(CORPUS, k=2)
    brief = {"product": "셔츠 1", "event": "가을 세일", "age_group": "20대", "channel": "sns"}
    assert voice.examples_for(brief) == ("의류 카피 8", "의류 카피 7")  # 셔츠 1 is 의류 in the corpus
    unknown = {**brief, "product": "린넨 바지"}  # a product the corpus does not know: any category, best first
    assert voice.examples_for(unknown) == ("의류 카피 8", "화장품 카피")
    assert voice.examples_for({**brief, "age_group": "50대"}) == ()  # no copy for that audience
    assert voice.examples_for({**brief, "channel": "sms"}) == ()  # one copy alone has no group: no standing
    assert BrandVoice(CORPUS, k=0).examples_for(brief) == ()


def test_the_briefs_own_copies_are_never_shown_and_its_category_narrows_when_it_can() -> None:
    voice = BrandVoice([*CORPUS, *[row(f"크림 카피 {i}", 10.0 + i, category="화장품", product="수분 크림")
                                   for i in range(8)]], k=1)  # fmt: skip
    own = {"product": "셔츠 8", "event": "여름 세일", "age_group": "20대", "channel": "sns"}
    assert voice.examples_for(own) == ("의류 카피 7",)  # its own best copy is left out
    # 수분 크림 is in the 화장품 category, which has a top copy for the brief: shown before a better-scored other
    cream = {"product": "수분 크림", "event": "신상품", "age_group": "20대", "channel": "sns"}
    assert voice.examples_for(cream)[0].startswith("크림 카피")
    with pytest.raises(ValueError, match="between 0 and 10"):
        BrandVoice(CORPUS, k=11)


def test_every_example_of_a_dataset_carries_its_briefs_examples() -> None:
    voice = BrandVoice(CORPUS, k=2)
    data = map_briefs(build_dataset([], CORPUS, CORPUS[:2], force=True), lambda b: brief_with_voice(b, voice))
    for e in data.sft + data.heldout_corpus:
        own = e["completion"]
        assert own not in e["brief"].get("examples", []), "a copy never sees itself in its prompt"
    shown = {tuple(e["brief"].get("examples", ())) for e in data.sft if e["brief"]["channel"] == "sns"}
    assert ("의류 카피 8", "의류 카피 7") in shown


def test_the_chat_prompt_shows_the_examples_and_base_model_prompts_do_not() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder(TOKENIZERS["qwen3"], REPO / ".cache"))
    brief = Brief.create(product="린넨 바지", event="가을 세일", age="20대", channel="sns")
    with_examples = Brief(**{**brief.__dict__, "examples": ("의류 카피 8", "의류 카피 7")})
    chat = render_prompt(with_examples, "polite", tokenizer)
    assert f"{VOICE_HEADING}\n- 의류 카피 8\n- 의류 카피 7<|im_end|>" in chat  # closing the user message
    assert VOICE_HEADING not in render_prompt(brief, "polite", tokenizer)
    assert render_prompt(with_examples, "polite", None) == render_prompt(brief, "polite", None)  # the starter's
    voice = BrandVoice(CORPUS, k=2)
    voiced = map_briefs(build_dataset([], CORPUS, [], force=True), lambda b: brief_with_voice(b, voice))
    rendered = render_dataset(voiced, tokenizer)
    assert any("- 의류 카피 8" in e["prompt"] for e in rendered.sft)
