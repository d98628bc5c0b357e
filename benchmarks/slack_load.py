"""Slack load in HTTP mode on loopback: ack latency under concurrent `/copy`, and reaction ingestion rate.

Run: python -m benchmarks.slack_load. Targets: ack p99 under 100 ms with 20 concurrent commands while
generations are in flight; at least 500 reaction events per second ingested end to end (HTTP to SQLite row).
The Slack Web API is the project's local fake (tests/fakes/slack_api.py); the model is a stand-in that takes
1 s per batch, so generations are in flight for the whole measurement.
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from bot.settings import Settings
from bot.slack.app import create_app, web_client
from bot.slack.copy_requests import BotDeps
from bot.slack.pool import GenerationPool
from bot.slack.serve import HttpRunner
from model.writing.writer import CopyWriter
from storage import Store
from tests.fakes import signing
from tests.fakes.backends import ScriptedBackend
from tests.fakes.slack_api import FakeSlack

COMMANDS = 20
REACTIONS = 2000


def _post(port: int, body: str, content_type: str) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/events", data=body.encode(), headers=signing.headers(body, content_type)
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return time.perf_counter() - started


def _blast(port: int, bodies: list[str], content_type: str, threads: int) -> list[float]:
    """Send every body from `threads` threads; runs in its own process so the client does not share the
    server's GIL and inflate the latencies it measures."""
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda b: _post(port, b, content_type), bodies))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    fake = FakeSlack().start()
    client = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    client.submit(time.sleep, 0).result()  # start the client process before any timing
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"COPYBOT_HOME": tmp, "SLACK_BOT_TOKEN": "xoxb-bench",
                                      "SLACK_SIGNING_SECRET": signing.SECRET, "SLACK_API_URL": fake.url})  # fmt: skip
        store = Store.open(Path(tmp) / "bench.db")
        deps = BotDeps(settings, store, CopyWriter(ScriptedBackend(delay_s=1.0)), pool=GenerationPool(2, 64))
        runner = HttpRunner(create_app(deps, client=web_client(settings), http=True), "127.0.0.1", 0)
        runner.start()
        bodies = [signing.command_body(f"셔츠 {i} / 세일 / 30대 / 2개", user=f"U{i}") for i in range(COMMANDS)]
        acks = client.submit(_blast, runner.port, bodies, "application/x-www-form-urlencoded", COMMANDS).result()
        fake.wait_for("chat.update", 2, timeout=120)  # at least one generation finished
        candidate = store.candidates_for(store.requests_with_status("done")[0]["id"])[0]
        events = [
            signing.event_body(
                {"type": "reaction_added", "user": f"U{i % 50}", "reaction": "+1", "event_ts": f"1700001000.{i:06d}",
                 "item": {"type": "message", "channel": "C100", "ts": candidate["slack_ts"]}},
                event_id=f"EvB{i}",
            )
            for i in range(REACTIONS)
        ]  # fmt: skip
        started = time.perf_counter()
        client.submit(_blast, runner.port, events, "application/json", 8).result()
        while store.counts()["feedback_events"] < REACTIONS:
            time.sleep(0.005)
        rate = REACTIONS / (time.perf_counter() - started)
        runner.stop()
        deps.pool.shutdown(timeout=120)
    fake.stop()
    client.shutdown()
    print(f"| ack latency p50, {COMMANDS} concurrent /copy | {statistics.median(acks) * 1000:.1f} ms | |")
    print(f"| ack latency p99, {COMMANDS} concurrent /copy | {percentile(acks, 0.99) * 1000:.1f} ms | < 100 ms |")
    print(f"| reaction events ingested end to end | {rate:.0f} /s | >= 500 /s |")


if __name__ == "__main__":
    main()
