"""Time to build the weekly report, charts and Markdown included, from a store holding 20,000 requests (100,000
candidates) and 100,000 feedback events over 8 weeks. Target: under 5 seconds.

Run: python -m benchmarks.report [--requests 20000] [--events 100000] [--repeats 3]. The store is filled with
bulk inserts (its shape is what the bot writes); the time measured is `build_report` + `write_report`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.report.build import build_report
from bot.report.publish import write_report
from bot.report.weeks import Week
from storage import Store
from storage.base import iso

TARGET_S = 5.0
AGES = ["10대", "20대", "30대", "40대", "50대", "60대+"]
CHANNELS = ["sns", "sms", "push", "banner", "print"]
EVENTS = ["여름 세일", "추석", "신상품 입고", "블랙프라이데이", ""]


def fill(store: Store, requests: int, events: int, end: datetime) -> None:
    """Bulk-insert requests over the 8 weeks before `end`, 5 candidates each, and random reactions."""
    rng = random.Random(7)
    span = timedelta(weeks=8).total_seconds()
    request_rows, candidate_rows = [], []
    for rid in range(1, requests + 1):
        created = iso(end - timedelta(seconds=rng.random() * span))
        request_rows.append((rid, created, "slack", f"상품 {rid % 300}", rng.choice(EVENTS), rng.choice(AGES),
                             rng.choice(CHANNELS), 5, f"U{rng.randrange(60)}", "done"))  # fmt: skip
        for rank in range(1, 6):
            flags = json.dumps(["absolute: 최고"] if rng.random() < 0.05 else [], ensure_ascii=False)
            candidate_rows.append(((rid - 1) * 5 + rank, rid, rank, f"카피 {rid}-{rank} 지금 만나 보세요", "polite",
                                   int(rng.random() < 0.93), flags, 20, "v0001", created))  # fmt: skip
    feedback_rows = []
    for i in range(1, events + 1):
        cid = rng.randrange(1, requests * 5 + 1)
        signal = rng.choices(["up", "down", "win"], [5, 2, 2])[0]
        action = "removed" if rng.random() < 0.05 else "added"
        feedback_rows.append((f"E{i}", cid, (cid - 1) // 5 + 1, f"U{rng.randrange(60)}", action, signal,
                              f"{1700000000 + i}.0", iso(end)))  # fmt: skip
    db = store.db
    with db.conn:
        db.conn.executemany("insert into requests (id, created_at, source, product, event, age_group, channel, n, "
                            "user_id, status) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", request_rows)  # fmt: skip
        db.conn.executemany("insert into candidates (id, request_id, rank, text, register, register_ok, flags, length, "
                            "model_version, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", candidate_rows)  # fmt: skip
        db.conn.executemany("insert into feedback_events (event_id, candidate_id, request_id, user_id, action, signal, "
                            "event_ts, received_at) values (?, ?, ?, ?, ?, ?, ?, ?)", feedback_rows)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tz = ZoneInfo("Asia/Seoul")
    week = Week.containing(datetime.now(UTC), tz).shifted(-1)
    with tempfile.TemporaryDirectory() as scratch:
        store = Store.open(Path(scratch) / "copybot.db")
        started = time.perf_counter()
        fill(store, args.requests, args.events, week.end)
        print(f"filled {args.requests:,} requests, {args.requests * 5:,} candidates, {args.events:,} feedback events "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        times, build_times = [], []
        for i in range(args.repeats):
            started = time.perf_counter()
            report = build_report(store, week)
            built = time.perf_counter()
            write_report(report, Path(scratch) / f"out{i}")
            times.append(time.perf_counter() - started)
            build_times.append(built - started)
    median = statistics.median(times)
    print(f"weekly report {week.label}: median {median:.2f} s over {args.repeats} runs (figures "
          f"{statistics.median(build_times):.2f} s, charts and Markdown the rest); this week {report.this['requests']:,} "
          f"requests; target under {TARGET_S:.0f} s: {'met' if median < TARGET_S else 'NOT MET'}")  # fmt: skip


if __name__ == "__main__":
    main()
