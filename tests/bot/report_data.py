"""Two weeks of requests, reactions and edits, written through the store at chosen times (a controllable clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from storage import Store

KST_W48_MONDAY = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)  # 2026-11-23 00:00 in Asia/Seoul, the start of W48


class Clock:
    """A clock the test sets."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _request(store: Store, clock: Clock, at: datetime, *, user: str, age: str, event: str, channel: str,
             texts: list[tuple[str, int, list[str]]]) -> list[int]:  # fmt: skip
    """One request with candidates (text, register_ok, flags); returns candidate ids."""
    clock.now = at
    rid = store.record_request({"product": f"상품 {at:%d%H}", "event": event, "age_group": age, "channel": channel,
                                "n": len(texts)}, source="slack", user_id=user)  # fmt: skip
    ids = store.save_candidates(rid, [{"text": t, "register": "polite", "register_ok": ok, "flags": flags}
                                      for t, ok, flags in texts], model_version="starter")  # fmt: skip
    return ids


def seed_two_weeks(path: Path) -> Store:
    """W47 (before the KST Monday): 2 requests, 1 won. W48: 4 requests from 3 people, 2 won, a removed 👍, an edit,
    a candidate flagged for a word and one for a figure its brief did not give, one register mismatch; one request at 23:59 KST Sunday belongs to W47."""
    clock = Clock(KST_W48_MONDAY)
    store = Store.open(path, clock=clock)
    day = 24 * 3600

    def at(seconds: float) -> datetime:
        return datetime.fromtimestamp(KST_W48_MONDAY.timestamp() + seconds, UTC)

    # W47
    a = _request(store, clock, at(-3 * day), user="U1", age="20대", event="여름 세일", channel="sns",
                 texts=[("지난주 카피 하나", 1, []), ("지난주 카피 둘", 1, [])])  # fmt: skip
    store.record_feedback(event_id="e1", candidate_id=a[0], user_id="U9", action="added", signal="win", event_ts="1.0")
    _request(store, clock, at(-60), user="U2", age="50대", event="", channel="sms",  # Sunday 23:59 KST
             texts=[("일요일 밤 카피", 1, [])])  # fmt: skip
    # W48
    b = _request(store, clock, at(1 * day), user="U1", age="20대", event="여름 세일", channel="sns",
                 texts=[("여름엔 린넨이죠!", 1, []), ("가볍게 입어 보세요.", 1, []), ("최고의 셔츠예요", 1, ["absolute: 최고"])])  # fmt: skip
    c = _request(
        store,
        clock,
        at(2 * day),
        user="U2",
        age="20대",
        event="여름 세일",
        channel="push",
        texts=[("오늘만 20% 할인해요", 1, ["ungrounded: '20%' — 브리프에 없는 수치"]), ("지금 만나 보세요", 0, [])],
    )
    d = _request(store, clock, at(3 * day), user="U3", age="50대", event="추석", channel="sms",
                 texts=[("정성을 담았습니다.", 1, []), ("귀한 분께 드립니다.", 1, [])])  # fmt: skip
    _request(store, clock, at(4 * day), user="U3", age="50대", event="추석", channel="sms",
             texts=[("넉넉한 명절 되십시오.", 1, [])])  # fmt: skip
    clock.now = at(5 * day)
    store.record_feedback(event_id="e2", candidate_id=b[0], user_id="U9", action="added", signal="win", event_ts="2.0")
    store.record_feedback(event_id="e3", candidate_id=b[0], user_id="U8", action="added", signal="up", event_ts="2.1")
    store.record_feedback(event_id="e4", candidate_id=b[1], user_id="U8", action="added", signal="up", event_ts="2.2")
    store.record_feedback(event_id="e5", candidate_id=b[1], user_id="U8", action="removed", signal="up",
                          event_ts="2.3")  # fmt: skip
    store.record_feedback(event_id="e6", candidate_id=d[0], user_id="U9", action="added", signal="win", event_ts="2.4")
    store.record_feedback(event_id="e7", candidate_id=d[0], user_id="U7", action="added", signal="win", event_ts="2.5")
    store.record_feedback(event_id="e8", candidate_id=c[1], user_id="U9", action="added", signal="down", event_ts="2.6")
    store.record_edit(candidate_id=c[0], user_id="U2", edited_text="오늘 하루, 20% 할인해요")
    return store
