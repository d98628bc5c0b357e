"""The live trial's decision rule: does the challenger's copy do better than the champion's, request by request?

Each rated request of a trial shows candidates from both sides, shuffled. It is one vote: for the challenger when
a larger share of the challenger's candidates was liked (👍 or 🏆) than of the champion's, against it when a
smaller share was, and no vote when the shares are equal (most often: nothing liked on either side). With θ the
chance that a request votes for the challenger, the posterior after W votes for and L against, from a uniform
prior, is Beta(1 + W, 1 + L), and the rule reads P(better) = P(θ > ½) from it exactly.

Why one vote per request and not one per candidate: candidates of a request share a brief and a person's mood,
and a team that picks one 🏆 per request makes its candidates compete, so per-candidate counts are not
independent and would overstate the evidence. A request is one independent look, whatever the team's habits.

A request counts once its reactions have settled (`settle_minutes` after its last one): the rule must not spend
a look on a request whose first 👍 has just arrived. Sequential looks inflate false promotions, so the rule looks only at fixed counts of rated requests (10, 20, 30
by default): at each look P(better) ≥ 0.975 promotes, ≤ 0.05 retires, and at the last look anything undecided
retires. Simulated with random reactions (benchmarks/trial_rule.py), this promotes 3–5 % of challengers that are
no better, whether the team rates every candidate or picks a single winner; a challenger that lifts the liked
share from 8 % to 30 % is promoted about 9 times in 10.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


class TrialRuleError(ValueError):
    """A rule setting out of range; the message names it."""


@dataclass(frozen=True)
class TrialRule:
    """When a trial decides. Each field's `metadata['help']` says what it does."""

    min_requests: int = field(default=10, metadata={"help": "rated requests before the first look"})
    look_every: int = field(default=10, metadata={"help": "rated requests between looks"})
    max_requests: int = field(default=30, metadata={"help": "rated requests at the last look"})
    promote_at: float = field(default=0.975, metadata={"help": "P(better) at a look that promotes"})
    retire_at: float = field(default=0.05, metadata={"help": "P(better) at a look that retires"})
    settle_minutes: float = field(
        default=10.0, metadata={"help": "minutes after a request's last reaction before it counts (people react "
                                        "over a few minutes; a look on half-rated requests would waste it)"},
    )  # fmt: skip

    def __post_init__(self) -> None:
        if min(self.min_requests, self.look_every) < 1 or self.max_requests < self.min_requests:
            raise TrialRuleError("min_requests and look_every must be at least 1, and max_requests >= min_requests")
        if not 0 < self.retire_at < 0.5 < self.promote_at < 1:
            raise TrialRuleError("need 0 < retire_at < 0.5 < promote_at < 1")
        if self.settle_minutes < 0:
            raise TrialRuleError("settle_minutes must be 0 or more")

    def looks(self) -> list[int]:
        """The rated-request counts at which the rule looks."""
        counts = list(range(self.min_requests, self.max_requests, self.look_every))
        return [*counts, self.max_requests]

    def as_dict(self) -> dict[str, Any]:
        """Plain values, stored with the trial so that its rule never changes under it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrialRule:
        """The rule a trial was started with (unknown keys ignored)."""
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in names})


@dataclass(frozen=True)
class Side:
    """One side's candidates in one request: how many were shown and how many liked."""

    shown: int = 0
    liked: int = 0


def vote(challenger: Side, champion: Side) -> int:
    """+1 when the challenger's liked share is larger, -1 when smaller, 0 when equal or a side showed nothing."""
    if not challenger.shown or not champion.shown:
        return 0
    difference = challenger.liked * champion.shown - champion.liked * challenger.shown
    return (difference > 0) - (difference < 0)


def p_better(wins: int, losses: int) -> float:
    """P(θ > ½) for θ ~ Beta(1 + wins, 1 + losses), exactly: P(Binomial(wins + losses + 1, ½) ≤ wins)."""
    n = wins + losses + 1
    return sum(math.comb(n, k) for k in range(wins + 1)) / 2**n


@dataclass(frozen=True)
class Tally:
    """A trial's evidence so far."""

    rated: int  # requests with at least one reaction
    wins: int
    losses: int
    challenger: Side  # summed over rated requests
    champion: Side

    @property
    def ties(self) -> int:
        return self.rated - self.wins - self.losses

    @property
    def p_better(self) -> float:
        return p_better(self.wins, self.losses)

    def rate(self, side: Side) -> float | None:
        """A side's like-or-win rate over its candidates in rated requests."""
        return side.liked / side.shown if side.shown else None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (stored when the trial ends, shown by status commands)."""
        return {"rated": self.rated, "wins": self.wins, "losses": self.losses, "ties": self.ties,
                "p_better": round(self.p_better, 4), "challenger_counts": asdict(self.challenger),
                "champion_counts": asdict(self.champion)}  # fmt: skip


def tally(requests: list[tuple[Side, Side, bool]]) -> Tally:
    """Count the evidence from (challenger side, champion side, rated and settled?) per request."""
    rated = [(c, h) for c, h, was_rated in requests if was_rated]
    votes = [vote(c, h) for c, h in rated]
    return Tally(
        rated=len(rated),
        wins=votes.count(1),
        losses=votes.count(-1),
        challenger=Side(sum(c.shown for c, _ in rated), sum(c.liked for c, _ in rated)),
        champion=Side(sum(h.shown for _, h in rated), sum(h.liked for _, h in rated)),
    )


@dataclass(frozen=True)
class Decision:
    """What the rule says now: continue, promote or retire, why, and the look it was taken at (if any)."""

    action: str  # continue | promote | retire
    reason: str
    look: int | None = None  # the rated-request count of the look just taken


def decide(rule: TrialRule, evidence: Tally, *, looked_at: int = 0) -> Decision:
    """Apply the rule: look when the rated count has reached a look not yet taken (`looked_at` is the count at the
    last look), and decide on P(better) there."""
    due = [n for n in rule.looks() if looked_at < n <= evidence.rated]
    p = evidence.p_better
    figures = f"{evidence.wins} requests for, {evidence.losses} against, P(better) {p:.3f}"
    if not due:
        upcoming = next((n for n in rule.looks() if n > evidence.rated), rule.max_requests)
        return Decision("continue", f"{evidence.rated} rated requests ({figures}); next look at {upcoming}")
    look = due[-1]
    if p >= rule.promote_at:
        return Decision("promote", f"{figures} >= {rule.promote_at} after {evidence.rated} rated requests", look)
    if p <= rule.retire_at:
        return Decision("retire", f"{figures} <= {rule.retire_at} after {evidence.rated} rated requests", look)
    if look >= rule.max_requests:
        return Decision("retire", f"no clear difference after {evidence.rated} rated requests ({figures})", look)
    return Decision("continue", f"{figures} at {look} rated requests; next look at {rule.looks()[rule.looks().index(look) + 1]}",
                    look)  # fmt: skip
