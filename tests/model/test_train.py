"""Training a LoRA adapter on the real starter model with TRL: SFT then DPO, or KTO without pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.training.dataset import DatasetConfig, build_dataset
from model.training.feedback import RatedCandidate, RatedRequest
from model.training.registry import AdapterRegistry
from model.training.train import TrainConfig, train_adapter
from model.writing.brief import Brief
from model.writing.engine import LocalEngine
from model.writing.prompt import plain_prompt

pytestmark = pytest.mark.slow
BRIEF = {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "30대", "channel": "sns"}
CORPUS = [{"text": f"여름 준비는 지금부터 해요 {i}", "product": "셔츠", "event": "세일", "age_group": "30대",
           "channel": "sns", "register_detected": "polite"} for i in range(20)]  # fmt: skip
FAST = TrainConfig(epochs=1, batch_size=8, preference_epochs=1)


def _requests(with_pairs: bool) -> list[RatedRequest]:
    out = []
    for i in range(8):
        liked = RatedCandidate(f"시원한 린넨 셔츠 {i}% 할인해요", "polite", up=2)
        other = RatedCandidate(f"그냥 그런 카피예요 {i}", "polite", down=1 if with_pairs else 0)
        out.append(RatedRequest(i, f"2026-11-{i + 1:02d}", BRIEF, (liked, other) if with_pairs else (liked,)))
    return out


def test_sft_then_dpo_saves_a_servable_adapter(starter_dir: Path, tmp_path: Path) -> None:
    data = build_dataset(_requests(with_pairs=True), CORPUS, CORPUS[:2], DatasetConfig(min_liked=1, min_requests=1))
    model, result = train_adapter(starter_dir, data, config=FAST)
    assert result.preference == "dpo" and result.sft_sampling == "random"  # the starter: its recipe's batches
    assert result.train_losses and result.preference_losses and result.eval_losses
    registry = AdapterRegistry(tmp_path / "adapters")
    saved = registry.save("v0001", model.save_pretrained, {"parent": "", "train": result.preference})
    config = json.loads((saved.path / "adapter_config.json").read_text())
    assert not config.get("modules_to_save") and config["r"] == 16
    assert not (saved.path / "ref").exists()
    engine = LocalEngine(starter_dir, adapter_path=saved.path)
    prompt = plain_prompt(Brief(**BRIEF), "polite")
    [text] = engine.complete([prompt], max_tokens=20, temperature=0.8, top_p=0.9, seed=1, stop=None)
    assert isinstance(text, str)


def test_kto_runs_when_there_are_no_pairs_and_training_continues_from_a_parent(
    starter_dir: Path, tmp_path: Path
) -> None:
    requests = _requests(with_pairs=False)
    disliked = RatedRequest(99, "2026-10-01", BRIEF, (RatedCandidate("별로예요 정말", "polite", down=2),))
    data = build_dataset(
        [*requests, disliked], CORPUS, CORPUS[:2], DatasetConfig(min_liked=1, min_requests=1, heldout_share=0.1)
    )
    assert data.pairs == [] and {e["label"] for e in data.kto} == {True, False}
    model, result = train_adapter(starter_dir, data, config=FAST)
    assert result.preference == "kto"
    registry = AdapterRegistry(tmp_path / "adapters")
    parent = registry.save("v0001", model.save_pretrained, {})
    child, again = train_adapter(
        starter_dir, data, config=TrainConfig(epochs=1, preference="none"), parent_adapter=parent.path
    )
    assert again.preference == "none" and again.train_losses
    registry.save("v0002", child.save_pretrained, {"parent": "v0001"})
    assert [v.version for v in registry.versions()] == ["v0001", "v0002"]


def test_sft_batches_by_length_is_a_choice_and_a_wrong_name_is_refused(starter_dir: Path) -> None:
    from transformers import AutoTokenizer

    from model.training.train import TrainConfig, sft_sampling

    tokenizer = AutoTokenizer.from_pretrained(str(starter_dir))
    assert sft_sampling(TrainConfig(), tokenizer) == "random"
    assert sft_sampling(TrainConfig(sft_batches="by_length"), tokenizer) == "group_by_length"
    with pytest.raises(ValueError, match="sft_batches must be one of"):
        TrainConfig(sft_batches="sorted")
