"""Where a report goes: a folder (Markdown plus PNGs) and the report channel (Block Kit plus files_upload_v2)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.report.build import WeeklyReport
from bot.report.charts import draw_charts
from bot.report.text import (
    SUMMARY_ROWS,
    change,
    performance_ko,
    retrain_sentence,
    reward_sentence,
    to_markdown,
    value,
)

log = logging.getLogger(__name__)

# Slack errors that mean the channel is wrong or the bot is not in it, and what the operator should do
CHANNEL_PROBLEMS = {
    "channel_not_found": "does not exist or is private and the bot was not invited; check COPYBOT_REPORT_CHANNEL "
    "(a channel id such as C012ABCDEF) and /invite @copybot there",
    "not_in_channel": "is a channel the bot is not a member of; run /invite @copybot in it",
    "is_archived": "is archived; unarchive it or set COPYBOT_REPORT_CHANNEL to another channel",
}


def write_report(report: WeeklyReport, out_dir: Path) -> Path:
    """Charts and report.md into `out_dir` (created); returns the Markdown file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    draw_charts(report, out_dir)
    path = out_dir / "report.md"
    path.write_text(to_markdown(report, out_dir), "utf-8")
    return path


def report_blocks(report: WeeklyReport) -> list[dict[str, Any]]:
    """The Block Kit summary posted above the charts."""
    t, last = report.this, report.last
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{value(t[key], kind)} ({change(t[key], last[key], kind)})"}
              for key, label, kind in SUMMARY_ROWS[:6]]  # fmt: skip
    top = "\n".join(f"{i}. {c['text']} _({c['age_group']} · {c['channel']})_" for i, c in
                    enumerate(t["top_copies"][:3], start=1)) or "우승작이 아직 없어요."  # fmt: skip
    best = "\n".join(f"{i}. {c['text']} _({performance_ko(c)} · {c['age_group']} · {c['channel']})_" for i, c in
                     enumerate((t.get("best_performers") or [])[:3], start=1))  # fmt: skip
    return [
        {"type": "header", "text": {"type": "plain_text", "text": report.title}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{report.week.period()} · 지난주 대비 · 지금 쓰는 모델 *{report.active_version}*",
                }
            ],
        },
        {"type": "section", "fields": fields},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*재학습*\n{retrain_sentence(report)}"
                + (f"\n{reward_sentence(report)}" if reward_sentence(report) else ""),
            },
        },
        *(
            [{"type": "section", "text": {"type": "mrkdwn", "text": f"*새 모델 시험*\n{report.trial}"}}]
            if report.trial
            else []
        ),
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*이번 주 우승작*\n{top}"}},
        *(
            [{"type": "section", "text": {"type": "mrkdwn", "text": f"*실제 성과가 좋았던 카피*\n{best}"}}]
            if best
            else []
        ),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"사람이 고친 카피 {t['edit_count']}건 · "
                    "자세한 내용은 아래 차트와 `copybot report`로 볼 수 있어요.",
                }
            ],
        },
    ]


def post_report(client: WebClient, channel: str | None, report: WeeklyReport, out_dir: Path) -> bool:
    """Post the summary and upload the charts (with alt text); on a channel problem, log exactly what is wrong and
    keep the report on disk. Returns whether it was posted."""
    path = write_report(report, out_dir)
    if not channel:
        log.warning("report %s kept at %s: COPYBOT_REPORT_CHANNEL is not set, so it was not posted", report.week.label,
                    path)  # fmt: skip
        return False
    try:
        client.chat_postMessage(channel=channel, text=report.title, blocks=report_blocks(report))
        uploads = [{"file": c["path"], "filename": Path(c["path"]).name, "title": c["title"], "alt_txt": c["alt"]}
                   for c in report.charts.values()]  # fmt: skip
        client.files_upload_v2(channel=channel, file_uploads=uploads, initial_comment=f"{report.title} 차트")
    except SlackApiError as exc:
        error = str(exc.response.get("error"))
        problem = CHANNEL_PROBLEMS.get(error, f"answered {error}")
        log.error("report %s not posted: the report channel %s %s; the report is kept at %s", report.week.label,
                  channel, problem, path)  # fmt: skip
        return False
    log.info("report %s posted to %s (%d charts)", report.week.label, channel, len(report.charts))
    return True
