"""The `copybot` command line. Each command validates its input, then hands off to bot/, model/ or storage/."""

from __future__ import annotations

import json
import logging
from typing import Any

import click

from bot import __version__
from bot.cli.common import EXIT_FAILURE, EXIT_USAGE
from bot.cli.common import fail as _fail
from bot.cli.common import load_settings as _settings
from bot.cli.corpus import corpus
from bot.cli.learning import simulate, tune
from bot.cli.model import model
from bot.cli.report import report, schedule
from bot.cli.results import results
from bot.logs import configure_logging
from bot.settings import SettingsError
from model.errors import BriefError, ModelSideError
from model.writing.brief import channel_table
from storage import StoreError

log = logging.getLogger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="copybot")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
def cli(verbose: bool) -> None:
    """copybot writes Korean marketing copy in the tone each audience expects, and learns from Slack reactions.

    Quick try (offline, builds the starter model on first use):

        copybot generate --product "린넨 셔츠" --event "여름 세일" --age 20대
    """
    configure_logging(verbose)


@cli.command()
@click.option("--product", required=True, help="What the copy sells, e.g. '린넨 셔츠'.")
@click.option("--event", default="", help="The occasion, e.g. '여름 세일' (optional).")
@click.option("--age", required=True, help="Target age group: 10대..60대+, also 20s, 25, '50대 이상', 60+.")
@click.option(
    "--channel",
    default="",
    help=f"{', '.join(channel_table()['channels'])} (also 문자, 배너, 푸시, 카톡 …). Default: sns.",
)
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
    from bot.generation import generate_and_store, make_writer, untuned_base
    from model.writing.brief import Brief
    from storage import Store

    try:
        brief = Brief.create(product=product, event=event, age=age, channel=channel, n=n, notes=notes)
    except BriefError as exc:
        _fail(str(exc), EXIT_USAGE)
    settings = _settings()
    try:
        store = Store.open(settings.db_path)
        bare = untuned_base(settings, store)
        if bare:  # first, and on stderr: --json keeps stdout JSON alone, and it explains a failure to write too
            click.echo(f"note: {bare}", err=True)
        writer = make_writer(settings, store=store)  # the active adapter, if a retrain promoted one
        result = generate_and_store(store, writer, brief, source="cli", seed=seed)
    except (StoreError, ModelSideError) as exc:
        _fail(str(exc))
    candidates = [c.as_dict() for c in result.generation.candidates]
    if as_json:
        click.echo(json.dumps(candidates, ensure_ascii=False, indent=2))
        return
    _print_candidates(brief.as_dict(), candidates, result.generation.model_version, result.generation.elapsed_ms)
    for note in result.generation.notes:
        click.echo(f"note: {note}")


def _print_candidates(brief: dict[str, Any], candidates: list[dict[str, Any]], version: str, elapsed_ms: int) -> None:
    from model.writing.brief import SUBJECT, channel_table
    from model.writing.tone import register_name

    head = " · ".join(str(brief[k]) for k in SUBJECT if brief[k])
    click.echo(f"{head}  (model {version}, {elapsed_ms / 1000:.1f}s)")
    spec = channel_table()["channels"][brief["channel"]]
    unit = f"/{spec['max_bytes']} bytes" if "max_bytes" in spec else f"/{spec['max_chars']} chars"
    for rank, c in enumerate(candidates, start=1):
        mark = "✓" if c["register_ok"] else "✗"
        if c.get("message"):  # the whole message to send: the legal frame around the copy
            click.echo(f"{rank}. " + c["message"].replace("\n", "\n   "))
        else:
            click.echo(f"{rank}. {c['text']}")
        click.echo(f"   {register_name(c['register'])} {mark} · {c['length']}{unit}")
        for flag in c["flags"]:
            click.echo(f"   ⚠ {flag}")


