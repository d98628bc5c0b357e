"""The `copybot` command line. Each command validates its input, then hands off to bot/, model/ or storage/."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from bot import __version__
from bot.settings import Settings, SettingsError
from model.errors import BriefError, ModelSideError
from storage import StoreError

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        _fail(str(exc), EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="copybot")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
def cli(verbose: bool) -> None:
    """copybot writes Korean marketing copy in the tone each audience expects, and learns from Slack reactions.

    Quick try (offline, builds the starter model on first use):

        copybot generate --product "린넨 셔츠" --event "여름 세일" --age 20대
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@cli.command()
@click.option("--product", required=True, help="What the copy sells, e.g. '린넨 셔츠'.")
@click.option("--event", default="", help="The occasion, e.g. '여름 세일' (optional).")
@click.option("--age", required=True, help="Target age group: 10대..60대+, also 20s, 25, '50대 이상', 60+.")
@click.option("--channel", default="", help="banner, sms, push, sns or print (also 문자, 배너, 푸시). Default: sns.")
@click.option("-n", "n", default="5", help="How many candidates, 1 to 10. Default: 5.")
@click.option("--notes", default="", help="Anything else the writer should know.")
@click.option("--seed", type=int, default=None, help="Sampling seed, for repeatable output.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of candidates instead of text.")
def generate(
    product: str, event: str, age: str, channel: str, n: str, notes: str, seed: int | None, as_json: bool
) -> None:
    """Write candidates for one brief and print them with their register and flags.

    Example: copybot generate --product "린넨 셔츠" --event "여름 세일" --age 20대 -n 5 --channel sms
    """
    from bot.generation import generate_and_store, make_writer
    from model.brief import Brief
    from storage import Store

    try:
        brief = Brief.create(product=product, event=event, age=age, channel=channel, n=n, notes=notes)
    except BriefError as exc:
        _fail(str(exc), EXIT_USAGE)
    settings = _settings()
    try:
        store = Store.open(settings.db_path)
        writer = make_writer(settings)
        result = generate_and_store(store, writer, brief, source="cli", seed=seed)
    except (StoreError, ModelSideError) as exc:
        _fail(str(exc))
    candidates = [c.as_dict() for c in result.generation.candidates]
    if as_json:
        click.echo(json.dumps(candidates, ensure_ascii=False, indent=2))
        return
    _print_candidates(brief.as_dict(), candidates, result.generation.model_version, result.generation.elapsed_ms)


def _print_candidates(brief: dict[str, Any], candidates: list[dict[str, Any]], version: str, elapsed_ms: int) -> None:
    from model.tone import register_name

    head = " · ".join(str(brief[k]) for k in ("product", "event", "age_group", "channel") if brief[k])
    click.echo(f"{head}  (model {version}, {elapsed_ms / 1000:.1f}s)")
    for rank, c in enumerate(candidates, start=1):
        mark = "✓" if c["register_ok"] else "✗"
        click.echo(f"{rank}. {c['text']}")
        click.echo(f"   {register_name(c['register'])} {mark} · {c['length']}")
        for flag in c["flags"]:
            click.echo(f"   ⚠ {flag}")


@cli.command()
@click.option("--http", "http", is_flag=True, help="Serve HTTP (POST /slack/events) instead of Socket Mode.")
@click.option("--port", type=int, default=3000, show_default=True, help="HTTP port (with --http).")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP address (with --http).")
def serve(http: bool, port: int, host: str) -> None:
    """Run the Slack bot: Socket Mode by default (SLACK_APP_TOKEN), or HTTP with --http (SLACK_SIGNING_SECRET).

    Example: copybot serve            (or: copybot serve --http --port 3000)
    """
    from bot.generation import make_writer
    from bot.slack.serve import SlackAuthError, build_bot, run_until_signalled

    settings = _settings()
    try:
        settings.require_slack(http=http)
    except SettingsError as exc:
        _fail(str(exc), EXIT_USAGE)
    try:
        bot = build_bot(settings, lambda store: make_writer(settings, store=store), http=http, host=host, port=port)
    except SlackAuthError as exc:
        _fail(str(exc), EXIT_USAGE)
    except (StoreError, ModelSideError, OSError) as exc:
        _fail(str(exc))
    run_until_signalled(bot)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats(as_json: bool) -> None:
    """Count requests (by status), candidates, feedback events, current reactions and edits.

    Example: copybot stats --json
    """
    from storage import Store

    settings = _settings()
    try:
        figures = Store.open(settings.db_path).stats()
    except StoreError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(figures, ensure_ascii=False))
        return
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(figures["requests_by_status"].items())) or "none"
    click.echo(f"requests:        {figures['requests']} ({by_status})")
    for key in ("candidates", "feedback_events", "positive", "negative", "winners", "edits"):
        click.echo(f"{key + ':':<17}{figures[key]}")


@cli.group()
def corpus() -> None:
    """Import, inspect and export the company's own copy corpus."""


