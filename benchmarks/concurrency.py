"""Calls made at once, timed: closed-loop callers and bursts (benchmarks.server and benchmarks.gpu_check).

Standard library only: the GPU check imports it on a bare GPU machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def closed_loop(call: Callable[[int], object], concurrency: int, requests: int) -> tuple[list[float], float]:
    """`call(0)` … `call(requests - 1)` made by `concurrency` callers, each calling again as soon as it is
    answered: the latencies, sorted, and the wall time of the whole run."""
    latencies: list[float] = []

    def one(i: int) -> None:
        started = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    return sorted(latencies), time.perf_counter() - started


def p95(latencies: list[float]) -> float:
    """The 95th percentile of sorted latencies (the nearest rank)."""
    return latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]


def burst(call: Callable[[int], object], size: int, tries: int = 3) -> float:
    """Median over `tries` of the time until the last of `size` calls sent at the same moment is answered (each
    try with calls numbered apart from the other tries')."""
    times = []
    for t in range(tries):
        started = time.perf_counter()
        with ThreadPoolExecutor(size) as pool:
            list(pool.map(call, range(t * size, (t + 1) * size)))
        times.append(time.perf_counter() - started)
    return statistics.median(times)
