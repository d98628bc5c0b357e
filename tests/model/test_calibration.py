"""Per-version temperature calibration: chosen at retrain time, saved with the version, applied by every engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model.adapter_info import INFO_FILE, temperature_scale
from model.training.challenger import TEMPERATURE_STEPS, calibrate_temperature
from model.training.evaluate import Metrics, corpus_spans, gate, generation_metrics
from model.training.registry import AdapterRegistry
from model.writing.brief import Brief
from model.writing.engine import LocalEngine
from model.writing.writer import CopyWriter

pytestmark = pytest.mark.slow
BRIEFS = [{"product": "린넨 셔츠", "event": "여름 세일", "channel": "sns"}]
SPANS = corpus_spans(["여름 준비는 지금부터 해요"])


def _with_scale(adapters_root: Path, tmp_path: Path, scale: float) -> Path:
    """A copy of the fixture's real adapter whose copybot.json records a calibrated temperature factor."""
    folder = tmp_path / "calibrated"
    shutil.copytree(adapters_root / "v0001", folder)
    info = json.loads((folder / INFO_FILE).read_text("utf-8"))
    (folder / INFO_FILE).write_text(json.dumps({**info, "decoding": {"temperature_scale": scale}}), "utf-8")
    return folder


def test_the_factor_is_read_from_the_version_and_missing_means_one(adapters_root: Path, tmp_path: Path) -> None:
    assert temperature_scale(adapters_root / "v0001") == 1.0  # saved before calibration existed
    assert temperature_scale(_with_scale(adapters_root, tmp_path, 1.125)) == 1.125
    assert temperature_scale(tmp_path / "nowhere") == 1.0
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / INFO_FILE).write_text('{"decoding": "hot"}', "utf-8")
    assert temperature_scale(broken) == 1.0


def test_an_engine_samples_a_calibrated_adapter_hotter_and_the_base_as_asked(
    starter_dir: Path, adapters_root: Path, tmp_path: Path
) -> None:
    folder = _with_scale(adapters_root, tmp_path, 1.25)
    engine = LocalEngine(starter_dir, adapter_path=folder, version="v0001")
    assert engine.temperature_scale == 1.25
    prompts = [
        engine.prompt_for(Brief.create(product="린넨 셔츠", event="세일", age="20대", channel="sns"), "polite")
    ] * 3
    asked = engine.complete(prompts, max_tokens=30, temperature=0.8, top_p=0.95, seed=3)
    engine.temperature_scale = 1.0
    hotter = engine.complete(prompts, max_tokens=30, temperature=1.0, top_p=0.95, seed=3)
    assert asked == hotter  # 0.8 asked x 1.25 recorded = sampled at 1.0
    engine.use_adapter(None, "starter")
    assert engine.temperature_scale == 1.0
    engine.use_adapter(folder, "v0001")  # a hot swap picks the factor up again
    assert engine.temperature_scale == 1.25


def test_calibration_steps_up_until_the_base_models_variety_or_the_last_step(starter_dir: Path) -> None:
    engine = LocalEngine(starter_dir, version="eval")
    generated = generation_metrics(CopyWriter(engine, max_extra_rounds=0), BRIEFS, SPANS)
    start = Metrics(val_loss=2.0, corpus_loss=2.5, preference_accuracy=0.5, preference_margin=0.0,
                    preference_gain=0.6, **generated)  # fmt: skip
    events: list[str] = []
    # already as varied as the target: nothing is regenerated, nothing changes
    assert calibrate_temperature(engine, start, start.distinct_2, BRIEFS, SPANS, events.append) is start
    assert events == []
    # an unreachable target: every step is tried and the last one is kept, with the metrics measured there
    hot = calibrate_temperature(engine, start, 1.01, BRIEFS, SPANS, events.append)
    assert hot.temperature_scale == TEMPERATURE_STEPS[-1] and len(events) == len(TEMPERATURE_STEPS)
    assert all("distinct-2" in e for e in events)
    assert hot.val_loss == start.val_loss and hot.preference_gain == start.preference_gain  # losses do not move
    assert engine.temperature_scale == 1.0  # the evaluation engine is left as it was
    engine.temperature_scale = TEMPERATURE_STEPS[-1]
    again = generation_metrics(CopyWriter(engine, max_extra_rounds=0), BRIEFS, SPANS)
    assert hot.distinct_2 == again["distinct_2"] and hot.register_match == again["register_match"]
    # the gate names the temperature it judged the copies at
    diversity = [r for r in gate(start, hot, base=start).reasons if "distinct-2" in r]
    assert diversity and f"sampled at temperature x{TEMPERATURE_STEPS[-1]:g}" in diversity[0]


def test_a_saved_version_carries_its_factor_to_the_engine(
    starter_dir: Path, adapters_root: Path, tmp_path: Path
) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")

    def copy_adapter(staging: Path) -> None:
        for item in (adapters_root / "v0001").iterdir():
            if item.name != INFO_FILE:
                shutil.copy2(item, staging / item.name)

    saved = registry.save("v0002", copy_adapter, {"decoding": {"temperature_scale": 1.1875}})
    assert LocalEngine(starter_dir, adapter_path=saved.path, version="v0002").temperature_scale == 1.1875
