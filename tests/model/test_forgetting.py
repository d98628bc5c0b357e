"""The forgetting budget (issue 37) on the starter, a small Llama trained on the corpus (so there is something to
forget, unlike a random model): a run deliberately over-trained (a huge learning rate on copy unlike the corpus, no
anchor) stops before the corpus loss passes the budget and keeps the adapter of the last check within it; the same
run without the budget ends far past it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from model.training.dataset import DatasetConfig, build_dataset, render_dataset
from model.training.evaluate import validation_loss
from model.training.feedback import RatedCandidate, RatedRequest
from model.training.train import TrainConfig, train_adapter

pytestmark = pytest.mark.slow
BRIEF = {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "30대", "channel": "sns"}
CORPUS = [
    {
        "text": f"여름 준비는 지금부터 시원하게 해요 {i}",
        "product": "셔츠",
        "event": "세일",
        "age_group": "30대",
        "channel": "sns",
        "register_detected": "polite",
    }
    for i in range(24)
]
# liked copy nothing like the corpus: learning it at a huge rate can only make the corpus less likely
OVERTRAIN = TrainConfig(
    learning_rate=0.05,
    warmup_ratio=0.0,
    lr_scheduler="constant",
    epochs=40,
    min_steps=40,
    batch_size=4,
    preference="none",
    anchor_weight=0.0,
    forgetting_budget=0.08,
    forgetting_checks=20,
    continue_from_active=False,
)


def _data() -> object:
    requests = [
        RatedRequest(i, f"2026-11-{i + 1:02d}", BRIEF, (RatedCandidate(f"zzq xkcd qqq zzq {i}", "polite", up=2),))
        for i in range(8)
    ]
    return build_dataset(requests, CORPUS[:12], CORPUS[12:], DatasetConfig(min_liked=1, min_requests=1))


def test_an_over_trained_run_stops_within_the_budget_and_keeps_the_last_good_check(starter_dir: Path) -> None:
    from transformers import AutoTokenizer

    data = _data()
    tokenizer = AutoTokenizer.from_pretrained(str(starter_dir))
    corpus = render_dataset(data, tokenizer).heldout_corpus  # type: ignore[arg-type]
    assert corpus

    model, result = train_adapter(starter_dir, data, config=OVERTRAIN)  # type: ignore[arg-type]
    reference = result.corpus_checks[0][2]
    assert result.stopped.startswith("SFT stopped at step") and "kept step" in result.stopped
    assert result.corpus_checks[-1][2] > reference + 0.08  # the check that tripped it
    assert validation_loss(model, tokenizer, corpus) <= reference + 0.08 + 1e-3  # the adapter kept is within

    unbounded, free = train_adapter(starter_dir, data, config=replace(OVERTRAIN, forgetting_budget=0.0))  # type: ignore[arg-type]
    assert free.stopped == "" and free.corpus_checks == []
    assert validation_loss(unbounded, tokenizer, corpus) > reference + 0.3  # what the budget saved us from
