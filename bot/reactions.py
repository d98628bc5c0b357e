"""Emoji -> feedback signal: normalise Slack's reaction names, then look them up in a configurable mapping."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

SIGNALS = {"positive": "up", "negative": "down", "winner": "win", "used": "used"}


@cache
def _default_mapping() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("bot.data").joinpath("reactions.json").read_text("utf-8"))
    return data


class ReactionMap:
    """Sorts reaction names into up / down / win / used; anything else is not feedback."""

    def __init__(self, path: str | Path | None = None) -> None:
        raw = json.loads(Path(path).read_text("utf-8")) if path else _default_mapping()
        self.aliases: dict[str, str] = dict(raw.get("aliases", {}))
        self.signal_of: dict[str, str] = {
            name: signal for group, signal in SIGNALS.items() for name in raw.get(group, [])
        }

    def normalize(self, reaction: str) -> str:
        """'+1::skin-tone-3' -> '+1', 'thumbsup' -> '+1'."""
        name = reaction.split("::", 1)[0].strip(":").lower()
        return self.aliases.get(name, name)

    def signal(self, reaction: str) -> str | None:
        """'up', 'down', 'win', 'used', or None when the reaction is not feedback."""
        return self.signal_of.get(self.normalize(reaction))
