"""The live trial's rule under simulated reactions: how often it promotes a challenger that is no better (false
promotions), and how often it promotes one that is (power), for teams that rate every candidate and teams that pick
a single winner.

Run: python -m benchmarks.trial_rule [--trials 4000]
Each simulated trial shows 5 candidates per request, split 3 + 2 alternating, and applies
`bot.learning.trial_rule.decide` after every rated request, exactly as the bot does, until it promotes or retires.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable

from bot.learning.trial_rule import Side, TrialRule, decide, tally

Pattern = Callable[[int, int, random.Random], tuple[int, int]]  # (challenger shown, champion shown) -> liked


def independent(challenger: float, champion: float) -> Pattern:
    """Each candidate liked on its own, with its side's rate."""

    def react(kc: int, kh: int, rng: random.Random) -> tuple[int, int]:
        return sum(rng.random() < challenger for _ in range(kc)), sum(rng.random() < champion for _ in range(kh))

    return react


def moody(challenger: float, champion: float) -> Pattern:
    """Each request has its own mood (an easy brief, a generous rater) that scales both sides' rates alike: a mean
    of 1, from a Beta(2, 2) on [0, 2]."""

    def react(kc: int, kh: int, rng: random.Random) -> tuple[int, int]:
        mood = 2 * rng.betavariate(2, 2)
        return independent(min(1.0, challenger * mood), min(1.0, champion * mood))(kc, kh, rng)

    return react


def one_winner(weight: float = 1.0) -> Pattern:
    """A team that only ever picks one 🏆 per request, a challenger's candidate `weight` times as likely as a
    champion's (1: at random)."""

    def react(kc: int, kh: int, rng: random.Random) -> tuple[int, int]:
        pick = rng.choices(range(kc + kh), weights=[weight] * kc + [1.0] * kh)[0]
        return int(pick < kc), int(pick >= kc)

    return react


def run_trial(rule: TrialRule, react: Pattern, rng: random.Random) -> str:
    rows: list[tuple[Side, Side, bool]] = []
    looked = 0
    for r in range(rule.max_requests):
        kc = 2 if r % 2 else 3
        liked_c, liked_h = react(kc, 5 - kc, rng)
        rows.append((Side(kc, liked_c), Side(5 - kc, liked_h), True))
        decision = decide(rule, tally(rows), looked_at=looked)
        if decision.action != "continue":
            return decision.action
        looked = decision.look or looked
    return "continue"


def share(rule: TrialRule, react: Pattern, trials: int, seed: int) -> float:
    rng = random.Random(seed)
    return sum(run_trial(rule, react, rng) == "promote" for _ in range(trials)) / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=4000)
    args = parser.parse_args()
    rule = TrialRule()
    print(f"rule: looks at {rule.looks()} rated requests, promote at P(better) >= {rule.promote_at}, "
          f"retire at <= {rule.retire_at}")  # fmt: skip
    print("| reactions | challenger promoted |")
    print("|---|---|")
    cases: list[tuple[str, Pattern]] = [
        ("no better: every candidate liked at 25 %", independent(0.25, 0.25)),
        ("no better: every candidate liked at 8 %", independent(0.08, 0.08)),
        ("no better: every candidate liked at 40 %", independent(0.40, 0.40)),
        ("no better: one 🏆 per request, at random", one_winner()),
        ("no better: 25 %, each request its own mood", moody(0.25, 0.25)),
        ("better: 8 % → 20 %", independent(0.20, 0.08)),
        ("better: 8 % → 30 %", independent(0.30, 0.08)),
        ("better: 30 % → 40 %", independent(0.40, 0.30)),
        ("better: 25 % → 45 %", independent(0.45, 0.25)),
        ("better: 40 % → 60 %", independent(0.60, 0.40)),
        ("better: 25 % → 40 %, each request its own mood", moody(0.40, 0.25)),
        ("better: one 🏆 per request, a challenger's copy twice as likely", one_winner(2.0)),
        ("better: 27 % → 39 % (a slower taste's step, as in the learning suite)", independent(0.39, 0.27)),
    ]
    for i, (name, react) in enumerate(cases):
        print(f"| {name} | {share(rule, react, args.trials, seed=100 + i):.1%} |", flush=True)


if __name__ == "__main__":
    main()
