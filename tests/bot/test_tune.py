"""`copybot tune`: the grid, the defaults file retrain reads, and a real (tiny) study on the starter model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.learning.retrain import Retrainer
from bot.learning.train_config import TrainConfigError, load_train_config, save_train_defaults
from bot.learning.tune import TuneError, check_grid, parse_grid_values, search
from bot.settings import Settings
from model.training.train import TrainConfig
from storage import Store
from tests.bot.feedback import seed_feedback
from tests.cli import run

GRID = {"learning_rate": (1e-3, 2e-3), "lora_r": (8, 16), "epochs": (1, 2, 3)}


def _points(trials: int, seed: int, fails: int = 0, budget_s: float = 60) -> list[dict[str, float]]:
    """The points optuna asks to evaluate (a cheap stand-in for training: loss = learning rate x rank)."""
    asked: list[dict[str, float]] = []

    def evaluate(number: int, params: dict[str, float]) -> float | None:
        assert number == len(asked) + 1
        asked.append(params)
        return None if number == fails else params["learning_rate"] * params["lora_r"]

    assert search(check_grid(GRID), evaluate, trials=trials, seed=seed, budget_s=budget_s) == len(asked)
    return asked


def test_the_search_tries_distinct_grid_points_in_a_seeded_order() -> None:
    points = _points(5, seed=1)
    assert len(points) == 5 and len({tuple(sorted(p.items())) for p in points}) == 5
    assert points == _points(5, seed=1) and points != _points(5, seed=2)
    assert len(_points(50, seed=1)) == 12 and len(_points(1, seed=1)) == 1  # never more than asked or the grid holds
    assert len(_points(4, seed=1, fails=2)) == 4  # a failed trial does not end the study
    assert len(_points(12, seed=1, budget_s=0)) == 1  # the budget stops new trials, never the first
    with pytest.raises(ValueError, match="epochs"):
        check_grid({"epochs": (0,)})


def test_grid_values_are_parsed_with_clear_errors() -> None:
    assert parse_grid_values("learning_rate", "5e-4, 1e-3") == (5e-4, 1e-3)
    assert parse_grid_values("lora_r", "8,16") == (8, 16)
    with pytest.raises(TuneError, match="lora_r: '8,x' is not a comma-separated list"):
        parse_grid_values("lora_r", "8,x")
    with pytest.raises(TuneError, match="at least one value"):
        parse_grid_values("epochs", " , ")


def test_applied_defaults_are_what_the_next_retrain_trains_with(home: Path) -> None:
    assert load_train_config(home) == TrainConfig()
    path = save_train_defaults(home, {"learning_rate": 1e-3, "lora_r": 8})
    assert json.loads(path.read_text())["lora_r"] == 8
    settings = Settings.from_env()
    retrainer = Retrainer(settings, Store.open(settings.db_path))
    assert (retrainer.config.learning_rate, retrainer.config.lora_r, retrainer.config.epochs) == (1e-3, 8, 3)
    with pytest.raises(ValueError, match="lora_r"):
        save_train_defaults(home, {"lora_r": 0})  # refused before anything is written
    assert load_train_config(home).lora_r == 8


def test_a_broken_defaults_file_names_itself_and_the_fix(home: Path) -> None:
    (home / "train_config.json").write_text('{"learning_rate": 0.001, "colour": "blue"}')
    with pytest.raises(TrainConfigError, match=r"train_config.json is not a valid training config .*delete it"):
        load_train_config(home)
    result = run("retrain", env_home=home)
    assert result.returncode == 2 and "unknown train_config.json setting 'colour'" in result.stderr
    (home / "train_config.json").write_text('{"epochs": "3"}')  # a string where a number belongs
    with pytest.raises(TrainConfigError, match=r"train_config.json.epochs must be of type int; got '3'"):
        load_train_config(home)


@pytest.mark.slow
def test_a_study_records_every_trial_and_applies_the_best(home_with_starter: Path) -> None:
    store = Store.open(home_with_starter / "copybot.db")
    seed_feedback(store)
    result = run(
        "tune",
        "--trials",
        "2",
        "--lr",
        "5e-4,4e-3",
        "--rank",
        "4",
        "--epochs",
        "1",
        "--apply",
        "--json",
        env_home=home_with_starter,
    )
    assert result.returncode == 0, result.stderr
    study = json.loads(result.stdout)
    assert study["scored_on"] == "held-out feedback" and study["dataset"]["heldout_requests"] == 2
    trials = store.tuning_trials(study["study"])
    assert [t["trial"] for t in trials] == [1, 2] and all(t["status"] == "succeeded" for t in trials)
    assert {t["params"]["learning_rate"] for t in trials} == {5e-4, 4e-3}
    assert all(t["val_loss"] > 0 and t["seconds"] > 0 for t in trials)
    best = min(trials, key=lambda t: t["val_loss"])
    assert study["best"]["trial"] == best["trial"]
    assert load_train_config(home_with_starter).learning_rate == best["params"]["learning_rate"]
    assert store.counts()["training_runs"] == 0  # a study trains, but never registers or promotes anything

    plain = run("tune", "--trials", "1", "--lr", "1e-3", "--rank", "4", "--epochs", "1", env_home=home_with_starter)
    assert plain.returncode == 0, plain.stderr
    assert "trial 1: epochs 1  learning_rate 0.001  lora_r 4  ->  val loss" in plain.stdout
    assert "run again with --apply" in plain.stdout


def test_tune_below_the_minimums_says_how_much_feedback_there_is(home_with_starter: Path) -> None:
    result = run("tune", "--trials", "1", env_home=home_with_starter)
    assert result.returncode == 1 and "not enough feedback (have 0" in result.stderr
    bad = run("tune", "--lr", "fast", env_home=home_with_starter)
    assert bad.returncode == 2 and "learning_rate: 'fast' is not a comma-separated list" in bad.stderr


def test_the_recipe_follows_the_base_and_the_defaults_file_overrides_it_setting_by_setting(home: Path) -> None:
    from model.training.recipes import PRETRAINED_RECIPE

    scratch, pretrained = load_train_config(home, "scratch"), load_train_config(home, "pretrained")
    assert scratch == TrainConfig()
    for name, value in PRETRAINED_RECIPE.items():  # every recipe setting differs from the starter's
        assert getattr(pretrained, name) == value != getattr(scratch, name), name
    # a pretrained base's first adapter (the corpus alone, from the bare base) moves it further, without the anchor
    first = load_train_config(home, "pretrained", first_adapter=True)
    assert (first.learning_rate, first.lora_r, first.anchor_weight, first.forgetting_budget) == (1e-3, 16, 0.0, 0.0)
    assert (first.preference_learning_rate, first.beta, first.epochs) == (5e-5, 0.2, 2)
    assert load_train_config(home, "scratch", first_adapter=True) == scratch  # the starter has no first adapter
    save_train_defaults(home, {"learning_rate": 1e-4})
    assert json.loads((home / "train_config.json").read_text()) == {"learning_rate": 1e-4}  # only what was set
    tuned = load_train_config(home, "pretrained")
    assert (tuned.learning_rate, tuned.lora_r, tuned.beta) == (1e-4, 8, 0.2)  # the rest is still the recipe
    assert load_train_config(home, "scratch").lora_r == 16
    settings = Settings.from_env({**os.environ, "COPYBOT_BASE_MODEL": "gemma-3-270m"})
    assert settings.base_kind == "pretrained"
    retrainer = Retrainer(settings, Store.open(settings.db_path))
    assert (retrainer.config.learning_rate, retrainer.config.preference_learning_rate) == (1e-4, 5e-5)
    starter_adapter = Retrainer(settings, Store.open(settings.db_path), adopt=True)
    assert (starter_adapter.config.learning_rate, starter_adapter.config.anchor_weight) == (1e-4, 0.0)  # file wins


def test_tunes_default_grid_spans_the_rates_of_its_base() -> None:
    from bot.learning.tune import default_grid

    assert max(default_grid("pretrained")["learning_rate"]) < min(default_grid("scratch")["learning_rate"])
    assert 2e-4 in default_grid("pretrained")["learning_rate"]  # the recipe's own rate is searched around
