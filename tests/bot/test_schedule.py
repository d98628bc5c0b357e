"""The weekly schedule with a controllable clock: trigger times across time zones, catch-up after downtime without
double runs, failures, APScheduler really firing the catch-up, the weekly job end to end, and `copybot schedule`."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.learning.schedule import JOB, WeeklySchedule, cron_trigger, latest_slot, next_runs
from bot.learning.weekly import retrain_and_report
from bot.settings import Settings
from storage import Store
from tests.bot.report_data import Clock
from tests.cli import run
from tests.fakes.slack_api import FakeSlack


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"COPYBOT_HOME": str(tmp_path / "home"), **env})


def test_the_default_is_monday_0900_in_seoul(tmp_path: Path) -> None:
    trigger = cron_trigger(_settings(tmp_path))
    runs = next_runs(trigger, datetime(2026, 11, 29, 0, 0, tzinfo=UTC), 3)  # Sunday, 09:00 in Seoul
    assert [r.astimezone(UTC).isoformat() for r in runs] == [
        "2026-11-30T00:00:00+00:00", "2026-12-07T00:00:00+00:00", "2026-12-14T00:00:00+00:00"]  # fmt: skip
    assert runs[0].weekday() == 0 and runs[0].hour == 9


def test_trigger_times_follow_daylight_saving_in_the_configured_zone(tmp_path: Path) -> None:
    trigger = cron_trigger(_settings(tmp_path, COPYBOT_TIMEZONE="America/New_York", COPYBOT_RETRAIN_CRON="30 8 * * 1"))
    runs = next_runs(trigger, datetime(2027, 3, 1, 0, 0, tzinfo=UTC), 2)  # US clocks go forward on 2027-03-14
    assert [r.astimezone(UTC).strftime("%m-%d %H:%M") for r in runs] == ["03-01 13:30", "03-08 13:30"]
    after = next_runs(trigger, datetime(2027, 3, 9, tzinfo=UTC), 2)
    assert [r.astimezone(UTC).strftime("%m-%d %H:%M") for r in after] == ["03-15 12:30", "03-22 12:30"]


def test_a_bad_cron_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="COPYBOT_RETRAIN_CRON='0 9 \\* \\* FUNDAY'"):
        cron_trigger(_settings(tmp_path, COPYBOT_RETRAIN_CRON="0 9 * * FUNDAY"))


@pytest.mark.parametrize(("weekdays", "expected"), [("1", [0]), ("0", [6]), ("7", [6]), ("MON", [0]), ("1-5", [0, 1, 2, 3, 4]),
                                                    ("0,6", [5, 6]), ("*", [0, 1, 2, 3, 4, 5, 6])])  # fmt: skip
def test_weekday_numbers_mean_what_they_mean_in_cron(tmp_path: Path, weekdays: str, expected: list[int]) -> None:
    trigger = cron_trigger(_settings(tmp_path, COPYBOT_RETRAIN_CRON=f"0 9 * * {weekdays}"))
    runs = next_runs(trigger, datetime(2026, 11, 29, 12, 0, tzinfo=UTC), 7)  # from Sunday evening in Seoul
    assert sorted({r.weekday() for r in runs}) == expected


def _schedule(store: Store, clock: Clock, tmp_path: Path, ran: list[datetime], fail: bool = False) -> WeeklySchedule:
    def job(slot: datetime) -> dict[str, Any]:
        ran.append(slot)
        if fail:
            raise RuntimeError("disk full")
        return {"retrain": {"status": "skipped"}}

    return WeeklySchedule(store, cron_trigger(_settings(tmp_path)), job, clock=clock)


MONDAY_0800_KST = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)


def _started(tmp_path: Path, fail: bool = False) -> tuple[Clock, Store, list[datetime], WeeklySchedule]:
    """A store and a schedule at Monday 08:00 in Seoul whose first start recorded its baseline."""
    clock = Clock(MONDAY_0800_KST)
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    ran: list[datetime] = []
    schedule = _schedule(store, clock, tmp_path, ran, fail=fail)
    schedule.baseline()  # first start ever: nothing before it is owed
    return clock, store, ran, schedule


def test_a_missed_run_runs_once_after_start_never_twice(tmp_path: Path) -> None:
    clock, store, ran, schedule = _started(tmp_path)
    assert schedule.due() is None and schedule.run_due() is None and ran == []

    clock.now += timedelta(hours=1, minutes=30)  # 09:30: this Monday's slot has come
    assert schedule.run_due() == {"retrain": {"status": "skipped"}}
    assert schedule.run_due() is None and len(ran) == 1  # no double run

    clock.now += timedelta(weeks=3)  # the bot was down across three Mondays
    restarted = _schedule(store, clock, tmp_path, ran)  # a new process on the same store
    restarted.baseline()  # not the first start: no new baseline
    assert restarted.run_due() is not None
    assert restarted.run_due() is None and schedule.run_due() is None
    assert len(ran) == 2 and ran[1] == datetime(2026, 12, 21, 9, 0, tzinfo=ran[1].tzinfo)  # the latest slot only
    last = store.last_scheduled_run(JOB)
    assert last is not None and last["status"] == "succeeded" and last["result"] == {"retrain": {"status": "skipped"}}


def test_two_runners_racing_for_one_slot_run_it_once(tmp_path: Path) -> None:
    clock, _, ran, first = _started(tmp_path)
    clock.now += timedelta(hours=2)
    other = _schedule(Store.open(tmp_path / "db.sqlite", clock=clock), clock, tmp_path, ran)
    threads = [threading.Thread(target=s.run_due) for s in (first, other, first, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ran) == 1


def test_a_failed_run_is_recorded_and_the_next_slot_still_runs(tmp_path: Path) -> None:
    clock, store, ran, failing = _started(tmp_path, fail=True)
    clock.now += timedelta(hours=2)
    assert failing.run_due() == {"status": "failed", "error": "RuntimeError('disk full')"}
    assert store.last_scheduled_run(JOB)["status"] == "failed"
    clock.now += timedelta(weeks=1)
    assert _schedule(store, clock, tmp_path, ran).run_due() is not None and len(ran) == 2


def test_latest_slot_is_none_before_the_first_fire(tmp_path: Path) -> None:
    trigger = cron_trigger(_settings(tmp_path))
    assert latest_slot(trigger, MONDAY_0800_KST, MONDAY_0800_KST + timedelta(minutes=59)) is None


def test_apscheduler_fires_the_catch_up_and_registers_the_weekly_job(tmp_path: Path) -> None:
    clock, _, ran, schedule = _started(tmp_path)
    clock.now += timedelta(days=2)  # Wednesday: Monday's slot was missed
    schedule.start()
    try:
        deadline = time.monotonic() + 20
        while not ran:
            assert time.monotonic() < deadline, "the catch-up did not run"
            time.sleep(0.05)
        job = schedule._scheduler.get_job(JOB)  # type: ignore[union-attr]
        assert job.max_instances == 1 and job.coalesce is True
        assert job.next_run_time == next_runs(schedule.trigger, datetime.now(UTC), 1)[0]  # APScheduler's own clock
    finally:
        schedule.stop()
    assert len(ran) == 1 and schedule.upcoming(1)[0].astimezone(UTC) == datetime(2026, 12, 7, 0, 0, tzinfo=UTC)


def test_the_weekly_job_retrains_then_posts_the_report(tmp_path: Path, fake_slack: FakeSlack) -> None:
    settings = _settings(tmp_path, COPYBOT_REPORT_CHANNEL="CREPORT")
    # the store's clock months away from the job's `now`: the report still shows the run the job just made
    store = Store.open(settings.db_path, clock=lambda: datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
    result = retrain_and_report(settings, store, WebClient(token="x", base_url=fake_slack.url), trigger="schedule",
                                now=datetime(2026, 11, 30, 0, 0, tzinfo=UTC))  # fmt: skip
    assert result["retrain"]["status"] == "skipped" and "not enough feedback" in result["retrain"]["message"]
    assert result["week"] == "2026-W48" and result["posted"] is True
    [summary] = fake_slack.of("chat.postMessage")
    assert "피드백이 부족해 재학습을 건너뛰었어요" in str(summary["blocks"])
    assert len(fake_slack.of("files.completeUploadExternal")) == 1
    assert (settings.home / "reports" / "2026-W48" / "report.md").is_file()


def test_copybot_schedule_prints_the_next_runs_and_the_last_result(home: Path) -> None:
    out = run("schedule", env_home=home)
    assert out.returncode == 0, out.stderr
    assert "schedule: 0 9 * * MON (Asia/Seoul)" in out.stdout and out.stdout.count("next: ") == 3
    assert "+09:00" in out.stdout and "last run: none yet" in out.stdout
    store = Store.open(home / "copybot.db")
    run_id = store.claim_scheduled_run(JOB, "2026-11-30T00:00:00.000+00:00")
    assert run_id is not None
    store.finish_scheduled_run(run_id, status="succeeded", result={"retrain": {"status": "kept", "version": "v0002",
                               "message": "trained v0002; kept the active model"}, "week": "2026-W48", "posted": True,
                               "report": "r.md"})  # fmt: skip
    out = run("schedule", env_home=home)
    assert "last run: slot 2026-11-30T00:00:00.000+00:00, succeeded" in out.stdout
    assert "retrain: kept v0002" in out.stdout and "report: 2026-W48 posted" in out.stdout
    bad = run("schedule", env_home=home, extra_env={"COPYBOT_RETRAIN_CRON": "0 9 * * FUNDAY"})
    assert bad.returncode == 2 and "COPYBOT_RETRAIN_CRON" in bad.stderr
