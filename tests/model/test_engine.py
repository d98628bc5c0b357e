"""The in-process engine on the real starter model: batching, seeds, adapters, and chat templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.errors import AdapterError, ModelUnavailableError
from model.writing.brief import Brief
from model.writing.engine import LocalEngine
from model.writing.prompt import plain_prompt, render_prompt

pytestmark = pytest.mark.slow
BRIEF = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대", channel="sns", n=3)


@pytest.fixture(scope="module")
def engine(starter_dir: Path) -> LocalEngine:
    return LocalEngine(starter_dir, version="starter")


def test_one_batched_call_returns_one_completion_per_prompt(engine: LocalEngine) -> None:
    prompts = [engine.prompt_for(BRIEF, r) for r in ("polite", "casual", "polite")]
    texts = engine.complete(prompts, max_tokens=40, temperature=0.9, top_p=0.95, seed=1, stop=["<제품>"])
    assert len(texts) == 3
    assert all(isinstance(t, str) for t in texts)
    assert any(any("가" <= ch <= "힣" for ch in t) for t in texts)


def test_a_seed_makes_sampling_repeatable(engine: LocalEngine) -> None:
    prompt = [engine.prompt_for(BRIEF, "polite")] * 2
    first = engine.complete(prompt, max_tokens=30, temperature=0.9, top_p=0.95, seed=5, stop=None)
    again = engine.complete(prompt, max_tokens=30, temperature=0.9, top_p=0.95, seed=5, stop=None)
    assert first == again


def test_plain_template_without_a_chat_template(engine: LocalEngine) -> None:
    assert engine.prompt_for(BRIEF, "polite") == plain_prompt(BRIEF, "polite")
    assert plain_prompt(BRIEF, "casual") == "<제품>린넨 셔츠<행사>여름 세일<20대><sns><casual><카피>"


def test_chat_template_is_used_when_the_tokenizer_has_one(engine: LocalEngine) -> None:
    engine.tokenizer.chat_template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"
    try:
        prompt = render_prompt(BRIEF, "polite", engine.tokenizer)
    finally:
        engine.tokenizer.chat_template = None
    assert prompt.startswith("[system] 당신은 한국 백화점의 광고 카피라이터입니다.")
    assert "제품: 린넨 셔츠" in prompt and "말투: 해요체로 끝맺으세요" in prompt
    assert prompt.endswith("[assistant] ")


def test_a_lora_adapter_loads_and_names_the_version(starter_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(starter_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    peft_model.save_pretrained(tmp_path / "v0001")
    engine = LocalEngine(starter_dir, adapter_path=tmp_path / "v0001")
    assert engine.version == "v0001"
    [text] = engine.complete(
        [plain_prompt(BRIEF, "polite")], max_tokens=20, temperature=0.8, top_p=0.9, seed=1, stop=None
    )
    assert isinstance(text, str)


def test_a_corrupt_adapter_is_refused_with_a_clear_message(starter_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(AdapterError, match=r"no adapter_config\.json"):
        LocalEngine(starter_dir, adapter_path=broken)
    (broken / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterError, match="could not be loaded"):
        LocalEngine(starter_dir, adapter_path=broken)


def test_a_missing_base_model_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="COPYBOT_BASE_MODEL"):
        LocalEngine(tmp_path / "no-such-model")


def _random_adapter(starter_dir: Path, folder: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(starter_dir)
    # init_lora_weights=False: both LoRA matrices random, so the adapter really changes what the model writes
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=64, target_modules="all-linear", init_lora_weights=False))
    model.save_pretrained(folder)
    return folder


def test_two_adapters_are_held_at_once_and_chosen_per_call(starter_dir: Path, tmp_path: Path) -> None:
    a = _random_adapter(starter_dir, tmp_path / "a", 1)
    b = _random_adapter(starter_dir, tmp_path / "b", 2)
    prompts = [plain_prompt(BRIEF, "polite")] * 3

    def write(engine: LocalEngine, model: str | None = None) -> list[str]:
        return engine.complete(prompts, max_tokens=24, temperature=0.9, top_p=0.95, seed=4, model=model)

    alone_a = write(LocalEngine(starter_dir, adapter_path=a, version="v0001"))
    base = LocalEngine(starter_dir, version="starter")
    bare = write(base)
    engine = LocalEngine(starter_dir, adapter_path=b, version="eval")  # a name PEFT itself could not take
    alone_b = write(engine)
    engine.add_adapter(a, "v0001")
    assert len({tuple(alone_a), tuple(alone_b), tuple(bare)}) == 3
    assert write(engine, "v0001") == alone_a  # the challenger, by name
    assert write(engine) == alone_b  # the default is untouched
    assert write(engine, "base:" + starter_dir.name) == bare  # the bare base model, by its name
    assert engine.version == "eval" and sorted(engine.loaded_adapters()) == ["eval", "v0001"]
    with pytest.raises(AdapterError, match="not loaded here"):
        write(engine, "v0009")
    engine.use_adapter(None, "starter")  # back to the bare base as the default; the adapters stay loaded
    assert write(engine) == bare and write(engine, "v0001") == alone_a


def test_writing_a_batch_never_changes_the_tokenizers_shared_padding(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # padding and truncation are settings on the one tokenizer every thread shares: were the engine to ask for
    # padding, a prompt rendered on a pool thread meanwhile could reset it and the batch would come back unpadded
    # (seen: "Unable to create tensor" under 3 threads), so prompts of different lengths are padded by the engine
    from transformers.tokenization_utils_base import PaddingStrategy, TruncationStrategy

    asked: list[tuple[object, object]] = []
    original = engine.tokenizer.set_truncation_and_padding

    def spy(**settings: object) -> None:
        asked.append((settings["padding_strategy"], settings["truncation_strategy"]))
        original(**settings)

    monkeypatch.setattr(engine.tokenizer, "set_truncation_and_padding", spy)
    short = engine.prompt_for(Brief.create(product="셔츠", event="", age="20대"), "polite")
    brief = Brief.create(product="린넨 셔츠와 반바지 세트", event="여름 정기 세일", age="20대")
    long = engine.prompt_for(brief, "polite")
    alone = engine.complete([short], max_tokens=12, temperature=0.8, seed=3)
    together = engine.complete([long, short], max_tokens=12, temperature=0.8, seed=3)
    assert asked and set(asked) == {(PaddingStrategy.DO_NOT_PAD, TruncationStrategy.DO_NOT_TRUNCATE)}
    # left-padded beside a longer prompt, the short one writes what it writes alone (row 1 under the same seed
    # draws from another stream, so compare the short prompt's row with a batch that puts it first)
    assert engine.complete([short, long], max_tokens=12, temperature=0.8, seed=3)[0] == alone[0]
    assert len(together) == 2 and all(together)
