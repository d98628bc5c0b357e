"""`copybot corpus import | stats | export`: the company's own copy corpus."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot.cli.common import EXIT_FAILURE, EXIT_USAGE, parse_maps
from bot.cli.common import fail as _fail
from bot.cli.common import load_settings as _settings
from storage import StoreError
from storage.corpus import NEEDED_FOR, VOCABULARY, ImportReport


@click.group()
def corpus() -> None:
    """Import, inspect and export the company's own copy corpus."""


@corpus.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--map",
    "maps",
    multiple=True,
    help="Map a column to a field (copy, product, category, event, age, channel, score, date, register, or "
    "none to leave it out), e.g. --map '광고 헤드라인=copy'.",
)
@click.option("--dry-run", is_flag=True, help="Report what would happen; write nothing.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows even if some are bad.")
@click.option("--source", default=None, help="A name for where these copies came from (default: the file name).")
@click.option("--starter", is_flag=True, help="Import the shipped starter corpus instead of FILE.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def corpus_import(
    file: Path | None,
    maps: tuple[str, ...],
    dry_run: bool,
    skip_invalid: bool,
    source: str | None,
    starter: bool,
    as_json: bool,
) -> None:
    """Import copies from CSV (UTF-8 or CP949), JSONL or XLSX; bad rows are reported by line, and every column
    with what it became. A title row or blank rows above the header are skipped. Importing the same file again
    (say with a --map it lacked) fills in the fields its rows are missing.

    Example: copybot corpus import 2025_카피.xlsx --map "광고 헤드라인=copy" --dry-run
    """
    from bot.corpus_io import STARTER_MAPPING, language_checks, starter_corpus_path
    from storage import Store
    from storage.corpus import prepare_import

    if starter == (file is not None):
        _fail("give a FILE to import, or --starter for the shipped starter corpus (not both)", EXIT_USAGE)
    path = starter_corpus_path() if starter else file
    assert path is not None
    overrides = {**STARTER_MAPPING, **parse_maps(maps)} if starter else parse_maps(maps)
    settings = _settings()
    try:
        store = Store.open(settings.db_path)
        rows, report = prepare_import(
            path,
            checks=language_checks(),
            source=source or ("starter" if starter else path.stem),
            overrides=overrides,
            existing=store.stored_corpus_rows,
        )
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    except StoreError as exc:
        _fail(str(exc))
    report.dry_run = dry_run
    blocked = bool(report.bad) and not skip_invalid
    if not dry_run and not blocked:
        try:
            report.inserted, report.completed = store.import_corpus(rows, report.completions, report.as_dict())
        except StoreError as exc:
            _fail(f"nothing was imported: {exc}")
    if as_json:
        click.echo(json.dumps({**report.as_dict(), "imported": not dry_run and not blocked}, ensure_ascii=False))
    else:
        _print_report(report, blocked)
    if blocked:
        raise click.exceptions.Exit(EXIT_FAILURE)  # the report above says why


def _print_report(report: ImportReport, blocked: bool) -> None:
    where = f"header on line {report.header_line}; " if report.header_line else ""
    click.echo(f"{report.path} ({report.detected}), source '{report.source}': {where}{report.rows_read} rows read")
    click.echo("columns:")
    for use in report.columns:
        click.echo(f"  {use.line(VOCABULARY)}")
    if report.unnamed_cells:
        click.echo(
            f"  {report.unnamed_cells} row(s) have values under a column without a name: give it a header to use them"
        )
    for line, reason in report.bad:
        click.echo(f"  line {line}: {reason}", err=True)
    for line, first in report.merged:
        click.echo(f"  line {line}: near-duplicate of line {first}, merged")
    click.echo(
        f"bad {len(report.bad)}, merged {len(report.merged)}, already present {report.already_present}, "
        f"new {report.new_rows} ({', '.join(f'{k} {v}' for k, v in sorted(report.by_split.items())) or 'none'})"
    )
    if report.score_column:
        others = f"; not used: {', '.join(report.unused_score_columns)} (pick one with --map COLUMN=score)"
        click.echo(
            f"scores from column '{report.score_column}', kept as {report.score_measure}"
            + (others if report.unused_score_columns else "")
        )
    for gap in missing_lines(report):
        click.echo(gap)
    click.echo(
        f"masked {report.masked_phones} phone number(s) and {report.masked_emails} e-mail address(es); "
        f"register label disagrees with the detector on {report.register_disagreements} row(s)"
    )
    filled = ", ".join(f"{VOCABULARY.short(f)} {n}" for f, n in report.completed_fields().items())
    if report.dry_run:
        if report.completions:
            click.echo(f"would complete {len(report.completions)} row(s) already present ({filled})")
        click.echo("dry run: nothing was written")
    elif blocked:
        click.echo("nothing was imported: fix the rows above, or pass --skip-invalid to import the rest", err=True)
    else:
        completed = f"; completed {report.completed} row(s) already present ({filled})" if report.completed else ""
        click.echo(f"imported {report.inserted} row(s){completed}")


