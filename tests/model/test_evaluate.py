"""Evaluation metrics on the real starter model, and the promotion gate."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from model.engine import LocalEngine
from model.evaluate import (
    GateConfig,
    Metrics,
    corpus_spans,
    evaluate_engine,
    gate,
    preference_accuracy,
    validation_loss,
)

BASE = Metrics(val_loss=3.0, preference_accuracy=0.5, register_match=0.9, distinct_2=0.8, copied_share=0.1,
               compliance_flag_rate=0.05, length_ok=1.0)  # fmt: skip


def test_gate_promotes_only_a_measurably_better_adapter() -> None:
    better = Metrics(**{**BASE.as_dict(), "val_loss": 2.8, "preference_accuracy": 0.7})
    decision = gate(BASE, better)
    assert decision.promote and all(r.startswith("ok: ") for r in decision.reasons)
    assert "preference accuracy 0.500 -> 0.700" in decision.reasons[0]


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"preference_accuracy": 0.5}, "preference accuracy"),
        ({"val_loss": 3.1}, "validation loss"),
        ({"register_match": 0.8}, "register match"),
        ({"compliance_flag_rate": 0.2}, "compliance-flag rate"),
    ],
)
def test_gate_keeps_the_active_adapter_and_says_why(change: dict, failing: str) -> None:
    candidate = Metrics(**{**BASE.as_dict(), "val_loss": 2.8, "preference_accuracy": 0.7, **change})
    decision = gate(BASE, candidate)
    assert not decision.promote
    assert [r for r in decision.reasons if r.startswith("not met")] == [r for r in decision.reasons if failing in r]


def test_gate_tolerances_are_configurable() -> None:
    slightly = Metrics(**{**BASE.as_dict(), "val_loss": 2.99, "preference_accuracy": 0.52})
    assert gate(BASE, slightly).promote
    assert not gate(BASE, slightly, GateConfig(min_loss_drop=0.05)).promote


@pytest.mark.slow
def test_metrics_on_the_starter_model(starter_dir: Path) -> None:
    engine = LocalEngine(starter_dir, version="starter")
    good = {
        "prompt": "<제품>린넨 셔츠<행사>여름 세일<30대><sns><polite><카피>",
        "completion": "여름 세일, 지금 만나 보세요",
    }
    loss = validation_loss(engine.model, engine.tokenizer, [good])
    assert 0 < loss < 10
    pairs = [{"prompt": good["prompt"], "chosen": good["completion"], "rejected": "ㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋ"}]
    assert preference_accuracy(engine.model, engine.tokenizer, pairs) == 1.0
    assert math.isnan(preference_accuracy(engine.model, engine.tokenizer, []))
    spans = corpus_spans(["여름 세일, 지금 만나 보세요 린넨 셔츠"])
    metrics = evaluate_engine(engine, heldout_sft=[good], heldout_pairs=pairs, spans=spans,
                              briefs=[{"product": "린넨 셔츠", "event": "여름 세일", "channel": "sms"}])  # fmt: skip
    assert 0.5 <= metrics.register_match <= 1.0
    assert 0 < metrics.distinct_2 <= 1 and 0 <= metrics.copied_share <= 1
    assert 0 <= metrics.compliance_flag_rate <= 1 and metrics.length_ok == 1.0
