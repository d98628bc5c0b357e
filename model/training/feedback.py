"""The team's feedback as training reads it: each request's brief and its candidates with their current
reactions, edits and campaign results, and the one rule for how reactions rank copies (training and the weekly
report rank by it alike)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model.training.outcomes import Outcome

WIN_WEIGHT = 2  # a 🏆 counts as two thumbs-up when reactions rank copies


def reaction_value(up: int, down: int, win: int) -> int:
    """How reactions rank copies, in training and in the weekly report alike: up - down + 2 x win (a winner pick
    outweighs a single thumbs-up or thumbs-down; what a sent copy earned is in its campaign results, not here)."""
    return up - down + WIN_WEIGHT * win


@dataclass(frozen=True)
class RatedCandidate:
    """A candidate with its current reactions and any human edits of it."""

    text: str
    register: str
    up: int = 0
    down: int = 0
    win: int = 0
    edits: tuple[str, ...] = ()
    used: bool = False  # marked as sent (📣, 🚀 or the button), or has results
    outcome: Outcome | None = None  # what it earned when sent, summed over its result rows
    sent_text: str = ""  # what went out when that was a person's edit of it, else ""

    @property
    def value(self) -> int:
        """Goodness for ranking within a request (`reaction_value`)."""
        return reaction_value(self.up, self.down, self.win)

    @property
    def sent(self) -> bool:
        return self.used or self.outcome is not None

    @property
    def copy_sent(self) -> str:
        """The text that earned the outcome: the candidate's, or the edit that went out instead."""
        return self.sent_text or self.text

    @property
    def liked(self) -> bool:
        """A winner, more thumbs-up than thumbs-down, or marked as sent (and not thumbed down more than up) while
        its results have not come; once they have, the results decide (`_sft_from`, `_outcome_pairs`)."""
        return self.win > 0 or self.up > self.down or (self.used and self.outcome is None and self.down <= self.up)

    @property
    def disliked(self) -> bool:
        """More thumbs-down than thumbs-up, and never a winner."""
        return self.win == 0 and self.down > self.up


@dataclass(frozen=True)
class RatedRequest:
    """One request's brief and its rated candidates."""

    request_id: int
    created_at: str
    brief: dict[str, Any]
    candidates: tuple[RatedCandidate, ...]
