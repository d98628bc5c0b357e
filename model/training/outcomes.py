"""How real campaign results teach: which of two sent copies did better, beyond what chance explains, and how
much a sent copy weighs in training.

- **The measure** is the click-through rate; where neither of two copies has one, the conversion rate
  (conversions per send). A CTR is never compared with a conversion rate.
- **Decided**: when both copies have counts (sends and clicks, or sends and conversions), the better rate wins
  if a two-proportion z-test gives |z| >= 1.96 (95 %, two-sided): 3.0 % against 2.5 % on 1,000 sends each is a
  tie, on 20,000 each a win. When a rate came without its counts, noise cannot be measured, so the better rate
  wins only if it is at least 1.2 times the other (3.0 % against 2.5 % is; 3.0 % against 2.7 % is not).
- **Standing** among comparable sent copies (same channel, then the same age group where there are enough; the
  rules of model/training/corpus_scores.py), so that a copy that did well against the team's other sends counts as well
  as one that won its own A/B test.

Nothing here reads the store: outcomes arrive as `Outcome` values, a copy's result rows summed by
storage/outcomes.py's `combined`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Z_DECIDED = 1.96  # two-sided 95 %
MIN_RELATIVE_GAP = 0.2  # without counts: the better rate must be at least (1 + this) times the other


@dataclass(frozen=True)
class Outcome:
    """What one sent copy earned, summed over its result rows; rates are fractions (0.032 for 3.2 %)."""

    sends: int | None = None
    clicks: int | None = None
    conversions: int | None = None
    ctr: float | None = None

    @property
    def conversion_rate(self) -> float | None:
        if self.conversions is None or not self.sends:
            return None
        return self.conversions / self.sends

    def measure(self, name: str) -> tuple[float | None, int | None, int | None]:
        """(rate, successes, trials) for 'ctr' or 'conversion_rate'; counts are None when not known."""
        if name == "ctr":
            counted = self.clicks is not None and bool(self.sends)
            return self.ctr, (self.clicks if counted else None), (self.sends if counted else None)
        return self.conversion_rate, self.conversions, self.sends

    def as_dict(self) -> dict[str, Any]:
        return {"sends": self.sends, "clicks": self.clicks, "conversions": self.conversions, "ctr": self.ctr,
                "conversion_rate": self.conversion_rate}  # fmt: skip


def shared_measure(a: Outcome, b: Outcome) -> str | None:
    """The measure two outcomes are compared on: 'ctr' when both have one, else 'conversion_rate', else None."""
    for name in ("ctr", "conversion_rate"):
        if a.measure(name)[0] is not None and b.measure(name)[0] is not None:
            return name
    return None


def compare(a: Outcome, b: Outcome) -> int:
    """1 when `a` did better than `b` beyond noise, -1 when worse, 0 for a tie or when they cannot be compared."""
    name = shared_measure(a, b)
    if name is None:
        return 0
    (rate_a, hits_a, n_a), (rate_b, hits_b, n_b) = a.measure(name), b.measure(name)
    assert rate_a is not None and rate_b is not None
    if None not in (hits_a, n_a, hits_b, n_b):
        return _z_test(int(hits_a or 0), int(n_a or 0), int(hits_b or 0), int(n_b or 0))
    high, low = max(rate_a, rate_b), min(rate_a, rate_b)
    if high <= 0 or high < low * (1 + MIN_RELATIVE_GAP) - 1e-12:
        return 0
    return 1 if rate_a > rate_b else -1


def _z_test(hits_a: int, n_a: int, hits_b: int, n_b: int) -> int:
    pooled = (hits_a + hits_b) / (n_a + n_b)
    if not 0 < pooled < 1:  # no clicks at all, all clicked, or counts a file got wrong: nothing to tell apart
        return 0
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:
        return 0
    z = (hits_a / n_a - hits_b / n_b) / spread
    return 1 if z >= Z_DECIDED else -1 if z <= -Z_DECIDED else 0


def score_row(outcome: Outcome, brief: Mapping[str, Any]) -> dict[str, Any]:
    """A sent copy as model/training/corpus_scores.py ranks it: its CTR (else conversion rate) as the score, measured
    against the same channel's sends (and the same age group's where there are enough)."""
    name = "ctr" if outcome.ctr is not None else "conversion_rate"
    return {"score": outcome.measure(name)[0], "score_measure": name, "channel": brief.get("channel") or "",
            "age_group": brief.get("age_group") or "", "category": ""}  # fmt: skip
