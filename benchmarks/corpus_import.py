"""Corpus import speed: 10,000 copies (about the size of Lewis's corpus) from a UTF-8 CSV, with cleaning,
register detection, de-duplication, the split, and the SQLite write.

Run: python -m benchmarks.corpus_import. Target: 10,000 rows in at most 15 s on 2 cores.
The rows are the starter corpus's copies, each made distinct with a numbered suffix.
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path

from bot.corpus_io import language_checks
from model.starter.corpus import load_corpus
from storage import Store
from storage.corpus import prepare_import

ROWS = 10_000
TARGET_S = 15.0


def write_csv(path: Path) -> None:
    starter = load_corpus()
    with path.open("w", encoding="utf-8-sig", newline="") as handle:  # Excel "CSV UTF-8"; CP949 has no emoji
        writer = csv.writer(handle)
        writer.writerow(["카피", "제품", "카테고리", "행사", "연령", "채널", "성과"])
        for i in range(ROWS):
            row = starter[i % len(starter)]
            writer.writerow([f"{row['text']} ({i})", row["product"], row["category"], row["event_name"],
                             row["age_group"], row["channel"], f"{(i % 50) / 10:.1f}"])  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "copies.csv"
        write_csv(path)
        store = Store.open(Path(tmp) / "bench.db")
        checks = language_checks()
        checks.detect_registers(["준비했습니다"])  # load Kiwi before timing
        started = time.perf_counter()
        rows, report = prepare_import(path, checks=checks, source="bench", existing=store.stored_corpus_rows)
        inserted = store.add_corpus_rows(rows)
        seconds = time.perf_counter() - started
    assert inserted == ROWS and not report.bad, (inserted, report.bad[:3])
    print(f"| import {ROWS:,} rows (CSV, register detection, SQLite) | {seconds:.1f} s | <= {TARGET_S:.0f} s |")
    print(f"| rows per second | {ROWS / seconds:,.0f} | >= {ROWS / TARGET_S:,.0f} |")


if __name__ == "__main__":
    main()
