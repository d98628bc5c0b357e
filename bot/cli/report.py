"""`copybot report` and `copybot schedule`: the weekly report on disk, and when the weekly retrain runs next."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from bot.cli.common import EXIT_USAGE, fail, load_settings


@click.command()
@click.option("--week", default=None, help="ISO week such as 2026-W48 (default: the last full week).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for report.md and the PNGs (default: COPYBOT_HOME/reports/<week>).")  # fmt: skip
def report(week: str | None, out_dir: Path | None) -> None:
    """Write the weekly report (Markdown plus charts) for people outside Slack.

    Example: copybot report --week 2026-W48 --out ./report-w48
    """
    from bot.learning.weekly import report_dir
    from bot.report.build import build_report
    from bot.report.publish import write_report
    from bot.report.weeks import Week
    from storage import Store, StoreError

    settings = load_settings()
    tz = ZoneInfo(settings.timezone)
    try:
        chosen = Week.parse(week, tz) if week else Week.containing(datetime.now(UTC), tz).shifted(-1)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        store = Store.open(settings.db_path)
        path = write_report(build_report(store, chosen), out_dir or report_dir(settings, chosen))
    except (StoreError, OSError) as exc:
        fail(str(exc))
    click.echo(f"wrote {path} ({chosen.label}, {chosen.period()})")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def schedule(as_json: bool) -> None:
    """Show when the weekly retrain runs next (COPYBOT_RETRAIN_CRON in COPYBOT_TIMEZONE) and how the last one went.

    Example: copybot schedule
    """
    from bot.learning.schedule import JOB, cron_trigger, next_runs
    from storage import Store, StoreError

    settings = load_settings()
    try:
        trigger = cron_trigger(settings)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        last = Store.open(settings.db_path).last_scheduled_run(JOB, include_baseline=False)
    except StoreError as exc:
        fail(str(exc))
    upcoming = [t.isoformat() for t in next_runs(trigger, datetime.now(UTC), 3)]
    if as_json:
        click.echo(json.dumps({"cron": settings.retrain_cron, "timezone": settings.timezone, "next": upcoming,
                               "last": last}, ensure_ascii=False, default=str))  # fmt: skip
        return
    click.echo(f"schedule: {settings.retrain_cron} ({settings.timezone})")
    for t in upcoming:
        click.echo(f"  next: {t}")
    if last is None:
        click.echo("last run: none yet (runs inside `copybot serve`)")
        return
    result = last.get("result") or {}
    retrain = result.get("retrain") or {}
    click.echo(
        f"last run: slot {last['slot']}, {last['status']}" + (f" ({last['error']})" if last.get("error") else "")
    )
    if retrain:
        click.echo(f"  retrain: {retrain.get('status')} {retrain.get('version') or ''} - {retrain.get('message')}")
        click.echo(
            f"  report: {result.get('week')} {'posted' if result.get('posted') else 'kept at ' + result['report']}"
        )
