"""Load the editable JSON data files shipped in `model/data/` (tone profiles, endings, channels, compliance)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load_json(name: str) -> dict[str, Any]:
    """Parse one data file by name, e.g. 'channels.json'. Cached: the files do not change at run time."""
    data: dict[str, Any] = json.loads(resources.files("model.data").joinpath(name).read_text("utf-8"))
    return data
