"""The live trial's decision rule: the exact stratified test on known counts, votes, looks, and edge cases."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import pytest

from bot.learning.trial_rule import Side, Tally, TrialRule, TrialRuleError, decide, p_better, tally, vote


def _by_relabelling(requests: list[tuple[Side, Side]]) -> float:
    """P(better) by brute force: every way the challenger's labels could have fallen on each request's candidates,
    equally likely, the challenger's liked total under each (an independent check of the convolution)."""
    totals = [0]
    for c, h in requests:
        liked = [True] * (c.liked + h.liked) + [False] * (c.shown + h.shown - c.liked - h.liked)
        counts = [sum(liked[i] for i in labels) for labels in itertools.combinations(range(len(liked)), c.shown)]
        totals = [t + x for t in totals for x in counts]
    observed = sum(c.liked for c, _ in requests)
    return (sum(t < observed for t in totals) + 0.5 * sum(t == observed for t in totals)) / len(totals)


CASES = [
    [(Side(2, 1), Side(3, 0))],
    [(Side(3, 2), Side(2, 0)), (Side(2, 0), Side(3, 1))],
    [(Side(3, 1), Side(2, 1)), (Side(2, 2), Side(3, 1)), (Side(3, 0), Side(2, 2))],
    [(Side(2, 1), Side(3, 3)), (Side(3, 3), Side(2, 1)), (Side(2, 0), Side(3, 0)), (Side(3, 2), Side(2, 2))],
]


@pytest.mark.parametrize("requests", CASES)
def test_p_better_is_the_exact_stratified_mid_p(requests: list[tuple[Side, Side]]) -> None:
    assert p_better(requests) == pytest.approx(_by_relabelling(requests), abs=1e-12)
    mirrored = [(h, c) for c, h in requests]
    assert p_better(mirrored) == pytest.approx(1 - p_better(requests), abs=1e-12)  # the sides are symmetric


def test_p_better_on_known_counts() -> None:
    assert p_better([]) == 0.5  # no evidence
    # 1 liked of 5, 2 of them the challenger's: P₀(x = 0) = 3/5, P₀(x = 1) = 2/5; x = 1 gives 3/5 + ½ · 2/5
    assert Fraction(p_better([(Side(2, 1), Side(3, 0))])).limit_denominator(1000) == Fraction(4, 5)
    assert Fraction(p_better([(Side(2, 1), Side(3, 0))] * 2)).limit_denominator(1000) == Fraction(23, 25)
    # requests where nothing, or everything, was liked say nothing about which side is better
    assert p_better([(Side(2, 0), Side(3, 0)), (Side(3, 3), Side(2, 2)), (Side(0, 0), Side(5, 2))]) == 0.5


def test_how_many_were_liked_counts_not_only_which_side_led() -> None:
    # five requests where all 3 of the challenger's copies were liked and none of the champion's 2, five where one of
    # the champion's 3 was liked and none of the challenger's 2: five votes each way, but the first kind is far
    # stronger evidence
    requests = [(Side(3, 3), Side(2, 0), True)] * 5 + [(Side(2, 0), Side(3, 1), True)] * 5
    t = tally(requests)
    assert (t.wins, t.losses) == (5, 5)
    assert t.p_better > 0.975


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
    """`wins` requests with the challenger's one liked copy, `losses` with the champion's, the rest with none."""
    won, lost, tied = (Side(2, 1), Side(3, 0), True), (Side(2, 0), Side(3, 1), True), (Side(2, 0), Side(3, 0), True)
    return tally([won] * wins + [lost] * losses + [tied] * (rated - wins - losses))


def test_the_rule_looks_only_at_its_counts() -> None:
    rule = TrialRule()
    assert rule.looks() == [10, 20, 30]
    assert decide(rule, _evidence(0, 0, 0)).action == "continue"  # no reactions at all: keep going
    assert "next look at 10" in decide(rule, _evidence(9, 9, 0)).reason  # convincing, but not a look yet
    at_ten = decide(rule, _evidence(10, 9, 0))
    assert (at_ten.action, at_ten.look) == ("promote", 10)
    assert "9 requests for, 0 against, P(better) 1.000" in at_ten.reason
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
    assert outcomes.count("promote") / len(outcomes) < 0.075  # 3.5-5.5 % measured; the bound leaves sampling room
    assert "continue" not in outcomes  # every trial ends by its last look
