"""Evaluation metrics on the real starter model, and the promotion gate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from model.training.evaluate import (
    GateConfig,
    Metrics,
    clear_drop,
    corpus_spans,
    evaluate_engine,
    gate,
    preference_accuracy,
    preference_gain,
    preference_scores,
    validation_loss,
    wilson_interval,
)
from model.writing.engine import LocalEngine

BASE = Metrics(val_loss=3.0, corpus_loss=2.5, preference_accuracy=0.5, preference_margin=0.0, register_match=0.9,
               distinct_2=0.8, copied_share=0.1, compliance_flag_rate=0.05, length_ok=1.0)  # fmt: skip
BETTER = {"val_loss": 2.8, "preference_accuracy": 0.7, "preference_gain": 0.8}


GAIN = GateConfig(preference="gain")


def test_gain_mode_promotes_only_a_measurably_better_adapter() -> None:
    decision = gate(BASE, Metrics(**{**BASE.as_dict(), **BETTER}), GAIN, pairs=20)
    assert decision.promote and all(r.startswith("ok: ") for r in decision.reasons)
    assert "gained on 80% of 20 held-out pairs (95% interval 58%-92%); accuracy 0.500 -> 0.700" in decision.reasons[0]


SAFETY = [
    ({"corpus_loss": 2.65}, "corpus validation loss"),
    ({"register_match": 0.8}, "register match"),
    ({"compliance_flag_rate": 0.2}, "compliance-flag rate"),
    ({"distinct_2": 0.65}, "distinct-2"),
    ({"length_ok": 0.9}, "within length limits"),
    ({"usable_share": 0.8}, "usable copies"),
]


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"preference_gain": 0.5}, "preference"),
        ({"preference_gain": float("nan")}, "no held-out preference pairs"),
        ({"val_loss": 3.1}, ": validation loss"),
        *SAFETY,
    ],
)
def test_gain_mode_keeps_the_active_adapter_and_says_why(change: dict, failing: str) -> None:
    decision = gate(BASE, Metrics(**{**BASE.as_dict(), **BETTER, **change}), GAIN, pairs=20)
    assert not decision.promote
    assert [r for r in decision.reasons if r.startswith("not met")] == [r for r in decision.reasons if failing in r]


@pytest.mark.parametrize(("change", "failing"), SAFETY)
def test_the_floor_refuses_every_safety_regression(change: dict, failing: str) -> None:
    decision = gate(BASE, Metrics(**{**BASE.as_dict(), **change}), pairs=20)
    assert not decision.promote
    assert [r for r in decision.reasons if r.startswith("not met")] == [r for r in decision.reasons if failing in r]


def test_the_floor_does_not_refuse_on_noise_only_on_a_clear_loss() -> None:
    # 40% of 20 pairs is a coin flip's spread (interval 22%-61%): left to the live trial, as is a rising loss on
    # a handful of held-out liked copies
    noisy = gate(BASE, Metrics(**{**BASE.as_dict(), "preference_gain": 0.4, "val_loss": 3.3}), pairs=20)
    assert noisy.promote
    assert "22%-61%); accuracy 0.500 -> 0.500; the live trial decides" in noisy.reasons[0]
    assert noisy.reasons[1] == "ok: validation loss 3.0000 -> 3.3000 (for information)"
    # 20% of 40 pairs: the interval (11%-35%) excludes a coin flip, a real loss
    lost = gate(BASE, Metrics(**{**BASE.as_dict(), "preference_gain": 0.2}), pairs=40)
    assert not lost.promote and lost.reasons[0].endswith("a clear loss")
    # ... unless those 40 pairs came from 8 requests (a winner is the chosen copy of several pairs): 8 looks, and
    # an interval of 5%-55% that does not exclude a coin flip
    clustered = gate(BASE, Metrics(**{**BASE.as_dict(), "preference_gain": 0.2}), pairs=40, requests=8)
    assert clustered.promote
    assert "20% of 40 held-out pairs from 8 requests (95% interval 5%-55%)" in clustered.reasons[0]
    nothing = gate(BASE, Metrics(**{**BASE.as_dict(), "val_loss": float("nan")}), pairs=0)
    assert nothing.promote and "no held-out pairs; the live trial decides" in nothing.reasons[0]


def test_wilson_interval() -> None:
    assert wilson_interval(0.5, 0) == (0.0, 1.0)
    low, high = wilson_interval(0.4, 20)
    assert (round(low, 3), round(high, 3)) == (0.219, 0.613)
    with pytest.raises(ValueError, match="preference must be one of"):
        GateConfig(preference="vibes")


def test_gate_tolerances_are_configurable() -> None:
    slightly = Metrics(**{**BASE.as_dict(), "val_loss": 3.03, "preference_gain": 0.55})
    assert gate(BASE, slightly, GAIN).promote  # the feedback loss may rise within its tolerance
    assert not gate(BASE, slightly, GateConfig(preference="gain", loss_tolerance=-0.05)).promote  # ... or must fall
    assert not gate(BASE, slightly, GateConfig(preference="gain", min_preference_gain=0.1)).promote
    assert not gate(BASE, Metrics(**{**BASE.as_dict(), "length_ok": 0.98}), GateConfig(length_tolerance=0.01)).promote


def test_a_share_must_fall_beyond_its_tolerance_and_sampling_noise_to_refuse() -> None:
    assert clear_drop(0.98, 0.90, 0, 0, 0.03)  # no counts: the tolerance alone
    assert not clear_drop(0.98, 0.96, 0, 0, 0.03)
    # 59 of 60 copies -> 57 of 60: three points, within what 60 copies can tell apart
    assert not clear_drop(59 / 60, 57 / 60, 60, 60, 0.03)
    assert clear_drop(59 / 60, 48 / 60, 60, 60, 0.03)  # 80 %: a real drop
    # on 240 copies the allowance over the tolerance is two to three points, no more
    assert not clear_drop(0.98, 0.93, 240, 240, 0.03) and clear_drop(0.98, 0.91, 240, 240, 0.03)
    assert not clear_drop(0.9, 0.95, 240, 240, 0.0)  # a rise is never a drop
    small = Metrics(**{**BASE.as_dict(), "register_match": 0.983, "copies": 60})
    decision = gate(small, Metrics(**{**small.as_dict(), "register_match": 0.95}), pairs=20)
    assert decision.promote and "ok: register match 0.983 -> 0.950" in decision.reasons
    flagged = Metrics(**{**small.as_dict(), "compliance_flag_rate": 0.25})  # 0.05 -> 0.25 of 60 copies
    assert "not met: compliance-flag rate 0.050 -> 0.250" in gate(small, flagged, pairs=20).reasons


def test_diversity_is_held_against_the_base_model_across_a_lineage() -> None:
    new = Metrics(**{**BASE.as_dict(), **BETTER, "distinct_2": 0.78})
    assert gate(BASE, new).promote  # 0.80 -> 0.78 against the active adapter alone
    root = Metrics(**{**BASE.as_dict(), "distinct_2": 0.9})
    decision = gate(BASE, new, base=root)  # but 0.90 -> 0.78 since the base model: too much, summed over rounds
    assert not decision.promote and "not met: distinct-2 0.900 (base model) -> 0.780" in decision.reasons


def test_preference_gain_counts_pairs_whose_margin_grew() -> None:
    old = [(0.1, 2.0), (-0.2, -3.0), (0.0, 0.0), (0.3, 1.0)]
    new = [(0.1, 2.5), (-0.1, -1.0), (0.0, -0.5), (0.3, 1.0)]
    assert preference_gain(old, new) == 0.5  # two grew, one shrank, one unchanged
    assert math.isnan(preference_gain([], []))
    assert preference_scores(old) == (0.5, 0.05)


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
    metrics, margins = evaluate_engine(engine, heldout_sft=[good], heldout_pairs=pairs, spans=spans,
                                       heldout_corpus=[good, good],
                                       briefs=[{"product": "린넨 셔츠", "event": "여름 세일", "channel": "sns"}])  # fmt: skip
    assert metrics.corpus_loss == metrics.val_loss == loss
    assert len(margins) == 1 and margins[0][0] > 0 and margins[0][1] > 0
    assert metrics.preference_accuracy == 1.0 and metrics.preference_margin == round(margins[0][0], 4)
    assert 0.5 <= metrics.register_match <= 1.0
    assert 0 < metrics.distinct_2 <= 1 and 0 <= metrics.copied_share <= 1
    # an over-long copy is flagged, never hidden; on SNS the starter overruns its limit rarely (an SMS is measured
    # with its legal frame, whose body budget the raw starter meets on about a third of first tries:
    # BENCHMARKS.md framed_fit; the writer's retries make up for it when serving)
    assert 0 <= metrics.compliance_flag_rate <= 1 and metrics.length_ok >= 0.9


def test_a_brief_the_model_writes_nothing_usable_for_is_scored_not_fatal() -> None:
    from model.training.evaluate import generation_metrics
    from model.writing.writer import CopyWriter
    from tests.fakes.backends import POLITE

    class NothingForShoes:
        """Korean copy for every product but one, for which only Latin text comes back (dropped as not Korean)."""

        version = "weak"

        def prompt_for(self, brief: Any, register: str) -> str:
            return brief.product

        def complete(self, prompts: list[str], **_: object) -> list[str]:
            return ["Just do it now" if p == "운동화" else POLITE[i % len(POLITE)] for i, p in enumerate(prompts)]

    briefs = [{"product": "셔츠", "event": "세일"}, {"product": "운동화", "event": "세일"}]
    figures = generation_metrics(CopyWriter(NothingForShoes(), max_extra_rounds=0), briefs, set())
    assert figures["asked"] == 2 * 6 * 5 and 0.4 <= figures["usable_share"] <= 0.5
    weak = Metrics(**{**BASE.as_dict(), "usable_share": figures["usable_share"], "asked": figures["asked"]})
    decision = gate(Metrics(**{**BASE.as_dict(), "asked": 60}), weak, pairs=20)
    assert not decision.promote and any(r.startswith("not met: usable copies") for r in decision.reasons)
