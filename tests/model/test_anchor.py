"""The base-model anchor of the SFT stage (model/training/anchor.py), on the real starter model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from model.training.anchor import anchored_sft_trainer
from model.training.dataset import DatasetConfig, build_dataset, render_dataset
from model.training.feedback import RatedCandidate, RatedRequest
from model.training.train import TrainConfig, train_adapter
from model.writing.brief import Brief
from model.writing.prompt import plain_prompt, prompt_ids

pytestmark = pytest.mark.slow
BRIEF = {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "20대", "channel": "sns"}
LIKED = "린넨 셔츠 20% 할인이에요 ✨"


def _peft_model(starter_dir: Path, *, random_adapter: bool) -> tuple[Any, Any]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(starter_dir))
    tokenizer.padding_side = "right"
    # init_lora_weights=False: a random adapter that visibly changes the model; True: B = 0, identical to the base
    lora = LoraConfig(r=4, target_modules="all-linear", lora_dropout=0.0, init_lora_weights=not random_adapter,
                      task_type="CAUSAL_LM")  # fmt: skip
    return get_peft_model(AutoModelForCausalLM.from_pretrained(str(starter_dir)), lora), tokenizer


def _losses(starter_dir: Path, tmp_path: Path, weights: list[float], *, random_adapter: bool) -> list[float]:
    """The training loss of one batch under each anchor weight (0: TRL's own loss)."""
    model, tokenizer = _peft_model(starter_dir, random_adapter=random_adapter)
    return _batch_losses(model, tokenizer, tmp_path, weights)


def _batch_losses(model: Any, tokenizer: Any, tmp_path: Path, weights: list[float]) -> list[float]:
    from datasets import Dataset
    from trl import SFTConfig

    rows = [{"prompt": plain_prompt(Brief(**BRIEF), "polite"), "completion": f"{LIKED} {i}"} for i in range(4)]
    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, use_cpu=True, bf16=False,
                     report_to=[], completion_only_loss=True, max_length=64)  # fmt: skip
    out = []
    for weight in weights:
        trainer = anchored_sft_trainer(weight, model=model, args=args, train_dataset=Dataset.from_list(rows),
                                       processing_class=tokenizer)  # fmt: skip
        batch = next(iter(trainer.get_train_dataloader()))
        model.train()
        out.append(float(trainer.compute_loss(model, dict(batch))))
    return out


def test_an_adapter_equal_to_the_base_adds_nothing_to_the_loss(starter_dir: Path, tmp_path: Path) -> None:
    plain, anchored = _losses(starter_dir, tmp_path, [0.0, 1.0], random_adapter=False)
    assert plain > 0
    assert anchored == pytest.approx(plain, abs=1e-5)  # KL(base || base) = 0, and the same normalisation as TRL


def test_the_anchor_adds_weight_times_a_positive_divergence(starter_dir: Path, tmp_path: Path) -> None:
    plain, one, two = _losses(starter_dir, tmp_path, [0.0, 1.0, 2.0], random_adapter=True)
    kl = one - plain
    assert kl > 0.01
    assert two - plain == pytest.approx(2 * kl, rel=1e-4)


def _divergence_and_entropy(model: Any, tokenizer: Any, prompts: list[str], texts: list[str]) -> tuple[float, float]:
    """Mean KL(base || model) and mean entropy of the model's next-token distribution over each text's tokens."""
    import torch

    kls, entropies = [], []
    with torch.no_grad():
        for prompt, text in zip(prompts, texts, strict=True):
            ids = tokenizer(prompt + text, return_tensors="pt")  # as training and serving tokenize (with <s>)
            start = len(prompt_ids(tokenizer, prompt)) - 1
            logp = model(**ids).logits[0, start:-1].log_softmax(-1)
            with model.disable_adapter():
                base = model(**ids).logits[0, start:-1].log_softmax(-1)
            kls.append(float((base.exp() * (base - logp)).sum(-1).mean()))
            entropies.append(float(-(logp.exp() * logp).sum(-1).mean()))
    return sum(kls) / len(kls), sum(entropies) / len(entropies)


def _state(model: Any, adapter: str) -> dict[str, Any]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if f".{adapter}." in n}


