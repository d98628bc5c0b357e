"""Database growth: the SQLite file's size per 10,000 requests, written through the store exactly as the bot writes
them (request, 5 candidates with Slack message ids, 3 reactions, an edit every 10th request).

Run: python -m benchmarks.db_growth [--batches 2]. Each batch adds 10,000 requests; the growth per batch shows
whether the cost per request stays flat. Target: at most 50 MB per 10,000 requests (a team of 50 making 40
requests a day each would then need about 1 GB a year).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from storage import Store

BATCH = 10_000
TARGET_MB = 50.0
TEXTS = ["여름엔 린넨이죠! 가볍게 입어 보세요 😊", "오늘만 20% 할인해요, 지금 만나 보세요", "시원함을 선물해요. 린넨 셔츠 특가",
         "귀한 분께 정성을 담아 드립니다.", "가볍고 시원한 여름, 린넨으로 시작해요"]  # fmt: skip


def add_batch(store: Store, start: int) -> None:
    for i in range(start, start + BATCH):
        brief = {"product": f"린넨 셔츠 {i % 500}", "event": "여름 세일", "age_group": "20대", "channel": "sns", "n": 5}
        rid = store.record_request(brief, source="slack", user_id=f"U{i % 50:04d}")
        store.set_request_message(rid, slack_channel="C0001", slack_ts=f"{1700000000 + i}.000000")
        ids = store.save_candidates(rid, [{"text": t, "register": "polite", "register_ok": True, "flags": []}
                                          for t in TEXTS], model_version="v0003", generate_ms=900)  # fmt: skip
        for rank, cid in enumerate(ids):
            store.set_candidate_message(cid, slack_channel="C0001", slack_ts=f"{1700000000 + i}.{rank + 1:06d}")
        for j, signal in enumerate(("up", "win", "down")):
            store.record_feedback(event_id=f"Ev{i}-{j}", candidate_id=ids[j], user_id="U0002", action="added",
                                  signal=signal, reaction={"up": "+1", "win": "trophy", "down": "-1"}[signal],
                                  event_ts=f"{1700000000 + i}.5")  # fmt: skip
        if i % 10 == 0:
            store.record_edit(candidate_id=ids[0], user_id="U0003", edited_text="여름엔 린넨, 가볍게 입어요")


def size_mb(path: Path) -> float:
    """The database and its WAL, after a checkpoint folds the WAL back in."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "copybot.db"
        store = Store.open(path)
        sizes = [size_mb(path)]
        print("| requests | file size | growth of this batch | seconds |\n|---|---|---|---|")
        for b in range(args.batches):
            started = time.perf_counter()
            add_batch(store, b * BATCH)
            store.db.execute("pragma wal_checkpoint(TRUNCATE)")
            sizes.append(size_mb(path))
            print(f"| {(b + 1) * BATCH:,} | {sizes[-1]:.1f} MB | {sizes[-1] - sizes[-2]:.1f} MB | "
                  f"{time.perf_counter() - started:.0f} |", flush=True)  # fmt: skip
    per_batch = (sizes[-1] - sizes[1]) / max(1, args.batches - 1) if args.batches > 1 else sizes[1] - sizes[0]
    print(f"growth: {per_batch:.1f} MB per 10,000 requests (steady state); target at most {TARGET_MB:.0f} MB: "
          f"{'met' if per_batch <= TARGET_MB else 'NOT MET'}")  # fmt: skip


if __name__ == "__main__":
    main()
