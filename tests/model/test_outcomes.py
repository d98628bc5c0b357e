"""The rules of real results, on hand-worked numbers: when one sent copy beat another, and how rows combine."""

from __future__ import annotations

from model.training.outcomes import Outcome, compare, score_row, shared_measure


def test_the_same_ctr_gap_is_a_tie_on_few_sends_and_a_win_on_many() -> None:
    # 3.0 % vs 2.5 %: z = 0.68 on 1,000 sends each, 3.06 on 20,000 each (threshold 1.96)
    assert compare(Outcome(sends=1000, clicks=30, ctr=0.03), Outcome(sends=1000, clicks=25, ctr=0.025)) == 0
    assert compare(Outcome(sends=20000, clicks=600, ctr=0.03), Outcome(sends=20000, clicks=500, ctr=0.025)) == 1
    assert compare(Outcome(sends=20000, clicks=500, ctr=0.025), Outcome(sends=20000, clicks=600, ctr=0.03)) == -1


def test_without_counts_a_rate_must_be_at_least_1_2_times_the_other() -> None:
    assert compare(Outcome(ctr=0.030), Outcome(ctr=0.025)) == 1  # exactly 1.2 times
    assert compare(Outcome(ctr=0.030), Outcome(ctr=0.027)) == 0  # 1.11 times: noise
    assert compare(Outcome(ctr=0.0), Outcome(ctr=0.0)) == 0
    # one side counted, the other not: noise cannot be measured, so the ratio rule decides
    assert compare(Outcome(sends=100, clicks=3, ctr=0.03), Outcome(ctr=0.02)) == 1


def test_ctr_comes_first_and_conversion_rates_are_compared_only_with_each_other() -> None:
    with_ctr = Outcome(sends=5000, clicks=250, conversions=10, ctr=0.05)
    conversions_only = Outcome(sends=5000, conversions=50)
    assert shared_measure(with_ctr, conversions_only) == "conversion_rate"
    assert compare(conversions_only, with_ctr) == 1  # 1.0 % vs 0.2 % of 5,000 sends: z = 5.1
    assert shared_measure(Outcome(ctr=0.05), Outcome(conversions=3)) is None
    assert compare(Outcome(ctr=0.05), Outcome(conversions=3)) == 0


def test_a_sent_copy_is_ranked_on_its_ctr_within_its_channel() -> None:
    row = score_row(Outcome(sends=100, clicks=4, ctr=0.04), {"channel": "sms", "age_group": "20대"})
    assert row == {"score": 0.04, "score_measure": "ctr", "channel": "sms", "age_group": "20대", "category": ""}
    assert score_row(Outcome(sends=100, conversions=2), {"channel": "sms"})["score_measure"] == "conversion_rate"


def test_impossible_counts_are_a_tie_not_a_crash() -> None:
    assert compare(Outcome(sends=100, conversions=150), Outcome(sends=100, conversions=130)) == 0
    assert compare(Outcome(sends=100, clicks=0, ctr=0.0), Outcome(sends=100, clicks=0, ctr=0.0)) == 0
