"""How reactions rank copies: one rule, used by the dataset's pairs and the weekly report's best copies."""

from __future__ import annotations

from model.training.feedback import RatedCandidate, reaction_value


def test_a_winner_counts_as_two_thumbs_up() -> None:
    assert reaction_value(up=2, down=1, win=1) == 3
    assert reaction_value(up=0, down=0, win=1) > reaction_value(up=1, down=0, win=0)
    assert RatedCandidate("카피", "polite", up=2, down=1, win=1).value == reaction_value(2, 1, 1)