def missing_lines(report: ImportReport) -> list[str]:
    """'missing age: 320 of 320 rows (needed for …); column '대상' …' for each field some rows lack."""
    out = []
    for fld, count in report.missing.items():
        if not count:
            continue
        hint = report.unused_hint(fld)
        fix = f"; to use the column that looks like it: {hint}" if hint else ""
        click_name = VOCABULARY.short(fld)
        out.append(
            f"missing {click_name}: {count} of {report.valid_rows} row(s) have none (needed for {NEEDED_FOR[fld]}){fix}"
        )
    return out


@corpus.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def corpus_stats(as_json: bool) -> None:
    """Counts per category, event, age group, register, channel, split and source; lengths; scored share.

    Example: copybot corpus stats --json
    """
    from bot.corpus_io import gap_source_line
    from storage import Store

    figures = Store.open(_settings().db_path).corpus_stats()
    if as_json:
        click.echo(json.dumps(figures, ensure_ascii=False))
        return
    click.echo(f"rows: {figures['rows']}   scored: {figures['scored_share']:.0%}   length: {figures['length']}")
    if figures["scored_by_measure"]:
        click.echo("scores by measure: " + ", ".join(f"{m} {n}" for m, n in figures["scored_by_measure"].items()))
    for key in ("split", "source", "age_group", "register", "channel", "category", "event"):
        items = list(figures[key].items())
        more = f", … {len(items) - 15} more" if len(items) > 15 else ""
        click.echo(f"{key}: " + ", ".join(f"{k} {v}" for k, v in items[:15]) + more)
    for fld, gap in figures["missing"].items():
        if gap["rows"]:
            click.echo(
                f"missing {VOCABULARY.short(fld)}: {gap['rows']} row(s), {gap['scored']} of them scored "
                f"(needed for {gap['needed_for']})"
            )
            for where in gap["sources"]:
                click.echo(f"  {gap_source_line(where, fld)}")


@corpus.command("export")
@click.option("--format", "fmt", type=click.Choice(["sft", "dpo", "kto"]), required=True, help="Record shape.")
@click.option("--split", type=click.Choice(["train", "validation", "test"]), default=None, help="One split only.")
@click.option(
    "--template",
    type=click.Choice(["base", "plain", "form", "chat"]),
    default="base",
    show_default=True,
    help="base: as training renders it for COPYBOT_BASE_MODEL; plain: the starter's markers; form: the form a "
    "pretrained base without a chat template gets; chat: messages.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The JSONL to write.")
def corpus_export(fmt: str, split: str | None, template: str, out: Path) -> None:
    """Write the corpus as JSONL for TRL or LLaMA-Factory (sft: prompt/completion, dpo: prompt/chosen/rejected,
    kto: prompt/completion/label), by default with the prompts copybot trains the configured base on.

    Example: copybot corpus export --format sft --split train --out train.jsonl
    """
    from bot.corpus_io import export_records
    from storage import Store

    settings = _settings()
    tokenizer = None  # the starter's markers need no tokenizer
    if template == "base" and not settings.uses_starter:
        from transformers import AutoTokenizer

        from bot.generation import base_model_path
        from model.errors import ModelSideError

        try:
            tokenizer = AutoTokenizer.from_pretrained(base_model_path(settings))
        except (ModelSideError, OSError, ValueError) as exc:
            _fail(
                f"cannot read {settings.base_model}'s tokenizer to render its prompts ({exc}); "
                "fetch the model, or choose --template plain, form or chat",
                EXIT_USAGE,
            )
    rows = Store.open(settings.db_path).corpus_rows(split)
    count = 0
    with out.open("w", encoding="utf-8") as handle:
        for record in export_records(rows, fmt, template, tokenizer):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    skipped = sum(1 for r in rows if not r["age_group"])
    click.echo(
        f"wrote {count} {fmt} record(s) to {out}"
        + (f"; {skipped} row(s) without an age group left out" if skipped else "")
    )
    if count == 0 and fmt != "sft":
        click.echo(f"{fmt} needs scored copies (a CTR, 성과 … column) ranked among 8 or more of the same channel and "
                   "measure" + ("; and two copies of one brief at least half their group apart" if fmt == "dpo" else ""),
                   err=True)  # fmt: skip