def _parse_maps(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        column, sep, field = pair.partition("=")
        if not sep or not column.strip() or not field.strip():
            _fail(f"--map takes COLUMN=FIELD, got {pair!r}", EXIT_USAGE)
        out[column.strip()] = field.strip()
    return out


@corpus.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--map", "maps", multiple=True, help="Map a column to a field, e.g. --map 'Headline=text'.")
@click.option("--dry-run", is_flag=True, help="Report what would happen; write nothing.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows even if some are bad.")
@click.option("--source", default=None, help="A name for where these copies came from (default: the file name).")
@click.option("--starter", is_flag=True, help="Import the shipped starter corpus instead of FILE.")
def corpus_import(
    file: Path | None, maps: tuple[str, ...], dry_run: bool, skip_invalid: bool, source: str | None, starter: bool
) -> None:
    """Import copies from CSV (UTF-8 or CP949), JSONL or XLSX; bad rows are reported by line.

    Example: copybot corpus import 2025_카피.xlsx --map "광고 헤드라인=text" --dry-run
    """
    from bot.corpus_io import STARTER_MAPPING, language_checks, starter_corpus_path
    from storage import Store
    from storage.corpus import prepare_import

    if starter == (file is not None):
        _fail("give a FILE to import, or --starter for the shipped starter corpus (not both)", EXIT_USAGE)
    path = starter_corpus_path() if starter else file
    assert path is not None
    overrides = {**STARTER_MAPPING, **_parse_maps(maps)} if starter else _parse_maps(maps)
    settings = _settings()
    try:
        store = Store.open(settings.db_path)
        rows, report = prepare_import(
            path, checks=language_checks(), source=source or ("starter" if starter else path.stem),
            overrides=overrides, existing=store.existing_corpus_hashes,
        )  # fmt: skip
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    except StoreError as exc:
        _fail(str(exc))
    report.dry_run = dry_run
    blocked = bool(report.bad) and not skip_invalid
    if not dry_run and not blocked:
        report.inserted = store.add_corpus_rows(rows)
    _print_report(report, blocked)
    if blocked:
        sys.exit(EXIT_FAILURE)


def _print_report(report: Any, blocked: bool) -> None:
    click.echo(f"{report.path} ({report.detected}), source '{report.source}': {report.rows_read} rows read")
    for line, reason in report.bad:
        click.echo(f"  line {line}: {reason}", err=True)
    for line, first in report.merged:
        click.echo(f"  line {line}: near-duplicate of line {first}, merged")
    click.echo(
        f"bad {len(report.bad)}, merged {len(report.merged)}, already present {report.already_present}, "
        f"new {report.new_rows} ({', '.join(f'{k} {v}' for k, v in sorted(report.by_split.items())) or 'none'})"
    )
    click.echo(
        f"masked {report.masked_phones} phone number(s) and {report.masked_emails} e-mail address(es); "
        f"register label disagrees with the detector on {report.register_disagreements} row(s)"
    )
    if report.dry_run:
        click.echo("dry run: nothing was written")
    elif blocked:
        click.echo("nothing was imported: fix the rows above, or pass --skip-invalid to import the rest", err=True)
    else:
        click.echo(f"imported {report.inserted} row(s)")


@corpus.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def corpus_stats(as_json: bool) -> None:
    """Counts per category, event, age group, register, channel, split and source; lengths; scored share.

    Example: copybot corpus stats --json
    """
    from storage import Store

    figures = Store.open(_settings().db_path).corpus_stats()
    if as_json:
        click.echo(json.dumps(figures, ensure_ascii=False))
        return
    click.echo(f"rows: {figures['rows']}   scored: {figures['scored_share']:.0%}   length: {figures['length']}")
    for key in ("split", "source", "age_group", "register", "channel", "category", "event"):
        items = list(figures[key].items())
        more = f", … {len(items) - 15} more" if len(items) > 15 else ""
        click.echo(f"{key}: " + ", ".join(f"{k} {v}" for k, v in items[:15]) + more)


@corpus.command("export")
@click.option("--format", "fmt", type=click.Choice(["sft", "dpo", "kto"]), required=True, help="Record shape.")
@click.option("--split", type=click.Choice(["train", "validation", "test"]), default=None, help="One split only.")
@click.option("--template", type=click.Choice(["plain", "chat"]), default="plain", help="Prompt as text or messages.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The JSONL to write.")
def corpus_export(fmt: str, split: str | None, template: str, out: Path) -> None:
    """Write the corpus as JSONL for TRL or LLaMA-Factory (sft: prompt/completion, dpo: prompt/chosen/rejected,
    kto: prompt/completion/label).

    Example: copybot corpus export --format sft --split train --out train.jsonl
    """
    from bot.corpus_io import export_records
    from storage import Store

    rows = Store.open(_settings().db_path).corpus_rows(split)
    count = 0
    with out.open("w", encoding="utf-8") as handle:
        for record in export_records(rows, fmt, template):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    skipped = sum(1 for r in rows if not r["age_group"])
    click.echo(
        f"wrote {count} {fmt} record(s) to {out}"
        + (f"; {skipped} row(s) without an age group left out" if skipped else "")
    )
    if count == 0 and fmt != "sft":
        click.echo(
            f"{fmt} needs scored copies (a 성과/score column); for dpo, two or more for the same brief", err=True
        )


@cli.command()
@click.option("--dry-run", is_flag=True, help="Build the dataset and report it; train nothing.")
@click.option("--force", is_flag=True, help="Train even below the feedback minimums (the gate still decides).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def retrain(dry_run: bool, force: bool, as_json: bool) -> None:
    """Build the dataset from feedback, train a new adapter, evaluate it against the active one, promote if better.

    Example: copybot retrain --dry-run
    """
    from bot.retrain import RetrainBusy, Retrainer, outcome_json
    from storage import Store

    settings = _settings()
    try:
        outcome = Retrainer(settings, Store.open(settings.db_path)).run(trigger="cli", force=force, dry_run=dry_run)
    except RetrainBusy as exc:
        _fail(str(exc))
    if as_json:
        click.echo(outcome_json(outcome))
    else:
        click.echo(outcome.message)
        for reason in outcome.reasons:
            click.echo(f"  {reason}")
        if outcome.dataset:
            click.echo(f"  dataset {outcome.dataset['hash']}: {outcome.dataset['counts']}")
    if outcome.status == "failed":
        sys.exit(EXIT_FAILURE)


@cli.group()
def model() -> None:
    """Manage the language model (the offline starter model)."""


@model.command("build-starter")
@click.option("--force", is_flag=True, help="Rebuild even if the starter model exists.")
def build_starter_cmd(force: bool) -> None:
    """Train the offline starter model from the shipped corpus (about 2 minutes on 2 CPU cores).

    Example: copybot model build-starter --force
    """
    from model.starter.build import build_starter, starter_info

    settings = _settings()
    if not force and starter_info(settings.starter_dir):
        click.echo(f"The starter model already exists at {settings.starter_dir} (use --force to rebuild).")
        return
    info = build_starter(settings.starter_dir)
    click.echo(
        f"Built the starter model at {settings.starter_dir}: {info['parameters']:,} parameters, "
        f"{info['build_seconds']}s, best held-out loss {info['best_held_out_loss']}, "
        f"final train loss {info['final_train_loss']}."
    )


@model.command("list")
def model_list() -> None:
    """List adapter versions with their status, parent and headline metrics.

    Example: copybot model list
    """
    from model.registry import AdapterRegistry
    from storage import Store

    settings = _settings()
    status = {r["version"]: r["status"] for r in Store.open(settings.db_path).model_versions()}
    versions = AdapterRegistry(settings.home / "adapters").versions()
    if not versions:
        click.echo("no adapters yet: the base model serves alone (run `copybot retrain`)")
    for v in versions:
        new = v.info.get("metrics", {}).get("new", {})
        click.echo(f"{v.version}  {status.get(v.version, 'unregistered'):<11} parent {v.info.get('parent') or '-':<6} "
                   f"val_loss {new.get('val_loss', '-')}  pref_acc {new.get('preference_accuracy', '-')}")  # fmt: skip


@model.command("promote")
@click.argument("version")
def model_promote(version: str) -> None:
    """Make VERSION the active adapter (a running bot picks it up before its next generation).

    Example: copybot model promote v0003
    """
    from model.errors import AdapterError
    from model.registry import AdapterRegistry
    from storage import Store

    settings = _settings()
    store = Store.open(settings.db_path)
    try:
        adapter = AdapterRegistry(settings.home / "adapters").load(version)
    except AdapterError as exc:
        _fail(str(exc), EXIT_USAGE)
    if version not in {r["version"] for r in store.model_versions()}:
        store.add_model_version(version=version, base_model=settings.base_model, adapter_path=str(adapter.path),
                                parent_version=str(adapter.info.get("parent", "")))  # fmt: skip
    store.promote_model_version(version)
    click.echo(f"{version} is now active")


@model.command("rollback")
def model_rollback() -> None:
    """Go back to the version that was active before the current one (or to the base model).

    Example: copybot model rollback
    """
    from storage import Store

    try:
        active = Store.open(_settings().db_path).rollback_model_version()
    except StoreError as exc:
        _fail(str(exc))
    click.echo(f"{active['version']} is now active" if active else "the base model now serves without an adapter")


@model.command("info")
def model_info() -> None:
    """Show the configured base model and the starter model's build facts.

    Example: copybot model info
    """
    from model.starter.build import starter_info

    settings = _settings()
    click.echo(f"base model: {settings.base_model}")
    info = starter_info(settings.starter_dir)
    if info is None:
        click.echo(f"starter model: not built yet ({settings.starter_dir}); run `copybot model build-starter`")
        return
    for key in ("parameters", "build_seconds", "epochs_run", "best_held_out_loss", "final_train_loss", "corpus_rows"):
        click.echo(f"starter {key}: {info[key]}")


def main() -> None:
    """Console-script entry point."""
    cli()
