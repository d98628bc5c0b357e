"""`copybot results import`: real campaign results of the copies copybot wrote, the strongest training signal."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot.cli.common import EXIT_FAILURE, EXIT_USAGE, parse_maps
from bot.cli.common import fail as _fail
from bot.cli.common import load_settings as _settings
from storage import StoreError


@click.group()
def results() -> None:
    """Import what sent copies earned (sends, clicks, CTR, conversions)."""


@results.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--map", "maps", multiple=True, help="Map a column to a field, e.g. --map '노출=sends'.")
@click.option("--dry-run", is_flag=True, help="Check the file and report; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def results_import(file: Path, maps: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Record campaign results from CSV (UTF-8 or CP949), JSONL or XLSX; every row names a candidate by its ID
    (후보 ID, shown under each candidate in Slack) or its exact copy, with clicks and sends (발송수, 클릭수), a
    CTR (클릭률), conversions (전환수) and the send date (발송일). Bad rows are reported by line, and then nothing
    is imported. Importing a corrected file again replaces the rows of the same candidate and date.

    Example: copybot results import 11월_캠페인_결과.xlsx --dry-run
    """
    from storage import Store
    from storage.results_file import prepare_results

    settings = _settings()
    try:
        store = Store.open(settings.db_path)
        recorded: dict[int, dict[str, str]] = {}
        for row in store.outcomes():
            recorded.setdefault(int(row["candidate_id"]), {})[row["date"]] = row["source"]
        rows, report = prepare_results(file, store.result_targets(), parse_maps(maps), recorded, source=file.name)
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    except StoreError as exc:
        _fail(str(exc))
    report.dry_run = dry_run
    if not report.bad and not dry_run:
        try:
            report.new, report.updated, report.completed = store.import_outcomes(rows, source=file.name)
        except (StoreError, ValueError) as exc:
            _fail(f"nothing was imported: {exc}")
    elif not report.bad:
        report.updated = sum(
            r["date"] in recorded.get(r["candidate_id"], {}) or recorded.get(r["candidate_id"], {}).get("") == file.name
            for r in rows
        )
        report.new = len(rows) - report.updated
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        _print_report(report)
    if report.bad:
        raise click.exceptions.Exit(EXIT_FAILURE)  # the report above says why


def _print_report(report: object) -> None:
    from storage.results_file import VOCABULARY, ResultsReport

    assert isinstance(report, ResultsReport)
    where = f"header on line {report.header_line}; " if report.header_line else ""
    click.echo(f"{report.path} ({report.detected}): {where}{report.rows_read} rows read")
    click.echo("columns:")
    for use in report.column_uses:
        click.echo(f"  {use.line(VOCABULARY)}")
    if "ctr" in report.columns.values():
        click.echo(f"CTR read as {'percent (3.2 = 3.2 %)' if report.ctr_as_percent else 'a fraction (0.032 = 3.2 %)'}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for line, reason in report.bad:
        click.echo(f"  line {line}: {reason}", err=True)
    if report.bad:
        click.echo(f"nothing was imported: fix the {len(report.bad)} row(s) above and import the file again", err=True)
    elif report.dry_run:
        click.echo(f"dry run: {report.new} new and {report.updated} replaced result row(s) would be written")
    else:
        completed = f" ({report.completed} of them completed: a date or count they lacked)" if report.completed else ""
        click.echo(f"imported {report.new} new result row(s), replaced {report.updated}{completed}")


@results.command("remove")
@click.option("--source", required=True, help="The file name the rows were imported from, e.g. 11월_결과.xlsx.")
@click.option("--dry-run", is_flag=True, help="Count the rows; delete nothing.")
def results_remove(source: str, dry_run: bool) -> None:
    """Delete the result rows imported from one file: a wrong file, or rows that a corrected file cannot replace
    because their date or copy changed. Import the corrected file afterwards.

    Example: copybot results remove --source 11월_결과.xlsx --dry-run
    """
    from storage import Store

    try:
        count = Store.open(_settings().db_path).remove_outcomes(source, dry_run=dry_run)
    except StoreError as exc:
        _fail(str(exc))
    if count == 0:
        _fail(f"no result rows came from {source!r}; `copybot stats` shows what was imported", EXIT_USAGE)
    click.echo(f"{'would remove' if dry_run else 'removed'} {count} result row(s) imported from {source}")