def test_a_retrain_can_anchor_to_the_adapter_it_starts_from(starter_dir: Path, tmp_path: Path) -> None:
    """anchor_to="start" (a pretrained base's recipe): the anchor is the parent adapter, loaded again frozen, so it
    adds nothing at the first step; anchor_to="base" measures the same adapter against the bare base."""
    from model.training.anchor import ANCHOR_ADAPTER
    from model.training.train import _load_trainable

    parent = tmp_path / "parent"
    _peft_model(starter_dir, random_adapter=True)[0].save_pretrained(str(parent))
    requests = [
        RatedRequest(i, f"2026-11-{i + 1:02d}", BRIEF, (RatedCandidate(LIKED, "polite", up=2),)) for i in range(6)
    ]
    data = build_dataset(requests, [], [], DatasetConfig(min_liked=1, min_requests=1, replay_ratio=0.0))
    added = {}
    for anchor_to in ("start", "base"):
        model, tokenizer, _ = _load_trainable(starter_dir, parent, TrainConfig(anchor_to=anchor_to), data)
        assert (ANCHOR_ADAPTER in model.peft_config) == (anchor_to == "start")
        plain, anchored = _batch_losses(model, tokenizer, tmp_path, [0.0, 1.0])
        added[anchor_to] = anchored - plain
        assert model.active_adapter == "default"
    assert added["start"] == pytest.approx(0.0, abs=1e-5)
    assert added["base"] > 0.01  # the random parent is far from the bare base

    config = TrainConfig(anchor_to="start", epochs=1, min_steps=3, learning_rate=5e-3, preference="none")
    model, _ = train_adapter(starter_dir, data, config=config, parent_adapter=parent)
    saved = _peft_model(starter_dir, random_adapter=False)[0]
    saved.load_adapter(str(parent), adapter_name="parent")
    parent_weights = {n.replace(".parent.", f".{ANCHOR_ADAPTER}."): p for n, p in _state(saved, "parent").items()}
    anchor_weights, trained = _state(model, ANCHOR_ADAPTER), _state(model, "default")
    assert anchor_weights.keys() == parent_weights.keys()
    assert all(torch_equal(anchor_weights[n], parent_weights[n]) for n in anchor_weights)  # the anchor never moved
    moved = [
        n for n in trained if not torch_equal(trained[n], parent_weights[n.replace(".default.", f".{ANCHOR_ADAPTER}.")])
    ]
    assert moved  # the trained adapter did


def torch_equal(a: Any, b: Any) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_an_anchored_adapter_learns_the_copy_but_stays_closer_to_the_base(starter_dir: Path) -> None:
    """The same narrow feedback (one liked copy, over and over) with and without the anchor."""
    from transformers import AutoTokenizer

    requests = [RatedRequest(i, f"2026-11-{i + 1:02d}", BRIEF, (RatedCandidate(LIKED, "polite", up=2),))
                for i in range(12)]  # fmt: skip
    corpus = [{"text": f"새 시즌 니트를 만나 보세요 {i}", "product": "니트", "event": "시즌", "age_group": "30대",
               "channel": "sns", "register_detected": "polite"} for i in range(12)]  # fmt: skip
    data = build_dataset(requests, corpus, corpus[:2], DatasetConfig(min_liked=1, min_requests=1, replay_ratio=0.0))
    # copies the feedback never mentions: how does the adapter write everything else?
    prompts = [plain_prompt(Brief.create(product=p, event="세일", age="30대", channel="sns"), "polite")
               for p in ("니트", "운동화", "향수")]  # fmt: skip
    texts = [
        "가을 니트 신상, 지금 만나 보세요",
        "운동화 특가가 시작됐어요 확인해 보세요",
        "향수 선물 세트 준비했습니다",
    ]
    tokenizer = AutoTokenizer.from_pretrained(str(starter_dir))
    results = {}
    for weight in (0.0, 3.0):
        config = TrainConfig(epochs=3, learning_rate=5e-3, preference="none", anchor_weight=weight)
        model, _ = train_adapter(starter_dir, data, config=config)
        model.eval()
        results[weight] = (*_divergence_and_entropy(model, tokenizer, prompts, texts), *_copy_nll(model, tokenizer))
    (kl_plain, entropy_plain, nll_plain, base_nll), (kl_anchor, entropy_anchor, nll_anchor, _) = results.values()
    assert kl_anchor < kl_plain / 2  # measured: 0.04 against 0.13
    assert entropy_anchor > entropy_plain
    # both learned the liked copy: its loss fell well below the base model's
    assert nll_plain < base_nll - 0.5 and nll_anchor < base_nll - 0.5


