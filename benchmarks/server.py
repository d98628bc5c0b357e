"""Many marketers at once (issue 19): requests per second and p50/p95 latency at concurrency 1, 4 and 16 for n=5
candidates on the starter model (CPU), four ways:

- one at a time: the engine's own `complete` (5 prompts x up to 60 tokens), which serialises its callers: how the
  bot and the server worked before batching;
- server: `copybot model-server`'s app under uvicorn, called over real HTTP by the client the bot uses, with its
  batching (model/writing/batching.py: continuous, model/writing/decoding.py, unless --whole-batches);
- engine on the bot's pool: the same call on the batching engine, submitted through the bot's generation pool
  (COPYBOT_GENERATION_WORKERS workers), as `copybot serve` calls its in-process engine;
- copy requests on the bot's pool: the whole copy request a worker runs (the writer: up to 160 tokens for the
  brief's channel, register checks and retries, screening), on the batching engine.

Target: at concurrency 16, at least 3x the requests per second of concurrency 1, for the server and for the
engine on the bot's pool. Clients are closed loops with no pause (each sends its next request as soon as the last
is answered), the hardest case for batching: callers come back staggered by their own Python work.
"mean batch" is the calls written together each time a batch starts or calls join it. Run: python -m
benchmarks.server [--requests 16] [--levels 1 4 16] [--whole-batches]. Client and server share this process (and
its GIL), so arrivals are more spread out than from separate clients.
"""

from __future__ import annotations

import argparse
import statistics
import threading
from collections.abc import Callable
from typing import Any

from benchmarks.concurrency import burst, closed_loop, p95
from bot.settings import Settings
from bot.slack.pool import GenerationPool
from model.serving.client import ModelClient
from model.serving.server import ServerConfig, create_server
from model.starter.build import ensure_starter
from model.writing.batching import BatchingEngine
from model.writing.brief import Brief
from model.writing.engine import LocalEngine
from model.writing.writer import CopyWriter
from tests.http_server import serving

N = 5
TOKENS = 60
TARGET = 3.0
TARGETED = ("server", "engine on the bot's pool")


def measure(call: Callable[[int], object], concurrency: int, requests: int) -> dict[str, float]:
    """Run `requests` calls with `concurrency` callers; requests per second and latency percentiles."""
    latencies, wall = closed_loop(call, concurrency, requests)
    return {"rps": requests / wall, "p50": statistics.median(latencies), "p95": p95(latencies)}


def through_pool(pool: GenerationPool, job: Callable[[], Any]) -> None:
    """Submit `job` as the bot submits a copy request, and wait for it; a full pool is a failure here."""
    done = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            job()
        except BaseException as exc:
            failed.append(exc)
        finally:
            done.set()

    if not pool.reserve():
        raise RuntimeError("the generation pool is full; raise COPYBOT_GENERATION_WORKERS")
    pool.submit(id(done), run)
    done.wait()
    if failed:
        raise failed[0]


def mean_batch(batcher: BatchingEngine) -> float:
    """Calls per batch since the batcher's record was last cleared."""
    return sum(batcher.batches) / max(1, len(batcher.batches))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--requests",
        type=int,
        default=16,
        help="requests per level (at least 4x the concurrency, so that the first wave's arrivals weigh little)",
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--whole-batches", action="store_true",
                        help="batch without continuous batching (as an engine with a trimmed head or a repetition "
                             "penalty does), for comparison")  # fmt: skip
    args = parser.parse_args()
    settings = Settings.from_env()
    engine = LocalEngine(ensure_starter(settings.starter_dir), version="starter")
    brief = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대", n=N)
    prompt = engine.prompt_for(brief, "polite")
    options = {"max_tokens": TOKENS, "temperature": 0.8, "top_p": 0.95, "stop": None}
    engine.complete([prompt] * N, seed=0, **options)  # warm-up
    batcher = BatchingEngine(engine, window_ms=settings.batch_window_ms, max_batch=settings.max_batch,
                             continuous=not args.whole_batches)  # fmt: skip
    writer = CopyWriter(batcher)
    pool = GenerationPool(settings.generation_workers)
    writer.write(brief, seed=0)  # warm-up: the Korean analyser the checks use

    rows = []
    with serving(create_server(batcher, ServerConfig(base_name="starter", max_waiting=64))) as url:
        client = ModelClient(url, timeout_s=600)
        paths: dict[str, Callable[[int], object]] = {
            "one at a time": lambda i: engine.complete([prompt] * N, seed=i, **options),
            "server": lambda i: client.complete([prompt] * N, model="starter", seed=i, **options),
            "engine on the bot's pool": lambda i: through_pool(pool, lambda: batcher.complete([prompt] * N, seed=i,
                                                                                            **options)),
            "copy requests on the bot's pool": lambda i: through_pool(pool, lambda: writer.write(brief, seed=i)),
        }  # fmt: skip
        for level in args.levels:
            total = max(args.requests, 4 * level)
            figures = {}
            for name, call in paths.items():
                batcher.batches.clear()
                figures[name] = {**measure(call, level, total), "batch": mean_batch(batcher)}
            rows.append((level, total, figures))
            print(f"concurrency {level}: done", flush=True)
    # "sixteen marketers who type /copy at the same moment": the last one's wait against one request alone
    alone = burst(paths["copy requests on the bot's pool"], 1, tries=5)
    together = burst(paths["copy requests on the bot's pool"], args.levels[-1])
    pool.shutdown(10)
    names = list(rows[0][2])
    print("\n| concurrency | requests | " + " | ".join(f"{name}: rps, p50, p95, mean batch" for name in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for level, total, figures in rows:
        cells = [f"{f['rps']:.2f}, {f['p50']:.2f} s, {f['p95']:.2f} s, {f['batch']:.1f}".removesuffix(", 0.0")
                 for f in figures.values()]  # fmt: skip
        print(f"| {level} | {total} | " + " | ".join(cells) + " |")
    first, last = rows[0], rows[-1]
    print()
    print(f"| {args.levels[-1]} copy requests sent at once on the bot's pool: the last answered after | {together:.2f} s | "
          f"one alone: {alone:.2f} s ({together / alone:.1f}x) |")  # fmt: skip
    for name in names[1:]:
        ratio = last[2][name]["rps"] / first[2][name]["rps"]
        target = f"target >= {TARGET:g}x: {'met' if ratio >= TARGET else 'NOT met'}" if name in TARGETED else "reported"
        print(f"| {name}: requests/s at concurrency {last[0]} over concurrency {first[0]} | {ratio:.2f}x | {target} |")


if __name__ == "__main__":
    main()
