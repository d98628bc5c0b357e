"""How often the starter's copy fits a promotional message whole (정보통신망법 frame included), on the first try
and after the writer's retries.

Run: python -m benchmarks.framed_fit. For SMS and push, 18 briefs (3 products x 6 age groups) x 5 candidates,
with the frame's placeholders (the longest realistic sender and opt-out number): the share of candidates whose
framed message is within the channel's limit when written once (the raw model, as the gate measures it) and when
the writer may write a too-long body again (at most 2 extra rounds, as the bot serves it). Target: at least 80 %
served within the limit.
"""

from __future__ import annotations

import time
from pathlib import Path

from bot.settings import Settings
from model.starter.build import ensure_starter
from model.writing.brief import Brief
from model.writing.engine import LocalEngine
from model.writing.frame import AdFrame
from model.writing.writer import CopyWriter

BRIEFS = [("린넨 셔츠", "여름 세일"), ("한우 세트", "추석"), ("수분 크림", "신상품 입고")]
AGES = ["10대", "20대", "30대", "40대", "50대", "60대+"]
TARGET = 0.8


def fit_share(writer: CopyWriter, channel: str) -> tuple[float, int]:
    fits = total = 0
    for i, age in enumerate(AGES):
        for product, event in BRIEFS:
            result = writer.write(Brief.create(product=product, event=event, age=age, channel=channel, n=5), seed=i)
            total += len(result.candidates)
            fits += sum(not any(f.startswith("too_long") for f in c.flags) for c in result.candidates)
    return fits / max(1, total), total


def main() -> None:
    engine = LocalEngine(Path(ensure_starter(Settings.from_env({}).starter_dir, progress=False)), version="starter")
    frame = AdFrame()  # placeholders: "[발신자명]", "[080-000-0000]"
    print("| channel | body budget | fits, first try | fits, as served | candidates | seconds |")
    print("|---|---|---|---|---|---|")
    for channel in ("sms", "push"):
        started = time.perf_counter()
        raw, total = fit_share(CopyWriter(engine, frame=frame, max_extra_rounds=0), channel)
        served, _ = fit_share(CopyWriter(engine, frame=frame), channel)
        unit = "bytes" if channel == "sms" else "chars"
        print(f"| {channel} | {frame.budget(channel)} {unit} | {raw:.1%} | {served:.1%} | {total} | "
              f"{time.perf_counter() - started:.0f} |")  # fmt: skip
        print(f"{channel}: {'met' if served >= TARGET else 'not met'} (target {TARGET:.0%} served within the limit)")


if __name__ == "__main__":
    main()