@cli.command()
@click.option("--http", "http", is_flag=True, help="Serve HTTP (POST /slack/events) instead of Socket Mode.")
@click.option("--port", type=int, default=3000, show_default=True, help="HTTP port (with --http).")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP address (with --http).")
@click.option(
    "--allow-bare-base",
    is_flag=True,
    help="Serve a real base model that has no adapter yet (its copies are the untuned model's).",
)
def serve(http: bool, port: int, host: str, allow_bare_base: bool) -> None:
    """Run the Slack bot: Socket Mode by default (SLACK_APP_TOKEN), or HTTP with --http (SLACK_SIGNING_SECRET).

    A real base model (COPYBOT_BASE_MODEL) needs its first adapter (`copybot model starter-adapter`) before the
    team sees its copies; without one the bot does not start unless --allow-bare-base says that is intended.

    Example: copybot serve            (or: copybot serve --http --port 3000)
    """
    from bot.composition import build_bot, run_until_signalled
    from bot.generation import make_writer, untuned_base
    from bot.slack.serve import SlackAuthError
    from storage import Store

    settings = _settings()
    try:
        bare = untuned_base(settings, Store.open(settings.db_path))
    except StoreError as exc:
        _fail(str(exc))
    if bare and not allow_bare_base:
        _fail(f"not starting: {bare} (or start with --allow-bare-base if the team should see them)", EXIT_USAGE)
    if bare:
        log.warning("serving the untuned base model: %s", bare)
    try:  # build_bot checks the tokens first, before anything slow
        bot = build_bot(settings, lambda store: make_writer(settings, store=store, batched=True), http=http, host=host,
                        port=port)  # fmt: skip
    except (SettingsError, SlackAuthError) as exc:
        _fail(str(exc), EXIT_USAGE)
    except (StoreError, ModelSideError, OSError) as exc:
        _fail(str(exc))
    run_until_signalled(bot)


@cli.command("model-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 for all).")
@click.option("--port", default=8000, show_default=True, help="TCP port (0 picks a free one).")
@click.option("--no-jobs", is_flag=True, help="Serve only; refuse fine-tuning jobs (e.g. on a serving replica).")
@click.option("--trusted-network", is_flag=True,
              help="Serve on a non-loopback address without COPYBOT_MODEL_API_KEY (only trusted machines reach it).")  # fmt: skip
