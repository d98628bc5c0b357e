"""The rules by which a scored corpus teaches (model/training/corpus_scores.py), on small examples worked out by
hand."""

from __future__ import annotations

import pytest

from model.corpus_standings import ScoreRules, standings
from model.training.corpus_scores import score_pairs, sft_weight


def _row(text: str, score: float | None, *, age: str = "20대", channel: str = "sns", measure: str = "ctr",
         product: str = "린넨 셔츠", category: str = "") -> dict:  # fmt: skip
    return {"text": text, "score": score, "score_measure": measure if score is not None else "", "age_group": age,
            "channel": channel, "product": product, "event": "여름 세일", "category": category}  # fmt: skip


def test_a_copy_stands_by_its_rank_among_comparable_copies_and_is_weighted_by_it() -> None:
    rows = [_row(f"카피 {i}", float(i)) for i in range(1, 9)]  # CTR 1..8 in one group of 8
    got = standings(rows)
    assert got == [0.0, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0]
    assert [sft_weight(s) for s in got] == [1, 1, 1, 1, 2, 2, 3, 3]
    assert sft_weight(None) == 2  # neutral: the middle, so scoring some copies leaves the rest as they were


def test_ties_share_a_standing() -> None:
    rows = [_row(f"카피 {i}", score) for i, score in enumerate([1.0, 2.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0])]
    got = standings(rows)
    assert got[1] == got[2] == got[3] == round((1 + 1) / 7, 4)  # below 1, three equal: mid-rank 2 of 0..7


def test_a_group_too_small_falls_back_to_the_channel_or_leaves_its_copies_neutral() -> None:
    twenties = [_row(f"20대 {i}", float(i)) for i in range(1, 9)]
    thirties = [_row(f"30대 {i}", score, age="30대") for i, score in enumerate([0.5, 4.5, 9.0])]
    lonely = [_row(f"배너 {i}", float(i), channel="banner") for i in range(3)]  # 3 banner CTRs in all
    got = standings(twenties + thirties + lonely)
    # the 20대 copies have a group of their own; the three 30대 ones are ranked among all 11 SNS CTRs
    assert got[:8] == standings(twenties)
    assert got[8:11] == [0.0, 0.5, 1.0]  # 0.5 is the lowest of 11; 4.5 beats 5 of the other 10; 9.0 beats all
    assert got[11:] == [None, None, None]
    assert standings([_row("점수 없음", None)]) == [None]


def test_scores_of_different_measures_are_never_ranked_together() -> None:
    ctr = [_row(f"클릭 {i}", float(i)) for i in range(8)]
    opens = [_row(f"오픈 {i}", 100.0 + i, measure="open_rate") for i in range(8)]
    got = standings(ctr + opens)
    assert got[:8] == got[8:]  # each measure ranked on its own: 100+ open rates do not sit above every CTR


def test_the_category_is_the_group_when_the_age_group_is_too_small() -> None:
    rows = [_row(f"뷰티 {i}", float(i), age=f"{10 * (i % 5 + 1)}대", category="beauty") for i in range(8)]
    rows += [_row(f"식품 {i}", 50.0 + i, category="food") for i in range(8)]
    got = standings(rows)
    assert got[:8] == [round(i / 7, 4) for i in range(8)]  # ranked among beauty only, not below every food copy


def test_pairs_are_copies_of_one_brief_further_apart_than_noise() -> None:
    rows = [_row(f"카피 {i}", float(i)) for i in range(1, 9)]  # one brief, standings 0, 1/7, …, 1
    pairs = score_pairs(rows)
    gaps = {(b["text"], w["text"]) for b, w in pairs}
    assert ("카피 8", "카피 1") in gaps and ("카피 5", "카피 1") in gaps  # 4/7 apart: over 0.5
    assert ("카피 5", "카피 2") not in gaps and ("카피 2", "카피 1") not in gaps  # 3/7 and 1/7 apart: a tie
    assert len(pairs) == 10  # gaps of 4, 5, 6 and 7 ranks: 4 + 3 + 2 + 1
    assert all(b["score"] > w["score"] for b, w in pairs)
    # copies of another product are in the group but never paired across briefs
    other = [_row(f"다른 {i}", float(i), product="캐리어") for i in range(1, 9)]
    assert {(b["product"], w["product"]) for b, w in score_pairs(rows + other)} == {("린넨 셔츠", "린넨 셔츠"),
                                                                                   ("캐리어", "캐리어")}  # fmt: skip
    assert score_pairs(rows, ScoreRules(min_gap=1.0)) == [(rows[7], rows[0])]


def test_the_rules_refuse_settings_that_mean_nothing() -> None:
    with pytest.raises(ValueError, match="min_group"):
        ScoreRules(min_group=1)
    with pytest.raises(ValueError, match="min_gap"):
        ScoreRules(min_gap=0)
