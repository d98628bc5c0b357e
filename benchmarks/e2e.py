"""End to end with the real starter model on CPU: from a signed `/copy` over HTTP to the last candidate posted in
the thread, and the ack time Slack waits for.

Run: python -m benchmarks.e2e [--requests 8]. The bot runs in HTTP mode on loopback against the local fake Slack
Web API (tests/fakes/slack_api.py), one request at a time, as a marketer would send them. Targets: the ack under
3 s (Slack's limit; in practice milliseconds) and the last of 5 candidates posted within 10 s (median).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from bot.generation import ActiveAdapterBackend
from bot.settings import Settings
from bot.slack.app import create_app, web_client
from bot.slack.copy_requests import BotDeps
from bot.slack.pool import GenerationPool
from bot.slack.serve import HttpRunner
from model.starter.build import ensure_starter
from model.writing.engine import LocalEngine
from model.writing.tone import warm_up
from model.writing.writer import CopyWriter
from storage import Store
from tests.fakes import signing
from tests.fakes.slack_api import FakeSlack

TARGET_ACK_S = 3.0
TARGET_LAST_S = 10.0
BRIEFS = ["린넨 셔츠 / 여름 세일 / 20대", "한우 선물세트 / 추석 / 60대+ / 문자", "수분 크림 / 신상품 입고 / 30대 / 푸시",
          "캠핑 의자 / 여름 휴가 / 40대 / 배너"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=8)
    args = parser.parse_args()
    starter = ensure_starter(Settings.from_env().starter_dir)
    fake = FakeSlack().start()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings.from_env({"COPYBOT_HOME": scratch, "SLACK_BOT_TOKEN": "xoxb-bench",
                                      "SLACK_SIGNING_SECRET": signing.SECRET, "SLACK_API_URL": fake.url})  # fmt: skip
        store = Store.open(Path(scratch) / "copybot.db")
        engine = ActiveAdapterBackend(LocalEngine(starter, version="starter"), store)
        warm_up()
        deps = BotDeps(settings, store, CopyWriter(engine), pool=GenerationPool())
        runner = HttpRunner(create_app(deps, client=web_client(settings), http=True), "127.0.0.1", 0)
        runner.start()
        acks, lasts = [], []
        for i in range(args.requests):
            before = len(fake.of("chat.postMessage"))
            body = signing.command_body(BRIEFS[i % len(BRIEFS)])
            request = urllib.request.Request(f"http://127.0.0.1:{runner.port}/slack/events", data=body.encode(),
                                             headers=signing.headers(body, "application/x-www-form-urlencoded"))  # fmt: skip
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
            acks.append(time.perf_counter() - started)
            fake.wait_for("chat.postMessage", before + 6, timeout=120)  # the request message and 5 candidates
            lasts.append(time.perf_counter() - started)
        runner.stop()
        deps.pool.shutdown(timeout=10)
    fake.stop()
    ack, last = statistics.median(acks), statistics.median(lasts)
    print("| measure | median | max | target |\n|---|---|---|---|")
    print(f"| ack of /copy | {ack * 1000:.0f} ms | {max(acks) * 1000:.0f} ms | under {TARGET_ACK_S:.0f} s: "
          f"{'met' if max(acks) < TARGET_ACK_S else 'NOT MET'} |")  # fmt: skip
    print(f"| /copy to the last of 5 candidates posted | {last:.2f} s | {max(lasts):.2f} s | under "
          f"{TARGET_LAST_S:.0f} s (median): {'met' if last < TARGET_LAST_S else 'NOT MET'} |")  # fmt: skip


if __name__ == "__main__":
    main()
