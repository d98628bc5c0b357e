"""Replaying the feedback log into current reactions."""

from __future__ import annotations

from storage.scores import Score, active_reactions, scores


def ev(
    i: int, action: str, signal: str, candidate: int, *, user: str = "U1", ts: str | None = None, request: int = 1
) -> dict:
    return {"id": i, "action": action, "signal": signal, "candidate_id": candidate, "user_id": user,
            "request_id": request, "event_ts": ts if ts is not None else f"{100 + i}.0"}  # fmt: skip


def test_add_then_remove_cancels() -> None:
    assert active_reactions([ev(1, "added", "up", 7), ev(2, "removed", "up", 7)]) == set()


def test_event_time_not_arrival_order_decides() -> None:
    late_remove_first = [ev(1, "removed", "up", 7, ts="200.0"), ev(2, "added", "up", 7, ts="100.0")]
    assert active_reactions(late_remove_first) == set()


def test_one_winner_per_person_per_request() -> None:
    events = [ev(1, "added", "win", 7), ev(2, "added", "win", 8, user="U2"), ev(3, "added", "win", 9)]
    assert scores(events) == {8: Score(win=1), 9: Score(win=1)}
    other_request = [ev(1, "added", "win", 7), ev(2, "added", "win", 20, request=2)]
    assert set(scores(other_request)) == {7, 20}


def test_reactions_from_several_people_add_up() -> None:
    assert scores(
        [ev(1, "added", "up", 7), ev(2, "added", "up", 7, user="U2"), ev(3, "added", "down", 7, user="U3")]
    ) == {7: Score(up=2, down=1)}
