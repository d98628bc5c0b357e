"""The report as Korean text: Markdown for `copybot report` and the sentences the Slack blocks reuse."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from bot.learning.trials import WAITING
from bot.report.build import WeeklyReport

SUMMARY_ROWS = [
    ("requests", "요청", "count"),
    ("candidates", "후보", "count"),
    ("requesters", "요청한 사람", "count"),
    ("reaction_rate", "반응률 (반응이 달린 후보)", "share"),
    ("win_rate", "우승 비율 (우승작이 나온 요청)", "share"),
    ("register_match", "말투 일치율", "share"),
    ("flagged", "주의 표현이 걸린 후보", "share"),
    ("ungrounded", "브리프에 없는 수치·혜택이 남은 후보", "share"),
]
METRIC_ROWS = [
    ("val_loss", "피드백 검증 손실 (낮을수록 좋음)"),
    ("corpus_loss", "코퍼스 손실 (잊어버림 확인)"),
    ("preference_accuracy", "선호 정확도"),
    ("register_match", "말투 일치율"),
    ("distinct_2", "다양성 (distinct-2)"),
    ("compliance_flag_rate", "주의 표현 비율"),
    ("temperature_scale", "샘플링 온도 배율 (다양성 보정)"),
]
GROUP_NAMES = {"age_group": "연령대", "event": "행사", "channel": "채널"}


def value(v: float | int | None, kind: str) -> str:
    if v is None:
        return "–"
    return f"{v:.0%}" if kind == "share" else f"{v:,}"


def change(now: float | int | None, before: float | int | None, kind: str) -> str:
    if now is None or before is None:
        return "–"
    diff = now - before
    return f"{diff * 100:+.0f}%p" if kind == "share" else f"{diff:+,}"


def retrain_sentence(report: WeeklyReport) -> str:
    """One sentence on what the week's retrain did."""
    run = report.run
    if run is None:
        return "이번 주에는 재학습이 없었어요."
    status, version = run["status"], run.get("result_version") or ""
    if status == "skipped" and str(run.get("error") or "").startswith(WAITING):
        return "새 모델 시험이 아직 진행 중이라 재학습은 시험이 끝난 뒤로 미뤘어요."
    if status == "skipped":
        return f"피드백이 부족해 재학습을 건너뛰었어요. ({run.get('error') or ''})"
    if status == "failed":
        return f"재학습이 실패했어요. 지금 모델을 그대로 써요. 운영자 로그를 확인해 주세요. ({run.get('error') or ''})"
    if status == "running":
        return "재학습이 아직 진행 중이에요."
    if run.get("gate_decision") == "promoted":
        return f"새 모델 {version}이(가) 검증을 통과해 적용됐어요."
    if run.get("gate_decision") == "trial":
        return (f"새 모델 {version}이(가) 안전 검사를 통과해, 실제 요청에서 지금 모델과 나눠 쓰며 비교하는 시험을 "
                "시작했어요. 후보에 달린 반응으로 적용 여부를 정해요.")  # fmt: skip
    parent = run.get("parent_version") or "기본 모델"
    return f"새 모델 {version}은(는) 검증을 통과하지 못해, {parent}을(를) 계속 써요."


def stopped_sentence(report: WeeklyReport) -> str | None:
    """Why the week's training stopped early (the forgetting budget), when it did."""
    stopped = (((report.run or {}).get("metrics") or {}).get("losses") or {}).get("stopped")
    if not stopped:
        return None
    return f"학습은 기존 카피를 잊기 시작해 일찍 멈췄고, 그 전의 가장 좋은 상태를 남겼어요. ({stopped})"


def reward_sentence(report: WeeklyReport) -> str | None:
    """What the run did with the reranker's reward model (its AUROC on held-out reactions), or None."""
    reward = ((report.run or {}).get("metrics") or {}).get("reward") or {}
    if not reward:
        return None
    new, current = reward.get("auroc_new"), reward.get("auroc_current")
    judged = f"보류한 반응 {reward.get('heldout', 0)}개 기준 AUROC {new:.2f}" if new is not None else "평가할 반응 부족"
    if current is not None:
        judged += f" (지금 쓰던 보상 모델 {current:.2f})"
    chosen = {
        "new": "새 보상 모델로 후보 2배수 중 나은 것을 골라 보여 줘요",
        "current": "지금 쓰던 보상 모델을 계속 써요",
        "none": "믿을 만한 보상 모델이 없어 후보를 고르지 않고 그대로 보여 줘요",
    }.get(reward.get("chosen", "none"), "")
    return f"보상 모델(반응 예측): {judged} → {chosen}."


