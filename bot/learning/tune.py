"""`copybot tune`: a small, budgeted search over learning rate, LoRA rank and epochs, scored on validation loss,
run by optuna (its grid sampler: each grid point at most once, in a seeded random order).

Each trial trains the SFT stage on the same dataset `copybot retrain` would build and scores the held-out liked
copies and edits (or, without held-out feedback, the corpus validation split). Every trial is recorded in the store;
`--apply` writes the best settings to COPYBOT_HOME/train_config.json, which every later retrain starts from.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.learning.train_config import save_train_defaults
from bot.settings import Settings
from model.training.train import TrainConfig
from storage import Store

# The grid around each base kind's recipe (model/training/recipes.py): the starter's rates for a model learning from
# scratch, and for a pretrained base the rates LoRA on such models is trained at, a tenth of those and below.
GRIDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "scratch": {"learning_rate": (5e-4, 1e-3, 2e-3, 4e-3), "lora_r": (8, 16, 32), "epochs": (1, 2, 3)},
    "pretrained": {"learning_rate": (5e-5, 1e-4, 2e-4, 4e-4), "lora_r": (4, 8, 16), "epochs": (1, 2, 3)},
}
DEFAULT_GRID = GRIDS["scratch"]


def default_grid(kind: str) -> dict[str, tuple[Any, ...]]:
    """The grid `copybot tune` searches when no values are given, for a base of this kind."""
    return GRIDS[kind]


class TuneError(ValueError):
    """A bad grid, defaults file or dataset; the message says what to change."""


def parse_grid_values(name: str, raw: str) -> tuple[Any, ...]:
    """'5e-4,1e-3' -> (0.0005, 0.001) for learning_rate; ints for lora_r and epochs."""
    cast: Callable[[str], Any] = float if name == "learning_rate" else int
    try:
        values = tuple(cast(v.strip()) for v in raw.split(",") if v.strip())
    except ValueError as exc:
        raise TuneError(f"{name}: {raw!r} is not a comma-separated list of numbers") from exc
    if not values:
        raise TuneError(f"{name}: give at least one value")
    return values


def check_grid(grid: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """The grid as optuna's search space, after checking every point is a valid TrainConfig (so an impossible
    value fails before any training)."""
    names = sorted(grid)
    for combo in itertools.product(*(grid[n] for n in names)):
        TrainConfig(**dict(zip(names, combo, strict=True)))
    return {n: list(grid[n]) for n in names}


def planned_trials(space: Mapping[str, list[Any]], trials: int) -> int:
    """How many trials a study asks for: `trials`, at least one, never more than the grid holds."""
    return min(max(1, trials), math.prod(len(v) for v in space.values()))


def search(
    space: Mapping[str, list[Any]],
    evaluate: Callable[[int, dict[str, Any]], float | None],
    *,
    trials: int,
    seed: int,
    budget_s: float,
) -> int:
    """Run optuna's grid search: `evaluate(number, params)` trains and scores one point (None when the trial
    failed, which never ends the study). At most `trials` points, never one twice, and no new trial once
    `budget_s` has passed. Returns how many trials ran."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # stdout is the command's (and --json's) alone

    def objective(trial: Any) -> float:
        params = {name: trial.suggest_categorical(name, values) for name, values in space.items()}
        loss = evaluate(trial.number + 1, params)
        if loss is None:
            raise optuna.TrialPruned()  # recorded as failed in our store; optuna moves on to the next point
        return loss

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.GridSampler(dict(space), seed=seed))
    started = time.perf_counter()
    study.optimize(objective, n_trials=1)  # the first trial runs whatever the budget, as a study needs one
    left = budget_s - (time.perf_counter() - started)
    if left > 0:
        study.optimize(objective, n_trials=planned_trials(space, trials) - 1, timeout=left)
    return len(study.trials)


@dataclass
class TuneResult:
    """A study's trials (as recorded), its best trial, and where the best settings were written, if anywhere."""

    study: str
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    stopped_by_budget: bool = False
    applied_to: str = ""
    scored_on: str = ""
    dataset: dict[str, Any] = field(default_factory=dict)


def run_tune(
    settings: Settings,
    store: Store,
    *,
    grid: Mapping[str, Sequence[Any]] = DEFAULT_GRID,
    trials: int = 6,
    budget_s: float = 1800.0,
    seed: int = 13,
    force: bool = False,
    apply: bool = False,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> TuneResult:
    """Run the trials (one retrain lock, so never beside a retrain) and record each; raise NotEnoughFeedback like
    `copybot retrain` below the minimums unless `force`."""
    from bot.generation import base_model_path
    from bot.learning.retrain import INTERRUPTED, Retrainer, retrain_lock
    from model.training.dataset import with_prompts
    from model.training.evaluate import validation_loss
    from model.training.train import train_adapter

    space = check_grid(grid)
    planned = planned_trials(space, trials)
    retrainer = Retrainer(settings, store)
    with retrain_lock(settings.home):
        store.fail_unfinished_training_runs(error=INTERRUPTED)
        data = retrainer.dataset(force=force)
        heldout, scored_on = (
            (data.heldout_sft, "held-out feedback")
            if data.heldout_sft
            else (data.heldout_corpus, "corpus validation split")
        )
        if not heldout:
            raise TuneError("nothing is held out to score trials on; import a corpus with a validation split")
        parent, _ = retrainer.active_adapter()
        base = base_model_path(settings)
        tokenizer = _tokenizer(base)
        heldout = with_prompts(heldout, tokenizer)  # scored in the prompt the model is served
        study = datetime.now(UTC).strftime("tune-%Y%m%dT%H%M%S")

        def evaluate(number: int, params: dict[str, Any]) -> float | None:
            trial_id = store.start_tuning_trial(study=study, trial=number, params=params)
            started = time.perf_counter()
            # The preference stage is left out: it does not move the SFT validation loss the search scores.
            config = dataclasses.replace(retrainer.config, **params, preference="none")
            loss: float | None = None
            try:
                model, _ = train_adapter(base, data, config=config, parent_adapter=parent)
                scored = validation_loss(model, tokenizer, heldout)
                loss = scored if math.isfinite(scored) else None
                store.finish_tuning_trial(
                    trial_id,
                    status="succeeded" if loss is not None else "failed",
                    val_loss=loss,
                    seconds=round(time.perf_counter() - started, 1),
                    error="" if loss is not None else "loss is not finite",
                )
            except Exception as exc:  # one bad trial (e.g. out of memory) must not end the study
                store.finish_tuning_trial(
                    trial_id, status="failed", error=repr(exc), seconds=round(time.perf_counter() - started, 1)
                )
            if on_trial:
                on_trial(store.tuning_trials(study)[-1])
            return loss

        ran = search(space, evaluate, trials=trials, seed=seed, budget_s=budget_s)
        stopped = ran < planned
    recorded = store.tuning_trials(study)
    good = [t for t in recorded if t["status"] == "succeeded"]
    best = min(good, key=lambda t: t["val_loss"]) if good else None
    result = TuneResult(study, recorded, best, stopped, scored_on=scored_on, dataset=data.summary.get("counts", {}))
    if apply and best is not None:
        result.applied_to = str(save_train_defaults(settings.home, best["params"]))
    return result


def _tokenizer(base: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base)
