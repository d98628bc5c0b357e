"""What an adapter folder says about itself, read by everything that serves it: its `copybot.json` and the
sampling-temperature factor recorded there. The registry (model/training/registry.py) writes these folders; serving
reads them without the trainer."""

from __future__ import annotations

import json
from pathlib import Path

INFO_FILE = "copybot.json"


def temperature_scale(folder: str | Path) -> float:
    """The sampling-temperature factor recorded with an adapter (1.0 when it has none, or no copybot.json yet).

    A retrain calibrates it so that the adapter's candidates are as varied as the base model's
    (model/training/challenger.py); every engine that serves the adapter multiplies the requested temperature by it."""
    try:
        info = json.loads((Path(folder) / INFO_FILE).read_text("utf-8"))
        return float(info.get("decoding", {}).get("temperature_scale", 1.0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 1.0
