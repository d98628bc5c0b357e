"""The weekly job: retrain from the feedback so far, then report the week that just ended (to Slack and to disk).

The same function serves the schedule (`trigger="schedule"`) and `/copy retrain` (`"admin"`); from the command
line, `copybot retrain` runs the retrain alone and `copybot report` the report alone. A retrain that is skipped,
kept or failed is still reported, with the reason.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk import WebClient

from bot.learning.retrain import RetrainBusy, Retrainer
from bot.report.build import build_report
from bot.report.publish import post_report, write_report
from bot.report.weeks import Week
from bot.settings import Settings
from storage import Store

log = logging.getLogger(__name__)


def report_dir(settings: Settings, week: Week) -> Path:
    """Where a week's report is written: COPYBOT_HOME/reports/<week>."""
    return settings.home / "reports" / week.label


def retrain_and_report(settings: Settings, store: Store, client: WebClient | None, *, trigger: str, now: datetime,
                       retrainer: Retrainer | None = None) -> dict[str, Any]:  # fmt: skip
    """Retrain, then build, write and (with a client) post the report of the last full week before `now`."""
    try:
        outcome = (retrainer or Retrainer(settings, store)).run(trigger=trigger)
        retrain = {"status": outcome.status, "version": outcome.version, "message": outcome.message}
        # The job reports the run it just made: looking it up by date finds it only when the clock agrees with `now`.
        run = store.training_run(outcome.run_id) if outcome.run_id is not None else None
    except RetrainBusy as exc:
        retrain = {"status": "busy", "version": "", "message": str(exc)}
        run = None
    week = Week.containing(now, ZoneInfo(settings.timezone)).shifted(-1)
    report = build_report(store, week, run=run)
    folder = report_dir(settings, week)
    if client is not None:
        posted = post_report(client, settings.report_channel, report, folder)
    else:
        write_report(report, folder)
        posted = False
    log.info("weekly job (%s): retrain %s; report %s %s", trigger, retrain["status"], week.label,
             "posted" if posted else f"kept at {folder}")  # fmt: skip
    return {"retrain": retrain, "week": week.label, "posted": posted, "report": str(folder / "report.md")}
