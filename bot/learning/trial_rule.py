"""The live trial's decision rule: does the challenger's copy do better than the champion's, request by request?

Each rated request of a trial shows candidates from both sides, shuffled, and the rule compares the sides within
each request, never across requests. If the challenger were no better, which of a request's candidates the team
liked would be unrelated to which model wrote them: given that a request had K liked candidates out of N, of which n
were the challenger's, the challenger's liked count x would follow the hypergeometric law (n draws from N holding
K). Requests are independent, so under that null the total S = Σ x over rated requests has the exact law of a sum of
independent hypergeometrics, and the rule reads

    P(better) = P₀(S < s) + ½ P₀(S = s)   (s: the challenger's liked count observed)

that is, one minus the one-sided mid-p of this stratified exact test (the Cochran–Mantel–Haenszel comparison, taken
exactly). It is the share of no-better challengers that would have done worse than this one; for a flat prior it is
close to the posterior probability that the challenger is better, and it reads that way in Slack.

Why this and not one vote per request: a vote (which side had the larger liked share) throws away how many were
liked, and a request where the team liked 3 of the challenger's 3 and 1 of the champion's 2 counted as much as one
where it liked 1 against 0. Simulated with the same looks and thresholds (benchmarks/trial_rule.py), the exact test
promotes no-better challengers as rarely as the vote did and promotes better ones 6–14 points more often; for a
team that picks a single 🏆 per request the two coincide. Why within requests: candidates of a request share a
brief and a person's mood, and a request with many likes tells nothing about which model is better unless the
likes fall unevenly between the sides; conditioning on each request's liked count keeps one generous rater or one
easy brief from counting as evidence. Requests where nothing or everything was liked carry no information and drop
out. The votes (requests for, against, tied) are still counted, for people to read.

A request counts once its reactions have settled (`settle_minutes` after its last one): the rule must not spend
a look on a request whose first 👍 has just arrived. Sequential looks inflate false promotions, so the rule looks only
at fixed counts of rated requests (10, 20, 30 by default): at each look P(better) ≥ 0.975 promotes, ≤ 0.05 retires,
and at the last look anything undecided retires. Simulated with random reactions, this promotes 3.5–5.5 % of
challengers that are no better, whether the team rates every candidate or picks a single winner; a challenger that
lifts the liked share from 8 % to 30 % is promoted about 19 times in 20.
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


def _hypergeometric(total: int, liked: int, drawn: int) -> list[float]:
    """The law of the liked count (0, 1, … drawn) among `drawn` of `total` candidates of which `liked` were liked."""
    ways = math.comb(total, drawn)
    return [math.comb(liked, x) * math.comb(total - liked, drawn - x) / ways for x in range(drawn + 1)]


def p_better(requests: list[tuple[Side, Side]]) -> float:
    """P₀(S < s) + ½ P₀(S = s) for the challenger's liked count s summed over (challenger, champion) requests, S its
    law if the liked candidates of each request fell on the sides by chance (see the module's note)."""
    law, observed = [1.0], 0  # law[k] = P₀(S = k)
    for challenger, champion in requests:
        total, liked = challenger.shown + champion.shown, challenger.liked + champion.liked
        if not challenger.shown or not champion.shown or liked in (0, total):
            continue  # nothing to compare in this request
        observed += challenger.liked
        step, convolved = _hypergeometric(total, liked, challenger.shown), [0.0] * (len(law) + challenger.shown)
        for k, p in enumerate(law):
            for x, q in enumerate(step):
                convolved[k + x] += p * q
        law = convolved
    return sum(law[:observed]) + 0.5 * law[observed]


@dataclass(frozen=True)
class Tally:
    """A trial's evidence so far."""

    rated: int  # requests with at least one reaction
    wins: int
    losses: int
    challenger: Side  # summed over rated requests
    champion: Side
    p_better: float = 0.5  # from the requests themselves (`p_better`), not from these sums

    @property
    def ties(self) -> int:
        return self.rated - self.wins - self.losses

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
        p_better=p_better(rated),
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
