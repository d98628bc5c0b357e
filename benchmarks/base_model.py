"""A real base model on CPU (gemma-3-270m, `copybot model fetch`): generation and training time, peak memory.

Run: python -m benchmarks.base_model [--runs 5] [--train-examples 1000] [--skip-train]

Each figure comes from a fresh child process (one per row), so its peak resident memory is its own:
- generate, full head / trimmed: 5 candidates of exactly 40 new tokens (end of sequence switched off) in one
  batched call through the engine, median of --runs after one warm-up; with the active adapter on that base when
  COPYBOT_HOME has one. "full head" turns trimming off (model/vocab.py), as a GPU runs.
- train: one SFT epoch (LoRA, no preference stage) over --train-examples corpus copies, the output layer trimmed.
Targets (issue 15, 2 cores): generate in at most 5 s median; the epoch over 1,000 examples in at most 10 minutes.
Without the fetched model it prints one row saying how to fetch it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

NAME = "gemma-3-270m"
TOKENS = 40
N = 5


def _folder() -> str | None:
    from bot.generation import base_model_path
    from bot.settings import Settings
    from model.errors import ModelUnavailableError

    settings = Settings.from_env({**os.environ, "COPYBOT_BASE_MODEL": NAME})
    try:
        return base_model_path(settings)
    except ModelUnavailableError:
        return None


def _active_adapter() -> tuple[str, str] | None:
    """(version, folder) of the active adapter on this base, if COPYBOT_HOME has one."""
    from bot.settings import Settings
    from storage import Store

    settings = Settings.from_env()
    if not settings.db_path.exists():
        return None
    active = Store.open(settings.db_path).active_model_version()
    if active is None or active["base_model"] != NAME:
        return None
    return active["version"], active["adapter_path"]


def _generate(folder: str, runs: int, trim: bool) -> dict[str, object]:
    import model.vocab
    from model.writing.brief import Brief
    from model.writing.engine import LocalEngine

    if not trim:
        model.vocab.TRIM_ABOVE = 1 << 62
    adapter = _active_adapter()
    engine = LocalEngine(folder, adapter_path=adapter[1] if adapter else None, version=adapter[0] if adapter else None)
    engine.stop_ids = []  # exactly TOKENS new tokens every run
    brief = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대")
    prompts = [engine.prompt_for(brief, r) for r in ("polite", "casual") * 2 + ("polite",)]
    times = []
    for run in range(runs + 1):
        started = time.perf_counter()
        engine.complete(prompts, max_tokens=TOKENS, seed=run)
        times.append(time.perf_counter() - started)
    return {"row": f"generate {N} x {TOKENS} tokens, {'trimmed' if trim else 'full head'}",
            "median_s": round(statistics.median(times[1:]), 2), "adapter": adapter[0] if adapter else None,
            "kept": engine.vocabulary["kept"] if engine.vocabulary else None}  # fmt: skip


def _train(folder: str, examples: int) -> dict[str, object]:
    from model.starter.corpus import load_corpus
    from model.training.dataset import build_dataset
    from model.training.train import TrainConfig, train_adapter

    rows = [r for r in load_corpus() if r.get("age_group")]
    corpus = [{**rows[i % len(rows)], "text": f"{rows[i % len(rows)]['text']} {i}"} for i in range(examples)]
    data = build_dataset([], corpus, [], force=True)
    started = time.perf_counter()
    train_adapter(folder, data, config=TrainConfig(epochs=1, min_steps=1, preference="none"))
    return {"row": f"SFT epoch over {examples:,} examples, trimmed", "seconds": round(time.perf_counter() - started)}


def _child(kind: str, runs: int, examples: int) -> None:
    folder = _folder()
    assert folder is not None
    result = _generate(folder, runs, kind == "trimmed") if kind != "train" else _train(folder, examples)
    result["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result, ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--train-examples", type=int, default=1000)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--child", choices=["full", "trimmed", "train"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.runs, args.train_examples)
        return
    if _folder() is None:
        print(f"| {NAME} | not fetched: run `copybot model fetch {NAME} --accept-gemma-terms` first |")
        return
    print(f"| {NAME}, 2 CPU threads | figure | peak memory |\n|---|---|---|")
    for kind in ("full", "trimmed", *(() if args.skip_train else ("train",))):
        done = subprocess.run([sys.executable, "-W", "ignore", "-m", "benchmarks.base_model", "--child", kind,
                               "--runs", str(args.runs), "--train-examples", str(args.train_examples)],
                              capture_output=True, text=True, check=True)  # fmt: skip
        row = json.loads(done.stdout.strip().splitlines()[-1])
        figure = f"{row['median_s']} s median" if "median_s" in row else f"{row['seconds']} s"
        extra = f" (adapter {row['adapter']})" if row.get("adapter") else ""
        extra += f", {row['kept']:,} tokens kept" if row.get("kept") else ""
        print(f"| {row['row']}{extra} | {figure} | {row['peak_mb']:,} MB |")


if __name__ == "__main__":
    main()
