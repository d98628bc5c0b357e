"""The starter model recipe: a loadable Hugging Face folder, deterministic for a seed, stopped near its best."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from safetensors.torch import load_file

from model.starter.build import StarterRecipe, build_starter, ensure_starter, starter_info

TINY = StarterRecipe(hidden_size=32, intermediate_size=64, layers=1, heads=2, max_epochs=1, time_budget_s=60)


def _weights_digest(folder: Path) -> str:
    tensors = load_file(folder / "model.safetensors")
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].numpy().tobytes())
    return h.hexdigest()


@pytest.mark.slow
def test_built_starter_loads_with_auto_classes(starter_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(starter_dir)
    tokenizer = AutoTokenizer.from_pretrained(starter_dir)
    assert model.config.model_type == "llama"
    ids = tokenizer("<제품> 린넨 셔츠 <카피> 여름엔 린넨이죠", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == "<제품> 린넨 셔츠 <카피> 여름엔 린넨이죠"
    assert tokenizer.unk_token_id not in ids


@pytest.mark.slow
def test_starter_info_records_an_early_stopped_build(starter_dir: Path) -> None:
    info = starter_info(starter_dir)
    assert info is not None
    assert 1_000_000 <= info["parameters"] <= 6_000_000
    assert info["held_out_rows"] >= 50
    losses = info["held_out_losses"]
    assert info["best_held_out_loss"] == min(losses)
    assert info["best_held_out_loss"] < losses[0]
    assert info["build_seconds"] > 0


@pytest.mark.slow
def test_the_recipe_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = build_starter(tmp_path / "a", recipe=TINY, progress=False)
    b = build_starter(tmp_path / "b", recipe=TINY, progress=False)
    assert _weights_digest(tmp_path / "a") == _weights_digest(tmp_path / "b")
    assert a["held_out_losses"] == b["held_out_losses"]
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (tmp_path / "b" / "tokenizer.json").read_text()


@pytest.mark.slow
def test_ensure_starter_builds_only_when_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import threading

    import model.starter.build as build

    builds = []
    real_build = build.build_starter
    monkeypatch.setattr(build, "build_starter", lambda *a, **k: builds.append(1) or real_build(*a, **k))
    target = tmp_path / "models" / "starter"
    assert starter_info(target) is None
    # two processes starting on a fresh home at once (here two threads): one builds, the other waits for it
    threads = [threading.Thread(target=ensure_starter, args=(target,), kwargs={"progress": False, "recipe": TINY})
               for _ in range(2)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert len(builds) == 1 and starter_info(target) is not None
    assert capsys.readouterr().out == ""  # no Trainer log lines on stdout, where `--json` output goes
    built = (target / "copybot.json").stat().st_mtime_ns
    ensure_starter(target, progress=False, recipe=TINY)
    assert (target / "copybot.json").stat().st_mtime_ns == built
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".starter-")]  # no staging left behind


@pytest.mark.slow
def test_a_build_with_progress_keeps_stdout_for_results(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # `copybot generate --json` on a fresh home builds the starter first: its training logs must not reach stdout
    build_starter(tmp_path / "m", recipe=TINY, progress=True)
    out, err = capfd.readouterr()
    assert out == ""
    assert "loss" in err
