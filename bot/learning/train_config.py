"""Retrain defaults: TrainConfig's own, overridden by `$COPYBOT_HOME/train_config.json` once `copybot tune --apply`
has written one. Its own module because both the retrain and the tuner read it (the tuner drives retrains)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from model.training.config_schema import config_from
from model.training.train import TrainConfig

DEFAULTS_FILE = "train_config.json"


class TrainConfigError(ValueError):
    """The defaults file is unreadable or names unknown settings; the message says what to do."""


def train_defaults_path(home: Path) -> Path:
    """Where tuned retrain defaults live."""
    return home / DEFAULTS_FILE


def load_train_config(home: Path) -> TrainConfig:
    """TrainConfig's defaults, overridden by COPYBOT_HOME/train_config.json when `copybot tune --apply` wrote one."""
    path = train_defaults_path(home)
    if not path.exists():
        return TrainConfig()
    try:
        return config_from(TrainConfig, json.loads(path.read_text("utf-8")), "train_config.json")
    except (ValueError, TypeError) as exc:  # ConfigError is a ValueError, as is a JSON syntax error
        raise TrainConfigError(
            f"{path} is not a valid training config ({exc}); fix it or delete it to use the defaults"
        ) from exc


def save_train_defaults(home: Path, params: Mapping[str, Any]) -> Path:
    """Merge `params` into the defaults file, atomically (a reader never sees half a file)."""
    current = dataclasses.asdict(load_train_config(home))
    merged = {**current, **params}
    config_from(TrainConfig, merged, "train_config.json")  # validate before writing
    path = train_defaults_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".json.tmp")
    scratch.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", "utf-8")
    os.replace(scratch, path)
    return path
