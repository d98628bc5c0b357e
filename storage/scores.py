"""Current reaction state from the append-only feedback log: who still has which reaction on which candidate.

Events are replayed in Slack's event time (not arrival order), so a removal that arrives before its addition
still cancels it. Each person keeps at most one winner per request: their latest 🏆 moves their pick.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Score:
    """A candidate's current reactions."""

    up: int = 0
    down: int = 0
    win: int = 0
    used: int = 0  # people who marked it as sent (📣, 🚀 or the button): a fact, not a rating
    # How reactions rank copies is a learning rule, so it lives with training: model/training/feedback.reaction_value


def _order_key(event: Mapping[str, Any]) -> tuple[float, int]:
    try:
        moment = float(event.get("event_ts") or "inf")
    except ValueError:
        moment = float("inf")
    return (moment, int(event["id"]))


def active_reactions(events: Iterable[Mapping[str, Any]]) -> set[tuple[str, int, str]]:
    """(user, candidate_id, signal) triples that are in effect after replaying `events`."""
    active: set[tuple[str, int, str]] = set()
    winner_of: dict[tuple[str, int], int] = {}  # (user, request) -> candidate
    for event in sorted(events, key=_order_key):
        key = (str(event["user_id"]), int(event["candidate_id"]), str(event["signal"]))
        if event["action"] == "removed":
            active.discard(key)
            continue
        if key[2] == "win":
            pick = (key[0], int(event["request_id"]))
            previous = winner_of.get(pick)
            if previous is not None and previous != key[1]:
                active.discard((key[0], previous, "win"))
            winner_of[pick] = key[1]
        active.add(key)
    return active


def scores(events: Iterable[Mapping[str, Any]]) -> dict[int, Score]:
    """Each candidate's current Score, for candidates with at least one active reaction."""
    counts: dict[int, dict[str, int]] = {}
    for _user, candidate, signal in active_reactions(events):
        counts.setdefault(candidate, {"up": 0, "down": 0, "win": 0, "used": 0})[signal] += 1
    return {c: Score(**n) for c, n in counts.items()}
