"""Retrain defaults: TrainConfig's own, overridden by `$COPYBOT_HOME/train_config.json` once `copybot tune --apply`
has written one. Its own module because both the retrain and the tuner read it (the tuner drives retrains)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from model.training.config_schema import config_from
from model.training.recipes import SCRATCH, recipe
from model.training.train import TrainConfig

DEFAULTS_FILE = "train_config.json"


class TrainConfigError(ValueError):
    """The defaults file is unreadable or names unknown settings; the message says what to do."""


def train_defaults_path(home: Path) -> Path:
    """Where tuned retrain defaults live."""
    return home / DEFAULTS_FILE


def load_train_config(home: Path, kind: str = SCRATCH, *, first_adapter: bool = False) -> TrainConfig:
    """The recipe for this kind of base model (model/training/recipes.py; `first_adapter`: a pretrained base's
    first adapter), with each setting that COPYBOT_HOME/train_config.json names (written by `copybot tune --apply`,
    or by hand) in its place."""
    overrides = _file_overrides(home)
    checked = config_from(TrainConfig, overrides, "train_config.json")  # types and names, as JSON reads them
    try:
        return replace(
            recipe(kind, first_adapter=first_adapter), **{name: getattr(checked, name) for name in overrides}
        )
    except (ValueError, TypeError) as exc:  # a value the recipe's other settings make impossible
        raise TrainConfigError(
            f"{train_defaults_path(home)} is not a valid training config ({exc}); fix it or "
            "delete it to use the defaults"
        ) from exc


def _file_overrides(home: Path) -> dict[str, Any]:
    """The settings the defaults file names, as written (not filled with defaults)."""
    path = train_defaults_path(home)
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text("utf-8"))
        config_from(TrainConfig, raw, "train_config.json")  # names and types checked here, values below
    except (ValueError, TypeError) as exc:  # ConfigError is a ValueError, as is a JSON syntax error
        raise TrainConfigError(
            f"{path} is not a valid training config ({exc}); fix it or delete it to use the defaults"
        ) from exc
    return dict(raw)


def save_train_defaults(home: Path, params: Mapping[str, Any]) -> Path:
    """Merge `params` into the defaults file, atomically (a reader never sees half a file). Only the settings
    named there are kept, so that every other setting follows the base model's recipe."""
    merged = {**_file_overrides(home), **params}
    config_from(TrainConfig, merged, "train_config.json")  # validate before writing
    path = train_defaults_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".json.tmp")
    scratch.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", "utf-8")
    os.replace(scratch, path)
    return path
