"""Batched against sequential generation on the starter model: median seconds for 5 candidates, and the ratio.

Run: python -m benchmarks.generate [--repeats 7]. Target: one batched call is at least 3x faster than 5 calls.
It also reports the quality figures of the starter model that the README quotes: distinct-2 of candidates and
the register-match rate over briefs for every age group.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bot.settings import Settings
from model.starter.build import ensure_starter, starter_info
from model.writing.brief import Brief
from model.writing.diversity import distinct_2
from model.writing.engine import LocalEngine
from model.writing.writer import CopyWriter

N = 5
TARGET_RATIO = 3.0
QUALITY_BRIEFS = [
    ("린넨 셔츠", "여름 세일", "sns"),
    ("한우 선물세트", "추석 선물", "sms"),
    ("수분 크림", "신상품 입고", "push"),
    ("캠핑 의자", "여름 휴가", "banner"),
    ("진주 목걸이", "가정의 달", "print"),
]
AGES = ["10대", "20대", "30대", "40대", "50대", "60대+"]


def time_generation(engine: LocalEngine, repeats: int) -> tuple[float, float]:
    """Median seconds for N prompts in one call, and for N calls of one prompt each."""
    brief = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대", n=N)
    prompts = [engine.prompt_for(brief, "polite")] * N
    kwargs = {"max_tokens": 48, "temperature": 0.8, "top_p": 0.95, "stop": None}
    batched, sequential = [], []
    engine.complete(prompts[:1], seed=0, **kwargs)  # warm-up
    for r in range(repeats):
        t = time.perf_counter()
        engine.complete(prompts, seed=r, **kwargs)
        batched.append(time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(N):
            engine.complete(prompts[:1], seed=r * N + i, **kwargs)
        sequential.append(time.perf_counter() - t)
    return statistics.median(batched), statistics.median(sequential)


def quality(engine: LocalEngine) -> tuple[float, float]:
    """Median distinct-2 per batch, and the share of candidates whose register fits the audience."""
    writer = CopyWriter(engine, max_extra_rounds=0)  # measure the raw model, before any regeneration
    distincts, ok, total = [], 0, 0
    for seed, (product, event, channel) in enumerate(QUALITY_BRIEFS):
        for age in AGES:
            brief = Brief.create(product=product, event=event, age=age, channel=channel, n=N)
            result = writer.write(brief, seed=seed)
            distincts.append(distinct_2([c.text for c in result.candidates]))
            ok += sum(c.register_ok for c in result.candidates)
            total += len(result.candidates)
    return statistics.median(distincts), ok / max(1, total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    settings = Settings.from_env()
    path: Path = ensure_starter(settings.starter_dir)
    engine = LocalEngine(path, version="starter")
    batched, sequential = time_generation(engine, args.repeats)
    d2, match = quality(engine)
    info = starter_info(path) or {}
    print(f"| n={N} in one batched call (median) | {batched:.3f} s | |")
    print(f"| n={N} as 5 sequential calls (median) | {sequential:.3f} s | |")
    print(f"| speed-up of batching | {sequential / batched:.1f}x | target >= {TARGET_RATIO:.0f}x |")
    print(f"| starter distinct-2 per batch (median) | {d2:.2f} | |")
    print(f"| starter register match, first try | {match:.0%} | |")
    print(f"| starter parameters | {info.get('parameters', 0):,} | |")
    print(f"| starter build time | {info.get('build_seconds')} s | <= 180 s |")


if __name__ == "__main__":
    main()
