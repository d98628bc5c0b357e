"""The model server against the in-process engine: requests per second and p50/p95 latency for n=5 candidates of
up to 60 tokens, at concurrency 1, 4 and 16, on the starter model (CPU), and the server/in-process ratios.

Run: python -m benchmarks.server [--requests 8] [--levels 1 4 16]. The server runs in this process under uvicorn
(as the tests run it) and is called over real HTTP by the same client the bot uses, so the ratio is the price of
HTTP, JSON and the request queue. The engine serialises generation either way; concurrency buys queueing, not
throughput, on one model.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bot.settings import Settings
from model.serving.client import ModelClient
from model.serving.server import ServerConfig, create_server
from model.starter.build import ensure_starter
from model.writing.brief import Brief
from model.writing.engine import LocalEngine
from tests.http_server import serving

N = 5
TOKENS = 60


def measure(call: Callable[[int], object], concurrency: int, requests: int) -> dict[str, float]:
    """Run `requests` calls with `concurrency` workers; requests per second and latency percentiles."""
    latencies: list[float] = []

    def one(i: int) -> None:
        started = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    return {"rps": requests / wall, "p50": statistics.median(latencies), "p95": p95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=8, help="requests per level (at least 2x the concurrency)")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    engine = LocalEngine(ensure_starter(Settings.from_env().starter_dir), version="starter")
    prompt = engine.prompt_for(Brief.create(product="린넨 셔츠", event="여름 세일", age="20대", n=N), "polite")
    options = {"max_tokens": TOKENS, "temperature": 0.8, "top_p": 0.95, "stop": None}
    engine.complete([prompt] * N, seed=0, **options)  # warm-up

    def in_process(i: int) -> object:
        return engine.complete([prompt] * N, seed=i, **options)

    rows = []
    with serving(create_server(engine, ServerConfig(base_name="starter", max_waiting=64))) as url:
        client = ModelClient(url, timeout_s=600)

        def over_http(i: int) -> object:
            return client.complete([prompt] * N, model="starter", seed=i, **options)

        for level in args.levels:
            total = max(args.requests, 2 * level)
            local = measure(in_process, level, total)
            remote = measure(over_http, level, total)
            rows.append((level, total, local, remote))
            print(f"concurrency {level}: done", flush=True)
    print("\n| concurrency | requests | in-process rps | server rps | p50 in-process | p50 server | p95 server "
          "| server/in-process rps |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for level, total, local, remote in rows:
        print(f"| {level} | {total} | {local['rps']:.2f} | {remote['rps']:.2f} | {local['p50']:.2f} s | "
              f"{remote['p50']:.2f} s | {remote['p95']:.2f} s | {remote['rps'] / local['rps']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