def metric_rows(report: WeeklyReport) -> list[tuple[str, str, str, str]]:
    """(label, active, new, change) for the run's held-out metrics."""
    metrics = (report.run or {}).get("metrics") or {}
    old, new = metrics.get("old") or {}, metrics.get("new") or {}
    rows = []
    for key, label in METRIC_ROWS:
        if key in old and key in new:
            rows.append((label, f"{old[key]:.3f}", f"{new[key]:.3f}", f"{new[key] - old[key]:+.3f}"))
    return rows


def data_counts(report: WeeklyReport) -> dict[str, Any]:
    summary = (report.run or {}).get("dataset_summary") or {}
    counts: dict[str, Any] = summary.get("counts") or {}
    return counts


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # with [ and ] escaped, no link or image can form


def md(text: Any) -> str:
    """Text from people (copies, edits, products) as literal Markdown: its marks escaped, HTML shown as text, on one
    line, so that an edit such as `![](http://…/pixel.png)`, `<img onerror=…>` or a `|` inside a table cell renders
    as typed and loads nothing."""
    plain = " ".join("".join(c for c in str(text) if c.isprintable() or c.isspace()).split())
    return _MD_SPECIAL.sub(r"\\\1", plain).replace("<", "&lt;").replace(">", "&gt;")


def performance_ko(row: dict[str, Any]) -> str:
    """'CTR 3.20% (320/10,000) · 전환 12건' for a best-performer row."""
    counts = f" ({row['clicks']:,}/{row['sends']:,})" if row.get("sends") and row.get("clicks") is not None else ""
    conversions = f" · 전환 {row['conversions']:,}건" if row.get("conversions") is not None else ""
    return f"CTR {row['ctr']:.2%}{counts}{conversions}"


def to_markdown(report: WeeklyReport, out_dir: Path) -> str:
    """The whole report; chart links are relative to `out_dir`, where report.md is written."""
    t, last = report.this, report.last
    lines = [f"# {report.title}", "", f"기간: {report.week.period()} · 지금 쓰는 모델: {report.active_version}", "",
             "## 한눈에 보기", "", "| 항목 | 이번 주 | 지난주 | 변화 |", "|---|---|---|---|"]  # fmt: skip
    for key, label, kind in SUMMARY_ROWS:
        lines.append(
            f"| {label} | {value(t[key], kind)} | {value(last[key], kind)} | {change(t[key], last[key], kind)} |"
        )
    lines += ["", "## 재학습 결과", "", retrain_sentence(report), ""]
    if stopped_sentence(report):
        lines += [str(stopped_sentence(report)), ""]
    if reward_sentence(report):
        lines += [str(reward_sentence(report)), ""]
    rows = metric_rows(report)
    if rows:
        lines += ["| 지표 (보류한 피드백 기준) | 지금 모델 | 새 모델 | 변화 |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
        lines.append("")
    reasons = (report.run or {}).get("gate_reasons") or []
    if reasons:
        lines += ["판단 근거:", "", *[f"- {r}" for r in reasons], ""]
    if report.trial:
        lines += ["## 새 모델 시험", "", report.trial, ""]
    counts = data_counts(report)
    if counts:
        lines += ["학습 데이터: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), ""]
    for key, name in GROUP_NAMES.items():
        groups = t["win_rate_by"][key]
        if groups:
            lines += [f"## {name}별 우승 비율", "", f"| {name} | 요청 | 우승 | 비율 |", "|---|---|---|---|"]
            lines += [
                f"| {md(g)} | {v['requests']} | {v['won']} | {value(v['rate'], 'share')} |" for g, v in groups.items()
            ]
            lines.append("")
    lines += ["## 이번 주 우승작", ""]
    lines += [f"{i}. {md(c['text'])} — {md(c['product'])} · {md(c['age_group'])} · {md(c['channel'])} "
              f"(🏆 {c['win']}, 👍 {c['up']})"
              for i, c in enumerate(t["top_copies"], start=1)] or ["우승작이 아직 없어요."]  # fmt: skip
    lines += ["", "## 실제 성과가 좋았던 카피", ""]
    lines += [f"{i}. {md(c['text'])} — {performance_ko(c)} ({md(c['product'])} · {md(c['age_group'])} · {md(c['channel'])}, "
              f"후보 ID {c['candidate_id']})" for i, c in enumerate(t.get("best_performers") or [], start=1)] or [
        "이번 주에 들어온 캠페인 결과가 없어요. 보낸 카피의 결과는 `copybot results import`로 가져와요."]  # fmt: skip
    lines += ["", f"## 사람이 고친 카피 ({t['edit_count']}건)", ""]
    lines += [
        f"- {md(e['original'])} → **{md(e['edited'])}** ({md(e['product'])} · {md(e['age_group'])})" for e in t["edits"]
    ] or ["고친 카피가 없어요."]
    if report.charts:
        lines += ["", "## 차트", ""]
        for chart in report.charts.values():
            rel = os.path.relpath(chart["path"], out_dir)
            lines += [f"![{chart['alt']}]({rel})", ""]
    return "\n".join(lines).rstrip() + "\n"
