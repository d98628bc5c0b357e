"""Retrain cost on the starter model (CPU): wall time and peak memory for 1,000, 5,000 and 10,000 SFT examples.

Run: python -m benchmarks.retrain [--sizes 1000 5000 10000]. Each size trains one LoRA epoch (SFT only) in a
fresh process, so its peak resident memory is its own. Prints the figures and how cost grows with size.
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
    return RetrainDataset(sft=sft, pairs=[], kto=[], kto_weights={}, heldout_sft=[], heldout_pairs=[],
                          heldout_briefs=[], summary={})  # fmt: skip


def _one(size: int) -> None:
    """Child process: train once, print JSON with seconds and peak RSS."""
    base = ensure_starter(Settings.from_env().starter_dir, progress=False)
    started = time.perf_counter()
    train_adapter(base, _dataset(size), config=TrainConfig(epochs=1, preference="none"))
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"size": size, "seconds": round(seconds, 1), "peak_mb": round(peak_mb)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _one(args.child)
        return
    rows = []
    for size in args.sizes:
        out = subprocess.run([sys.executable, "-W", "ignore", "-m", "benchmarks.retrain", "--child", str(size)],
                             capture_output=True, text=True, check=True)  # fmt: skip
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first = rows[0]
    for row in rows:
        growth = (row["seconds"] / first["seconds"]) / (row["size"] / first["size"])
        print(f"| {row['size']:,} SFT examples, 1 epoch | {row['seconds']} s | peak {row['peak_mb']} MB | "
              f"time per example x{growth:.2f} vs {first['size']:,} |")  # fmt: skip


if __name__ == "__main__":
    main()