def _copy_nll(model: Any, tokenizer: Any) -> tuple[float, float]:
    """Mean negative log-likelihood per token of the liked copy after its prompt: (the adapter's, the base's)."""
    import torch

    context = prompt_ids(tokenizer, plain_prompt(Brief(**BRIEF), "polite"))
    ids = torch.tensor([context + tokenizer(LIKED, add_special_tokens=False)["input_ids"]])
    targets = ids[0, 1:].unsqueeze(-1)

    def nll() -> float:
        logp = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
        return float(-logp.gather(-1, targets).squeeze(-1)[len(context) - 1 :].mean())

    with torch.no_grad():
        adapted = nll()
        with model.disable_adapter():
            return adapted, nll()


def test_the_weight_and_the_target_are_checked() -> None:
    assert TrainConfig().anchor_weight == 1.0  # on by default: it is what keeps distinct-2 from falling
    assert TrainConfig(anchor_weight=0).anchor_weight == 0
    with pytest.raises(ValueError, match="anchor_weight"):
        TrainConfig(anchor_weight=-0.5)
    assert TrainConfig().anchor_to == "base"  # the starter's base was trained on the corpus
    with pytest.raises(ValueError, match="anchor_to"):
        TrainConfig(anchor_to="parent")


def test_the_replay_batches_mask_exactly_the_copy_tokens(starter_dir: Path) -> None:
    from transformers import AutoTokenizer

    from model.training.anchor import _replay_batches

    tokenizer = AutoTokenizer.from_pretrained(str(starter_dir))
    replay = [
        {"prompt": plain_prompt(Brief(**BRIEF), "polite"), "completion": c} for c in ("여름 특가예요", "시원해요")
    ]
    batch = next(_replay_batches(tokenizer, replay, 2, seed=1))
    for row, mask, attention in zip(batch["input_ids"], batch["mask"], batch["attention_mask"], strict=True):
        real = int(attention.sum())
        predicted = row[1:][mask]  # the tokens the masked positions predict
        text = tokenizer.decode(predicted[:-1])
        assert text in ("여름 특가예요", "시원해요") and int(predicted[-1]) == tokenizer.eos_token_id
        assert not mask[real - 1 :].any()  # nothing past the end of the row


def test_the_replay_anchor_keeps_dpo_from_forgetting_the_corpus(starter_dir: Path) -> None:
    """A few pairs taken round many times: without the anchor the corpus the pairs never show drifts further."""
    from transformers import AutoTokenizer

    from model.training.evaluate import pair_margins, validation_loss

    chosen, rejected = "린넨 셔츠 20% 할인이에요", "셔츠 그냥 보세요"
    requests = [
        RatedRequest(
            i,
            f"2026-11-{i + 1:02d}",
            BRIEF,
            (RatedCandidate(chosen, "polite", win=1), RatedCandidate(rejected, "polite", down=1)),
        )
        for i in range(6)
    ]
    corpus = [{"text": t, "product": p, "event": "시즌", "age_group": "30대", "channel": "sns",
               "register_detected": "polite"} for t, p in [("새 시즌 니트를 만나 보세요", "니트"),
               ("운동화 특가가 시작됐어요", "운동화"), ("향수 선물 세트를 준비했어요", "향수"),
               ("가볍게 들기 좋은 가방이에요", "가방")] * 4]  # fmt: skip
    data = build_dataset(requests, corpus, corpus[:4], DatasetConfig(min_liked=1, min_requests=1), force=True)
    assert data.replay and all(e in data.sft for e in data.replay)
    results = {}
    for weight in (0.0, 3.0):
        config = TrainConfig(epochs=1, min_steps=1, min_preference_steps=40, preference="dpo",
                             preference_learning_rate=2e-3, anchor_weight=0.0, preference_anchor_weight=weight)  # fmt: skip
        model, result = train_adapter(starter_dir, data, config=config)
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(str(starter_dir))
        scored = render_dataset(data, tokenizer)
        margin = pair_margins(model, tokenizer, scored.heldout_pairs or scored.pairs)[0][1]
        results[weight] = (validation_loss(model, tokenizer, scored.heldout_corpus), margin, result.preference)
    (plain_loss, plain_margin, mode), (anchored_loss, anchored_margin, _) = results.values()
    assert mode == "dpo"
    assert anchored_loss < plain_loss  # the corpus it never saw in the pairs moved less
    assert plain_margin > 0 and anchored_margin > 0  # both learned to prefer the chosen copy


def test_small_data_is_taken_round_more_epochs() -> None:
    from model.training.train import _epochs

    config = TrainConfig(batch_size=8)
    assert _epochs(3, 30, 46, config) == 5  # 6 steps an epoch: 5 epochs reach 30 steps
    assert _epochs(3, 30, 400, config) == 3  # 50 steps an epoch: the configured 3 are plenty
    assert _epochs(3, 0, 5, config) == 3
