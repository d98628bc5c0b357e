"""The live trial's decision rule: exact posteriors on known counts, votes, looks, and edge cases."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from bot.trial_rule import Side, Tally, TrialRule, TrialRuleError, decide, p_better, tally, vote


def _beta_tail_by_integration(wins: int, losses: int, steps: int = 200_000) -> float:
    """P(θ > ½) for θ ~ Beta(1 + wins, 1 + losses), by the midpoint rule: an independent check of the formula."""
    a, b = 1 + wins, 1 + losses
    norm = math.gamma(a + b) / (math.gamma(a) * math.gamma(b))
    h = 0.5 / steps
    return sum(norm * (x := 0.5 + (i + 0.5) * h) ** (a - 1) * (1 - x) ** (b - 1) * h for i in range(steps))


@pytest.mark.parametrize(("wins", "losses"), [(0, 0), (1, 0), (0, 1), (5, 2), (2, 5), (12, 3), (7, 7), (20, 4)])
def test_p_better_is_the_exact_beta_posterior(wins: int, losses: int) -> None:
    assert p_better(wins, losses) == pytest.approx(_beta_tail_by_integration(wins, losses), abs=1e-6)


def test_p_better_on_known_counts() -> None:
    assert p_better(0, 0) == 0.5  # no evidence: the uniform prior's half
    assert p_better(1, 0) == 0.75  # Beta(2, 1): P(θ > ½) = 1 - ¼
    assert p_better(3, 3) == 0.5  # symmetric evidence
    assert Fraction(p_better(8, 2)).limit_denominator(5000) == Fraction(1981, 2048)  # P(Bin(11, ½) ≤ 8)
    assert p_better(2, 8) == pytest.approx(1 - p_better(8, 2))


def test_a_vote_compares_liked_shares_not_counts() -> None:
    assert vote(Side(2, 1), Side(3, 1)) == 1  # 50 % against 33 %
    assert vote(Side(3, 1), Side(2, 1)) == -1
    assert vote(Side(2, 0), Side(3, 0)) == 0  # nothing liked anywhere: no vote
    assert vote(Side(2, 2), Side(3, 3)) == 0  # everything liked: a tie
    assert vote(Side(0, 0), Side(5, 1)) == 0  # one side showed nothing


def test_the_tally_counts_only_rated_requests() -> None:
    rows = [(Side(2, 1), Side(3, 0), True), (Side(3, 0), Side(2, 1), True), (Side(2, 0), Side(3, 0), True),
            (Side(2, 2), Side(3, 0), False)]  # fmt: skip
    t = tally(rows)
    assert (t.rated, t.wins, t.losses, t.ties) == (3, 1, 1, 1)
    assert t.challenger == Side(7, 1) and t.champion == Side(8, 1)
    assert t.rate(t.challenger) == pytest.approx(1 / 7)
    empty = tally([])
    assert (empty.rated, empty.p_better, empty.rate(empty.challenger)) == (0, 0.5, None)


def _evidence(rated: int, wins: int, losses: int) -> Tally:
    return Tally(rated, wins, losses, Side(2 * rated, wins), Side(3 * rated, losses))


def test_the_rule_looks_only_at_its_counts() -> None:
    rule = TrialRule()
    assert rule.looks() == [10, 20, 30]
    assert decide(rule, _evidence(0, 0, 0)).action == "continue"  # no reactions at all: keep going
    assert "next look at 10" in decide(rule, _evidence(9, 9, 0)).reason  # convincing, but not a look yet
    at_ten = decide(rule, _evidence(10, 9, 0))
    assert (at_ten.action, at_ten.look) == ("promote", 10)
    assert "9 requests for, 0 against, P(better) 0.999" in at_ten.reason
    retire = decide(rule, _evidence(10, 0, 8))
    assert (retire.action, retire.look) == ("retire", 10)
    middling = decide(rule, _evidence(12, 5, 3), looked_at=0)  # the look at 10 is taken late, at 12 rated
    assert (middling.action, middling.look) == ("continue", 10) and "next look at 20" in middling.reason
    assert decide(rule, _evidence(14, 9, 2), looked_at=10).action == "continue"  # no new look before 20
    final = decide(rule, _evidence(30, 10, 8), looked_at=20)
    assert (final.action, final.look) == ("retire", 30) and "no clear difference" in final.reason


def test_settings_are_checked_and_round_trip() -> None:
    rule = TrialRule(min_requests=5, look_every=5, max_requests=12, promote_at=0.99, retire_at=0.01)
    assert rule.looks() == [5, 10, 12]
    assert TrialRule.from_dict({**rule.as_dict(), "unknown": 1}) == rule
    for bad in ({"min_requests": 0}, {"max_requests": 5}, {"promote_at": 0.4}, {"retire_at": 0.6}):
        with pytest.raises(TrialRuleError):
            TrialRule(**bad)  # type: ignore[arg-type]


def _simulated_trial(rule: TrialRule, rng: random.Random, liked: float, picks_one: bool) -> str:
    rows: list[tuple[Side, Side, bool]] = []
    looked = 0
    for r in range(rule.max_requests):
        kc = 2 if r % 2 else 3
        if picks_one:  # one 🏆 per request, on any candidate
            winner = rng.randrange(5)
            c, h = Side(kc, int(winner < kc)), Side(5 - kc, int(winner >= kc))
        else:
            c = Side(kc, sum(rng.random() < liked for _ in range(kc)))
            h = Side(5 - kc, sum(rng.random() < liked for _ in range(5 - kc)))
        rows.append((c, h, True))
        decision = decide(rule, tally(rows), looked_at=looked)
        if decision.action != "continue":
            return decision.action
        looked = decision.look or looked
    return "continue"


@pytest.mark.parametrize(("liked", "picks_one"), [(0.25, False), (0.08, False), (0.0, True)])
def test_a_challenger_no_better_than_the_champion_is_rarely_promoted(liked: float, picks_one: bool) -> None:
    rng = random.Random(11)
    outcomes = [_simulated_trial(TrialRule(), rng, liked, picks_one) for _ in range(1500)]
    assert outcomes.count("promote") / len(outcomes) < 0.07  # 3-5 % measured; the bound leaves sampling room
    assert "continue" not in outcomes  # every trial ends by its last look