@click.option(
    "--max-prompt-tokens",
    envvar="COPYBOT_MAX_PROMPT_TOKENS",
    show_envvar=True,
    show_default="8192",  # model/serving/server.py's MAX_PROMPT_TOKENS, not imported here: it would load FastAPI
    type=click.IntRange(min=1),
    help="Most tokens in one prompt (a chat request's rendered messages); a longer one gets 400.",
)
@click.option(
    "--max-request-tokens",
    envvar="COPYBOT_MAX_REQUEST_TOKENS",
    show_envvar=True,
    show_default="147456",  # MAX_REQUEST_TOKENS, likewise
    type=click.IntRange(min=1),
    help="Most work in one request, prompts x n x (prompt tokens + max_tokens); more gets 400.",
)
@click.option(
    "--shutdown-grace",
    envvar="COPYBOT_SHUTDOWN_GRACE_S",
    show_envvar=True,
    default=10,
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds SIGTERM waits for requests in flight (the model's work on them stops at once) before cancelling them.",
)
def model_server(
    host: str,
    port: int,
    no_jobs: bool,
    trusted_network: bool,
    max_prompt_tokens: int | None,
    max_request_tokens: int | None,
    shutdown_grace: int,
) -> None:
    """Serve the model over an OpenAI-compatible HTTP API (the GPU host), with fine-tuning jobs that train in child
    processes; COPYBOT_MODEL_API_KEY requires a bearer key on every call but /health. An address other machines
    can reach needs the key, or --trusted-network. Prompts and requests are bounded (--max-prompt-tokens,
    --max-request-tokens), and SIGTERM stops the model's work at once.

    Example: COPYBOT_MODEL_API_KEY=secret copybot model-server --host 0.0.0.0 --port 8000
    """
    import logging

    from bot.cli.model_server import build_model_server, exposure_problem, open_routes, serve

    settings = _settings()
    problem = exposure_problem(host, settings.model_api_key or "", trusted_network=trusted_network)
    if problem:  # before loading anything: the answer comes in a second, not after the model loads
        _fail(problem, EXIT_USAGE)
    try:
        app = build_model_server(
            settings, with_jobs=not no_jobs, max_prompt_tokens=max_prompt_tokens, max_request_tokens=max_request_tokens
        )
    except (StoreError, ModelSideError, OSError) as exc:
        _fail(str(exc))
    routes = open_routes(app, settings.model_api_key or "")
    logging.getLogger("bot.cli.model_server").log(
        logging.INFO if settings.model_api_key else logging.WARNING,
        "model server on %s:%s; open to anyone who reaches it: %s%s", host, port, ", ".join(routes),
        "" if settings.model_api_key else " (no COPYBOT_MODEL_API_KEY)",
    )  # fmt: skip
    serve(app, host, port, grace_s=shutdown_grace)


@cli.command()
@click.argument("destination", type=click.Path(dir_okay=False))
def backup(destination: str) -> None:
    """Copy the database to DESTINATION with SQLite's online backup API (safe while the bot runs).

    Example: copybot backup /backups/copybot-$(date +%F).db
    """
    from storage import Store

    settings = _settings()
    try:
        path = Store.open(settings.db_path).backup_to(destination)
        counts = Store.open(path, migrate=False).counts()
    except StoreError as exc:
        _fail(str(exc))
    click.echo(f"backed up {settings.db_path} to {path} ({counts['requests']} requests, {counts['feedback_events']} "
               "feedback events); to restore, stop the bot and copy it over COPYBOT_DB")  # fmt: skip


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats(as_json: bool) -> None:
    """Count requests (by status), candidates, feedback events, current reactions, edits and campaign results, and
    show the best real performers (by CTR, from `copybot results import`).

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
    click.echo(f"{'marked used:':<17}{figures['marked_used']}")
    click.echo(f"{'with results:':<17}{figures['copies_with_results']} ({figures['result_rows']} result rows)")
    if figures["best_performers"]:
        click.echo("best real performers:")
    for i, row in enumerate(figures["best_performers"], start=1):
        click.echo(
            f"  {i}. {performance(row)}  {row['text']}  ({row['product']} · {row['age_group']} · "
            f"{row['channel']}, candidate {row['candidate_id']})"
        )


def performance(row: dict[str, Any]) -> str:
    """'CTR 3.20 % (320/10,000), 12 conversions' for a best-performer row."""
    counts = f" ({row['clicks']:,}/{row['sends']:,})" if row.get("sends") and row.get("clicks") is not None else ""
    conversions = f", {row['conversions']:,} conversions" if row.get("conversions") is not None else ""
    return f"CTR {row['ctr']:.2%}{counts}{conversions}"


@cli.command()
@click.option("--dry-run", is_flag=True, help="Build the dataset and report it; train nothing.")
@click.option("--force", is_flag=True, help="Train even below the feedback minimums (the gate still decides).")
@click.option("--from-corpus", is_flag=True,
              help="Learn from the imported corpus's scores alone (CTR, 성과, …): no reactions needed.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def retrain(dry_run: bool, force: bool, from_corpus: bool, as_json: bool) -> None:
    """Build the dataset from feedback, train a new adapter, evaluate it against the active one, promote if better.

    With --from-corpus the dataset is the scored corpus: its better-performing copies weigh more, copies of one
    brief that performed far apart make preference pairs, and the adapter is promoted only if it prefers the
    better copy of held-out briefs' pairs.

    Example: copybot retrain --dry-run
    """
    from bot.learning.retrain import RetrainBusy, Retrainer, outcome_json, outcome_text
    from bot.learning.train_config import TrainConfigError
    from storage import Store

    settings = _settings()
    try:
        retrainer = Retrainer(settings, Store.open(settings.db_path), from_corpus=from_corpus)
        outcome = retrainer.run(trigger="corpus" if from_corpus else "cli", force=force, dry_run=dry_run)
    except TrainConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    except RetrainBusy as exc:
        _fail(str(exc))
    click.echo(outcome_json(outcome) if as_json else outcome_text(outcome))
    if outcome.status == "failed":
        raise click.exceptions.Exit(EXIT_FAILURE)  # the report above says why


cli.add_command(corpus)
cli.add_command(model)
cli.add_command(tune)
cli.add_command(simulate)
cli.add_command(results)


def main() -> None:
    """Console-script entry point."""
    cli()


cli.add_command(report)
cli.add_command(schedule)
