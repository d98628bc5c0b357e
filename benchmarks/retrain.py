"""Retrain cost (CPU): how the time of one weekly retrain divides, and how training grows with data.

Run: python -m benchmarks.retrain [--sizes 1000 5000 10000]. Each size trains one LoRA epoch (SFT only) on the
starter in a fresh process, so its peak resident memory is its own. Prints the figures and how cost grows with size.

Run: python -m benchmarks.retrain --base gemma-3-270m [--requests 30]. One weekly retrain on that base (fetched
with `copybot model fetch`, its starter adapter active if the default home has one) after `--requests` requests
rated by a simulated team, in a scratch home: the retrain's total and its breakdown (loading, SFT, the preference
stage, scoring the active, base and new models for the gate, temperature calibration, the reward). Target (issue
37): at most 20 minutes on 2 cores for gemma-3-270m and 30 requests, gate included.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from bot.settings import Settings
from model.starter.build import ensure_starter, training_pairs
from model.starter.corpus import load_corpus
from model.training.dataset import RetrainDataset
from model.training.train import TrainConfig, train_adapter


def _dataset(size: int) -> RetrainDataset:
    pairs = training_pairs(load_corpus())
    sft = [{"prompt": pairs[i % len(pairs)][0], "completion": f"{pairs[i % len(pairs)][1]} {i}"} for i in range(size)]
    return RetrainDataset(
        sft=sft, pairs=[], kto=[], kto_weights={}, heldout_sft=[], heldout_pairs=[], heldout_briefs=[], summary={}
    )


def _one(size: int) -> None:
    """Child process: train once, print JSON with seconds and peak RSS."""
    base = ensure_starter(Settings.from_env().starter_dir, progress=False)
    started = time.perf_counter()
    train_adapter(base, _dataset(size), config=TrainConfig(epochs=1, preference="none"))
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"size": size, "seconds": round(seconds, 1), "peak_mb": round(peak_mb)}))


PARTS = (
    "load",
    "sft",
    "preference",
    "load_eval_engine",
    "score_active",
    "score_base",
    "score_new",
    "calibrate",
    "reward",
)


def breakdown(base: str, requests: int) -> list[str]:
    """One simulated week on `base` (`copybot simulate`, one round, in a scratch home), and the table of where its
    retrain's time went."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix="copybot-retrain-") as scratch:
        env = {**os.environ, "COPYBOT_BASE_MODEL": base}
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-W",
                "ignore",
                "-m",
                "bot",
                "simulate",
                "--rounds",
                "1",
                "--requests-per-round",
                str(requests),
                "--eval-briefs",
                "1",
                "--eval-seeds",
                "1",
                "--rater",
                "bot.learning.raters:emoji_for_young",
                "--home",
                f"{scratch}/sim",
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"copybot simulate failed ({done.returncode}):\n{done.stderr[-3000:]}")
    retrain = json.loads(done.stdout)["rounds"][1]["retrain"]
    timings = retrain.get("timings") or {}
    total = sum(timings.get(p, 0.0) for p in PARTS)
    rows = [
        f"| {base}: retrain after {requests} rated requests ({retrain['status']}) | {total / 60:.1f} min | "
        f"at most 20 min | the whole simulated week took {(time.perf_counter() - started) / 60:.1f} min |"
    ]
    rows += [
        f"| {part} | {timings.get(part, 0.0):.0f} s | | {100 * timings.get(part, 0.0) / max(total, 1):.0f} % |"
        for part in PARTS
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--base", help="time one weekly retrain on this base model instead (e.g. gemma-3-270m)")
    parser.add_argument("--requests", type=int, default=30, help="rated requests before that retrain")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _one(args.child)
        return
    if args.base:
        print("\n".join(breakdown(args.base, args.requests)))
        return
    rows = []
    for size in args.sizes:
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-m", "benchmarks.retrain", "--child", str(size)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first = rows[0]
    for row in rows:
        growth = (row["seconds"] / first["seconds"]) / (row["size"] / first["size"])
        print(
            f"| {row['size']:,} SFT examples, 1 epoch | {row['seconds']} s | peak {row['peak_mb']} MB | "
            f"time per example x{growth:.2f} vs {first['size']:,} |"
        )


if __name__ == "__main__":
    main()
