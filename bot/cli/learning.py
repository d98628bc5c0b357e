"""`copybot tune` and `copybot simulate`: finding training settings, and proving the loop learns."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from bot.cli.common import EXIT_USAGE, fail, load_settings


def _trial_line(trial: dict[str, Any]) -> str:
    params = "  ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(trial["params"].items()))
    outcome = f"val loss {trial['val_loss']:.4f}" if trial["status"] == "succeeded" else f"failed: {trial['error']}"
    return f"trial {trial['trial']}: {params}  ->  {outcome}  ({trial['seconds']:.0f} s)"


@click.command()
@click.option("--trials", default=6, show_default=True, help="Grid points to try (in a seeded random order).")
@click.option("--budget-minutes", default=30.0, show_default=True, help="Start no new trial after this long.")
@click.option(
    "--lr",
    "lrs",
    default=None,
    help="Learning rates to try (default: 5e-4,1e-3,2e-3,4e-3 for the starter, 5e-5,1e-4,2e-4,4e-4 for a "
    "pretrained base).",
)
@click.option("--rank", "ranks", default=None, help="LoRA ranks to try (default: 8,16,32 starter; 4,8,16 pretrained).")
@click.option("--epochs", "epochs", default=None, help="Epoch counts to try (default: 1,2,3).")
@click.option("--seed", default=13, show_default=True, help="Order of the trials.")
@click.option(
    "--apply", is_flag=True, help="Make the best settings the retrain defaults (COPYBOT_HOME/train_config.json)."
)
@click.option("--force", is_flag=True, help="Search even below the feedback minimums.")
@click.option("--json", "as_json", is_flag=True, help="Print the study as JSON.")
def tune(
    trials: int,
    budget_minutes: float,
    lrs: str | None,
    ranks: str | None,
    epochs: str | None,
    seed: int,
    apply: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Search learning rate, LoRA rank and epochs on validation loss; record every trial.

    Example: copybot tune --trials 8 --budget-minutes 20 --apply
    """
    from bot.learning.retrain import RetrainBusy
    from bot.learning.tune import TuneError, default_grid, parse_grid_values, run_tune
    from model.training.dataset import NotEnoughFeedback
    from storage import Store

    settings = load_settings()
    try:
        grid: dict[str, tuple[Any, ...]] = dict(default_grid(settings.base_kind))
        for name, raw in (("learning_rate", lrs), ("lora_r", ranks), ("epochs", epochs)):
            if raw is not None:
                grid[name] = parse_grid_values(name, raw)
        result = run_tune(
            settings,
            Store.open(settings.db_path),
            grid=grid,
            trials=trials,
            budget_s=budget_minutes * 60,
            seed=seed,
            force=force,
            apply=apply,
            on_trial=None if as_json else lambda t: click.echo(_trial_line(t)),
        )
    except (TuneError, ValueError) as exc:
        fail(str(exc), EXIT_USAGE)
    except (RetrainBusy, NotEnoughFeedback) as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(result.__dict__, ensure_ascii=False))
        return
    if result.stopped_by_budget:
        click.echo(f"stopped after {len(result.trials)} trials: the {budget_minutes:g}-minute budget was spent")
    if result.best is None:
        fail(f"every trial of {result.study} failed; see the errors above")
    click.echo(f"best of {result.study} (scored on the {result.scored_on}): {_trial_line(result.best)}")
    if result.applied_to:
        click.echo(f"saved to {result.applied_to}; the next copybot retrain trains with these settings")
    else:
        click.echo("run again with --apply to make these the retrain defaults")


def _explicit(name: str, value: Any, default: Any) -> Any:
    """The option's value when the command line gave it, else `default`."""
    source = click.get_current_context().get_parameter_source(name)
    return value if source is click.core.ParameterSource.COMMANDLINE else default


def _check_resumable(saved: Any, rater: str | None, given: dict[str, Any], base_model: str) -> None:
    """A resumed simulation keeps its rater, sizes and base model: a change would splice two experiments."""
    if rater and rater != saved.rater:
        fail(f"this simulation's rater is {saved.rater}; leave out --rater to resume it", EXIT_USAGE)
    for name, value in given.items():
        if name != "rounds" and _explicit(name, value, saved.config[name]) != saved.config[name]:
            flag = "--" + name.replace("_", "-")
            fail(
                f"this simulation was started with {flag} {saved.config[name]}; leave out {flag} to resume it",
                EXIT_USAGE,
            )
    if saved.base_model != base_model:
        fail(
            f"this simulation runs on {saved.base_model}; resume it with COPYBOT_BASE_MODEL={saved.base_model}",
            EXIT_USAGE,
        )


def scratch_home(home: Path, rater: str) -> Path:
    """A new, empty folder under home/simulations named for the time and the rater, and unique: two simulations
    of one rater started in the same second (seeds side by side) must not share a store."""
    folder = home / "simulations"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("sim-%Y%m%dT%H%M%S")
    return Path(tempfile.mkdtemp(prefix=f"{stamp}-{rater.rpartition(':')[2] or 'rater'}-", dir=folder))


