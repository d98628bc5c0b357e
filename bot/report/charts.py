"""The report's charts as PNG files, drawn with matplotlib (Agg) in Nanum Gothic so that Hangul renders.

koreanize-matplotlib ships the font; we register its files with matplotlib and make it the family. Each chart has a
Korean alt text for Slack. A missing glyph is a bug: matplotlib only warns about it, so tests turn that into a
failure (tests/bot/test_report.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.report.build import WeeklyReport

AGES = ["10대", "20대", "30대", "40대", "50대", "60대+"]
DPI = 110


def _font_files() -> list[Path]:
    """Nanum Gothic from the koreanize-matplotlib package, found without importing it (its import uses
    distutils, which Python 3.12 no longer has)."""
    import importlib.util

    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or spec.origin is None:
        raise RuntimeError("koreanize-matplotlib is not installed; the report's Korean charts need its font "
                           "(pip install koreanize-matplotlib)")  # fmt: skip
    return sorted((Path(spec.origin).parent / "fonts").glob("NanumGothic*.ttf"))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    if "NanumGothic" not in {f.name.replace(" ", "") for f in font_manager.fontManager.ttflist}:
        for path in _font_files():
            font_manager.fontManager.addfont(str(path))
    plt.rcParams["font.family"] = "NanumGothic"
    plt.rcParams["axes.unicode_minus"] = False  # Nanum Gothic has no U+2212 minus sign
    return plt


def draw_charts(report: WeeklyReport, out_dir: Path) -> dict[str, dict[str, str]]:
    """Write the PNGs into `out_dir`; returns name -> {"path", "title", "alt"} (the loss chart only if trained)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = {"trend": _trend(report, out_dir), "age": _by_age(report, out_dir)}
    losses = ((report.run or {}).get("metrics") or {}).get("losses") or {}
    if losses.get("train"):
        charts["loss"] = _losses(losses, report, out_dir)
    report.charts = charts
    return charts


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return str(path)


def _trend(report: WeeklyReport, out_dir: Path) -> dict[str, str]:
    plt = _pyplot()
    weeks = [row["week"][-3:] for row in report.trend]  # "W48"
    volume = [row["requests"] for row in report.trend]
    rates = [None if row["win_rate"] is None else 100 * row["win_rate"] for row in report.trend]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.bar(weeks, volume, color="#9db4d3", label="요청 수")
    ax.set_ylabel("요청 수")
    ax.set_title("주간 요청 수와 우승작 비율")
    right = ax.twinx()
    right.plot(weeks, [r if r is not None else float("nan") for r in rates], color="#d1495b", marker="o",
               label="우승작이 나온 요청 비율")  # fmt: skip
    right.set_ylabel("우승 비율 (%)")
    right.set_ylim(0, 100)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=8)
    path = _save(fig, out_dir / "trend.png")
    last = f"{volume[-1]}건, 우승 비율 {rates[-1]:.0f}%" if rates[-1] is not None else f"{volume[-1]}건"
    return {"path": path, "title": "주간 요청 수와 우승 비율",
            "alt": f"최근 {len(weeks)}주 요청 수(막대)와 우승작이 나온 요청 비율(선). 이번 주 {last}."}  # fmt: skip


def _by_age(report: WeeklyReport, out_dir: Path) -> dict[str, str]:
    plt = _pyplot()
    by_age = report.this["win_rate_by"]["age_group"]
    ages = [a for a in AGES if a in by_age] + sorted(a for a in by_age if a not in AGES)
    rates = [100 * (by_age[a]["rate"] or 0) for a in ages]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    bars = ax.bar(ages or ["없음"], rates or [0], color="#6a994e")
    for bar, age in zip(bars, ages, strict=False):
        ax.annotate(f"{by_age[age]['won']}/{by_age[age]['requests']}", (bar.get_x() + bar.get_width() / 2,
                    bar.get_height()), ha="center", va="bottom", fontsize=8)  # fmt: skip
    ax.set_ylim(0, 105)
    ax.set_ylabel("우승 비율 (%)")
    ax.set_title(f"연령대별 우승 비율 ({report.week.label})")
    path = _save(fig, out_dir / "win_rate_by_age.png")
    summary = ", ".join(f"{a} {r:.0f}%" for a, r in zip(ages, rates, strict=True)) or "요청 없음"
    return {"path": path, "title": "연령대별 우승 비율", "alt": f"연령대별로 우승작이 나온 요청 비율: {summary}."}


def _losses(losses: dict[str, Any], report: WeeklyReport, out_dir: Path) -> dict[str, str]:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for key, label, color in (("train", "학습 손실", "#3d5a80"), ("eval", "검증 손실", "#ee6c4d")):
        points = losses.get(key) or []
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label, color=color)
    ax.set_xlabel("에폭")
    ax.set_ylabel("손실")
    version = (report.run or {}).get("result_version") or ""
    ax.set_title(f"이번 학습의 손실 곡선 {version}".strip())
    ax.legend(fontsize=8)
    path = _save(fig, out_dir / "loss_curves.png")
    train, held = losses.get("train") or [], losses.get("eval") or []
    end = f"학습 손실 {train[0][1]:.2f}→{train[-1][1]:.2f}" + (
        f", 검증 손실 {held[0][1]:.2f}→{held[-1][1]:.2f}" if held else ""
    )
    return {"path": path, "title": "학습·검증 손실 곡선", "alt": f"이번 재학습의 에폭별 손실: {end}."}
