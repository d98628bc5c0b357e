"""Feedback written through the same store calls the Slack bot makes, for retrain, tune and simulate tests."""

from __future__ import annotations

from storage import Store


def seed_feedback(store: Store, requests: int = 8) -> None:
    """Requests, candidates and reactions written through the same store calls the Slack bot makes."""
    for i in range(requests):
        brief = {"product": f"린넨 셔츠 {i}", "event": "여름 세일", "age_group": "30대", "channel": "banner", "n": 3}
        rid = store.record_request(brief, source="slack", user_id="U1")
        ids = store.save_candidates(rid, [
            {"text": f"여름 세일 {i}0% 할인, 지금 만나 보세요", "register": "polite"},
            {"text": f"그냥 셔츠예요 {i}", "register": "polite"},
            {"text": f"시원한 린넨, 가볍게 입어요 {i}", "register": "polite"},
        ], model_version="starter")  # fmt: skip
        for j, cid in enumerate(ids):
            store.set_candidate_message(cid, slack_channel="C1", slack_ts=f"{i}.{j}")
        store.record_feedback(event_id=f"E{i}a", candidate_id=ids[0], user_id="U2", action="added", signal="win")
        store.record_feedback(event_id=f"E{i}b", candidate_id=ids[1], user_id="U2", action="added", signal="down")
        store.record_feedback(event_id=f"E{i}c", candidate_id=ids[2], user_id="U3", action="added", signal="up")
        if i % 2:
            store.record_edit(candidate_id=ids[1], user_id="U4", edited_text=f"여름 린넨 셔츠, 오늘만 {i}0% 할인해요")