@click.command()
@click.option("--rounds", default=3, show_default=True, help="Feedback-and-retrain rounds.")
@click.option("--requests-per-round", default=32, show_default=True, help="Briefs generated and rated each round.")
@click.option("--rater", help="module:function that reacts to candidates, e.g. bot.learning.raters:emoji_for_young")
@click.option("--eval-briefs", default=24, show_default=True, help="Fixed briefs the liked share is measured on.")
@click.option("--eval-seeds", default=3, show_default=True, help="Fixed seeds per evaluation brief.")
@click.option("--seed", default=7, show_default=True, help="Seed for briefs and generation.")
@click.option(
    "--home",
    "sim_home",
    type=click.Path(path_type=Path),
    default=None,
    help="Scratch folder for the simulation's store and adapters [COPYBOT_HOME/simulations/<time>-<rater>-…].",
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Go on with the simulation in this folder from its last measured round, up to --rounds rounds "
    "(its rater and sizes are the ones it was started with).",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"rounds": [{"round": 0, "liked_share": …}, …]}.')
def simulate(
    rounds: int,
    requests_per_round: int,
    rater: str | None,
    eval_briefs: int,
    eval_seeds: int,
    seed: int,
    sim_home: Path | None,
    resume: Path | None,
    as_json: bool,
) -> None:
    """Run the learning loop without Slack: generate, let a rater react, retrain (gate included), measure.

    The simulation has its own store and adapters, so the team's feedback and active model are never touched.
    Each measured round is saved in that folder; an interrupted simulation goes on with --resume FOLDER.

    Example: copybot simulate --rounds 3 --requests-per-round 24 --rater bot.learning.raters:concrete_discount
    """
    from bot.learning.simulate import (
        RoundResult,
        SimulationConfig,
        SimulationError,
        gain_text,
        load_rater,
        run_simulation,
        simulation_settings,
    )
    from bot.learning.simulation_checkpoint import CheckpointError
    from bot.learning.simulation_checkpoint import load as load_checkpoint
    from model.locks import LockHeld

    settings = load_settings()
    given = {
        "rounds": rounds,
        "requests_per_round": requests_per_round,
        "eval_briefs": eval_briefs,
        "eval_seeds": eval_seeds,
        "seed": seed,
    }
    saved = None
    if resume is not None:
        if sim_home is not None:
            fail("--resume names the simulation's folder; leave out --home", EXIT_USAGE)
        try:
            saved = load_checkpoint(resume)
        except CheckpointError as exc:
            fail(str(exc), EXIT_USAGE)
        _check_resumable(saved, rater, given, settings.base_model)
        rater, given = saved.rater, {**saved.config, "rounds": _explicit("rounds", rounds, saved.config["rounds"])}
    elif not rater:
        fail("--rater is required for a new simulation, e.g. --rater bot.learning.raters:emoji_for_young", EXIT_USAGE)
    try:
        rate = load_rater(rater)
        config = SimulationConfig(**given)
    except SimulationError as exc:
        fail(str(exc), EXIT_USAGE)
    home = resume or sim_home or scratch_home(settings.home, rater)
    if saved is None and home.exists() and any(home.iterdir()):
        fail(
            f"{home} is not empty; give --home a new folder so earlier results are kept, "
            f"or go on with the simulation in it with --resume {home}",
            EXIT_USAGE,
        )

    def show(result: RoundResult) -> None:
        if as_json:
            return
        retrain = result.retrain or {}
        what = f"  retrain: {retrain['status']} {retrain.get('version', '')}".rstrip() if retrain else ""
        alone = f" (reranking off {result.model_liked_share:.1%})" if result.model_liked_share is not None else ""
        click.echo(
            f"round {result.round}: liked share {result.liked_share:.1%}{alone}  distinct-2 {result.distinct_2:.3f}"
            f"  model {result.model_version}{what}  ({result.seconds:.0f} s)"
        )
        for trial in result.decided:
            click.echo(f"    trial {trial['id']}: {trial['outcome']} {trial['challenger']}: {trial['reason']}")
        for reason in retrain.get("reasons", []):
            click.echo(f"    {reason}")
        if result.trial:
            shares = ", ".join(f"{v} {s:.1%}" for v, s in result.by_version.items())
            click.echo(f"    on trial now: {result.trial['challenger']} against {result.trial['champion']} ({shares})")

    if not as_json:
        click.echo(f"simulation in {home}" + (f", from round {saved.next_round}" if saved else ""))
    try:
        results = run_simulation(
            simulation_settings(settings, home), rate, config, rater_spec=rater, resume=saved, on_round=show
        )
    except SimulationError as exc:
        fail(str(exc), EXIT_USAGE)
    except LockHeld as exc:
        fail(f"{exc}; wait for it to finish, or stop it first")
    if as_json:
        click.echo(json.dumps({"home": str(home), "rounds": [r.__dict__ for r in results]}, ensure_ascii=False))
    else:
        click.echo(
            f"liked share {results[0].liked_share:.1%} -> {results[-1].liked_share:.1%} "
            f"({gain_text(results[0], results[-1])})"
        )
