"""The weekly retrain on a schedule: APScheduler's cron trigger inside `copybot serve`, slots recorded in the store.

Each cron time is a *slot*. `run_due()` runs the latest slot that has come and is not recorded yet, and records it
first (a unique row per slot), so:
- the regular trigger and the catch-up at start never run the same week twice, nor do two processes;
- a bot that was down across one or more scheduled times runs once after it starts, for the latest slot only;
- the first start records a baseline, so a fresh install does not owe the weeks before it existed.
The clock is injectable, so tests move time instead of sleeping.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.settings import Settings
from storage import Store
from storage.base import iso, utc_now

log = logging.getLogger(__name__)

JOB = "weekly_retrain"
MISFIRE_GRACE_S = 3600  # a trigger up to an hour late (a busy or suspended process) still runs on time


WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]  # standard cron: 0 and 7 are Sunday


def _standard_weekdays(field: str) -> str:
    """Standard cron weekday numbers as names. APScheduler 3 counts 0 as Monday, even in `from_crontab`, so
    '0 9 * * 1' would fire on Tuesdays; names mean the same thing to both."""
    out: list[str] = []
    for part in field.split(","):
        if re.fullmatch(r"[0-7]", part):
            out.append(WEEKDAYS[int(part)])
        elif match := re.fullmatch(r"([0-7])-([0-7])", part):
            out.extend(WEEKDAYS[i] for i in range(int(match.group(1)), int(match.group(2)) + 1))
        elif re.search(r"\d", part.split("/")[0]):
            raise ValueError(f"weekday {part!r}: write weekdays as numbers 0-7, ranges such as 1-5, or names (MON)")
        else:
            out.append(part)
    return ",".join(dict.fromkeys(out))


def cron_trigger(settings: Settings) -> CronTrigger:
    """COPYBOT_RETRAIN_CRON in COPYBOT_TIMEZONE; a bad expression raises ValueError naming it."""
    try:
        minute, hour, day, month, weekday = settings.retrain_cron.split()
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_standard_weekdays(weekday),
                           timezone=ZoneInfo(settings.timezone))  # fmt: skip
    except ValueError as exc:
        raise ValueError(f"COPYBOT_RETRAIN_CRON={settings.retrain_cron!r} is not a valid cron expression: {exc}; "
                         "use minute hour day month weekday, e.g. '0 9 * * MON'") from exc  # fmt: skip


def next_runs(trigger: CronTrigger, now: datetime, count: int = 3) -> list[datetime]:
    """The next `count` fire times after `now`."""
    out: list[datetime] = []
    moment = now
    for _ in range(count):
        fire = trigger.get_next_fire_time(out[-1] if out else None, moment)
        if fire is None:
            break
        out.append(fire)
        moment = fire + timedelta(microseconds=1)
    return out


def latest_slot(trigger: CronTrigger, after: datetime, now: datetime) -> datetime | None:
    """The last fire time in (after, now], or None if none has come."""
    last = None
    fire = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return last


@dataclass
class WeeklySchedule:
    """Runs `job(slot)` for due slots; `job` returns a JSON-able summary that is stored with the slot."""

    store: Store
    trigger: CronTrigger
    job: Callable[[datetime], dict[str, Any]]
    clock: Callable[[], datetime] = utc_now
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _scheduler: BackgroundScheduler | None = None

    def baseline(self) -> None:
        """On the very first start, record now as the baseline: earlier slots are not owed."""
        if self.store.last_scheduled_run(JOB) is None:
            self.store.claim_scheduled_run(JOB, iso(self.clock()), status="baseline")

    def due(self) -> datetime | None:
        """The latest slot that has come since the last recorded one, if any."""
        last = self.store.last_scheduled_run(JOB)
        if last is None:
            return None
        return latest_slot(self.trigger, datetime.fromisoformat(last["slot"]), self.clock())

    def run_due(self) -> dict[str, Any] | None:
        """Run the due slot once (claiming it first); None when nothing is due or another run claimed it."""
        with self._lock:
            slot = self.due()
            if slot is None:
                return None
            run_id = self.store.claim_scheduled_run(JOB, iso(slot))
            if run_id is None:
                log.info("scheduled retrain for %s already ran", slot.isoformat())
                return None
        log.info("scheduled retrain for %s starting", slot.isoformat())
        try:
            result = self.job(slot)
        except Exception as exc:
            log.exception("scheduled retrain for %s failed", slot.isoformat())
            self.store.finish_scheduled_run(run_id, status="failed", error=repr(exc))
            return {"status": "failed", "error": repr(exc)}
        self.store.finish_scheduled_run(run_id, status="succeeded", result=result)
        log.info("scheduled retrain for %s finished: %s", slot.isoformat(), result)
        return result

    def start(self) -> None:
        """Start APScheduler with the cron job, and catch up on a missed slot in the background right away."""
        self.baseline()
        scheduler = BackgroundScheduler(timezone=self.trigger.timezone)
        scheduler.add_job(self.run_due, self.trigger, id=JOB, name="weekly retrain and report", max_instances=1,
                          coalesce=True, misfire_grace_time=MISFIRE_GRACE_S)  # fmt: skip
        scheduler.add_job(self.run_due, id=f"{JOB}-catch-up", max_instances=1)  # no trigger: once, right away
        scheduler.start()
        self._scheduler = scheduler
        log.info("weekly retrain scheduled; next runs: %s", ", ".join(t.isoformat() for t in self.upcoming()))

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)

    def upcoming(self, count: int = 3) -> list[datetime]:
        return next_runs(self.trigger, self.clock(), count)
