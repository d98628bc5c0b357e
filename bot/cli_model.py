"""`copybot model …`: the starter model, and adapter versions (list, promote, rollback)."""

from __future__ import annotations

import click

from bot.cli_common import EXIT_USAGE
from bot.cli_common import fail as _fail
from bot.cli_common import load_settings as _settings
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
        scale = v.info.get("decoding", {}).get("temperature_scale", 1.0)
        click.echo(f"{v.version}  {status.get(v.version, 'unregistered'):<11} parent {v.info.get('parent') or '-':<6} "
                   f"val_loss {new.get('val_loss', '-')}  pref_acc {new.get('preference_accuracy', '-')}  "
                   f"distinct-2 {new.get('distinct_2', '-')}  temperature x{scale:g}")  # fmt: skip


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
