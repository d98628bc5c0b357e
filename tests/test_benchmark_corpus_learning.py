"""The generated archive of `python -m benchmarks.corpus_learning`: the traits and the CTR are what it says."""

from __future__ import annotations

import statistics

from benchmarks.corpus_learning import TRAIT_A, TRAIT_B, archive


def test_one_trait_decides_the_ctr_and_the_other_equally_frequent_one_does_not() -> None:
    rows = archive(60)
    assert len(rows) == 240 and len({r["제품"] for r in rows}) == 60  # four copies of each brief
    has_a = [TRAIT_A in r["카피"] for r in rows]
    has_b = [TRAIT_B in r["카피"] for r in rows]
    assert sum(has_a) == sum(has_b) == 120  # each in half of the copies

    def mean_ctr(keep: list[bool], value: bool) -> float:
        return statistics.mean(float(r["CTR(%)"]) for r, k in zip(rows, keep, strict=True) if k == value)

    assert mean_ctr(has_a, True) - mean_ctr(has_a, False) > 0.8  # A adds a point
    assert abs(mean_ctr(has_b, True) - mean_ctr(has_b, False)) < 0.15  # B adds nothing
    assert archive(60) == rows  # seeded: the same archive every run
