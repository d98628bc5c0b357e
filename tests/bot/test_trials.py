"""Live champion/challenger trials: mixed writing, evidence from the store, decisions, restarts and endings."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.generation import ActiveAdapterBackend, generate_and_store, write_brief
from bot.learning.trial_rule import TrialRule
from bot.learning.trials import CHALLENGER, CHAMPION, Trials, split, undecided_leader
from model.writing.brief import Brief
from model.writing.writer import CopyWriter
from storage import Store, StoreError
from storage.base import utc_now
from tests.bot.conftest import Harness
from tests.fakes.backends import CHALLENGER_COPIES, CHAMPION_COPIES, VersionedEngine

BRIEF = Brief.create(product="린넨 셔츠", event="여름 세일", age="30대", channel="sns", n=5)
SMALL = TrialRule(min_requests=4, look_every=2, max_requests=8, settle_minutes=0)
ADMIN = "UADMIN1"


def _register(store: Store, *versions: str) -> None:
    for v in versions:
        store.add_model_version(version=v, base_model="starter", adapter_path=f"/adapters/{v}", status="candidate")


def _writer(store: Store) -> tuple[CopyWriter, VersionedEngine]:
    engine = VersionedEngine()
    return CopyWriter(ActiveAdapterBackend(engine, store)), engine


def test_the_split_alternates_which_side_writes_more() -> None:
    assert split(5, 0) == [CHAMPION] * 3 + [CHALLENGER] * 2
    assert split(5, 1) == [CHALLENGER] * 3 + [CHAMPION] * 2
    assert split(4, 7) == [CHALLENGER] * 2 + [CHAMPION] * 2
    assert split(1, 0) == [CHAMPION] and split(1, 1) == [CHALLENGER]


def test_one_trial_at_a_time_and_only_of_a_registered_version(store: Store) -> None:
    _register(store, "v0001", "v0002")
    trials = Trials(store, SMALL)
    first = trials.start("v0001", "")
    assert store.running_trial()["id"] == first
    assert {r["version"]: r["status"] for r in store.model_versions()}["v0001"] == "challenger"
    with pytest.raises(StoreError, match="a trial of v0001 is already running"):
        trials.start("v0002", "")
    with pytest.raises(StoreError, match="not registered"):
        store.start_trial(challenger="v9999", champion="", rule={})


def test_during_a_trial_each_side_writes_its_share_shuffled_and_recorded(store: Store) -> None:
    _register(store, "v0001")
    Trials(store, SMALL).start("v0001", "")
    writer, engine = _writer(store)
    orders = []
    for ordinal in range(4):
        stored = generate_and_store(store, writer, BRIEF, source="cli", seed=ordinal)
        rows = store.candidates_for(stored.request_id)
        by_version = [r["model_version"] for r in rows]
        champion_share = 3 if stored.request_id % 2 == 0 else 2
        assert by_version.count("starter") == champion_share and by_version.count("v0001") == 5 - champion_share
        for row in rows:  # each version wrote its own copy
            assert row["text"] in (CHAMPION_COPIES if row["model_version"] == "starter" else CHALLENGER_COPIES)
        assert store.get_request(stored.request_id)["trial_id"] == store.running_trial()["id"]
        orders.append(tuple(by_version))
    assert len(set(orders)) > 1  # shuffled: the position says nothing about the side
    assert {name for name, _ in engine.calls} == {"starter", "v0001"}
    # a fixed seed shuffles the same way, and writing outside a trial mixes nothing
    again, _ = write_brief(store, writer, BRIEF, seed=3, ordinal=4)  # request 4 had seed 3
    assert [c.model_version for c in again.candidates] == list(orders[3])
    store.end_trial(reason="test")
    alone, trial_id = write_brief(store, writer, BRIEF, seed=3)
    assert trial_id is None and {c.model_version for c in alone.candidates} == {"starter"}


def _rate(store: Store, request_id: int, liked_version: str) -> None:
    """👍 every candidate of `liked_version`, 👎 the others."""
    for row in store.candidates_for(request_id):
        signal = "up" if row["model_version"] == liked_version else "down"
        store.record_feedback(event_id=f"E{row['id']}", candidate_id=row["id"], user_id="U1", action="added",
                              signal=signal)  # fmt: skip


def _pick(store: Store, request_id: int, version: str) -> None:
    """🏆 the first candidate of `version`, and nothing else (a team that picks one winner per request)."""
    row = next(r for r in store.candidates_for(request_id) if r["model_version"] == version)
    store.record_feedback(event_id=f"E{row['id']}", candidate_id=row["id"], user_id="U1", action="added",
                          signal="win")  # fmt: skip


def test_reactions_decide_and_the_challenger_is_promoted(store: Store) -> None:
    _register(store, "v0001")
    trials = Trials(store, SMALL)
    trials.start("v0001", "")
    writer, _ = _writer(store)
    decisions = []
    for i in range(6):
        stored = generate_and_store(store, writer, BRIEF, source="slack", seed=i)
        _pick(store, stored.request_id, "v0001")
        decisions.append(trials.check())
    promoted = [d for d in decisions if d and d.decision.action == "promote"]
    # each winner had a 3/5 or 2/5 chance (as the sides alternate) of being the challenger's by luck: at the first
    # look (4 rated, 4 for) P(better) is 1 - ½ (6/25)² = 0.9712 < 0.975: go on; at the next (6 for) 1 - ½ (6/25)³
    assert decisions[3].decision.action == "continue" and decisions[3].decision.look == 4
    assert decisions[3].evidence.p_better == pytest.approx(1 - 0.5 * (6 / 25) ** 2)
    assert len(promoted) == 1 and promoted[0].evidence.rated == 6
    assert promoted[0].evidence.p_better == pytest.approx(1 - 0.5 * (6 / 25) ** 3)
    assert promoted[0].evidence.wins == 6 and promoted[0].evidence.rate(promoted[0].evidence.champion) == 0.0
    assert store.active_model_version()["version"] == "v0001"
    [ended] = store.trials()
    assert ended["status"] == "promoted" and ended["tally"]["wins"] == 6 and "after 6 rated requests" in ended["reason"]
    assert store.running_trial() is None


def test_a_worse_challenger_is_retired_and_a_removed_reaction_leaves_the_evidence(store: Store) -> None:
    _register(store, "v0001")
    trials = Trials(store, SMALL)
    trials.start("v0001", "")
    writer, _ = _writer(store)
    ids = [generate_and_store(store, writer, BRIEF, source="slack", seed=i).request_id for i in range(3)]
    for rid in ids:
        _rate(store, rid, "starter")
    assert trials.running().evidence.losses == 3
    # a withdrawn 👍 is withdrawn from the evidence too (the log is replayed, not counted)
    first = next(r for r in store.candidates_for(ids[0]) if r["model_version"] == "starter")
    store.record_feedback(event_id="Eback", candidate_id=first["id"], user_id="U1", action="removed", signal="up")
    state = trials.running()
    assert (
        state.evidence.rated == 3
        and state.evidence.champion.liked
        == sum(r["model_version"] == "starter" for rid in ids for r in store.candidates_for(rid)) - 1
    )
    rid = generate_and_store(store, writer, BRIEF, source="slack", seed=9).request_id
    _rate(store, rid, "starter")
    assert trials.check().decision.action == "retire"
    assert {r["version"]: r["status"] for r in store.model_versions()}["v0001"] == "lost"
    assert store.active_model_version() is None  # the base model stays the champion


def test_a_trial_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "copybot.db"
    store = Store.open(path)
    _register(store, "v0001")
    Trials(store, SMALL).start("v0001", "")
    writer, _ = _writer(store)
    for i in range(3):
        _pick(store, generate_and_store(store, writer, BRIEF, source="slack", seed=i).request_id, "v0001")
    before = Trials(store, TrialRule()).running()
    store.close()
    reopened = Store.open(path)
    after = Trials(reopened, TrialRule()).running()  # the trial keeps the rule it started with, not today's
    assert after is not None and after.rule == SMALL and after.evidence == before.evidence
    writer, _ = _writer(reopened)
    rid = generate_and_store(reopened, writer, BRIEF, source="slack", seed=5).request_id
    assert "v0001" in {r["model_version"] for r in reopened.candidates_for(rid)}  # the new process loads it again
    _pick(reopened, rid, "v0001")
    assert Trials(reopened).check().decision.look == 4  # the look at 4 is taken, and remembered
    assert reopened.running_trial()["looked_at"] == 4
    for i in range(2):
        _pick(reopened, generate_and_store(reopened, writer, BRIEF, source="slack", seed=6 + i).request_id, "v0001")
    assert Trials(reopened).check().decision.action == "promote"


def test_a_rollback_or_a_manual_promote_ends_the_trial(store: Store) -> None:
    _register(store, "v0001", "v0002", "v0003")
    store.promote_model_version("v0001")
    trials = Trials(store, SMALL)
    trials.start("v0002", "v0001")
    assert store.rollback_model_version() is None  # back to the base model
    [ended] = store.trials()
    assert ended["status"] == "ended" and ended["reason"] == "rolled back from v0001"
    assert {r["version"]: r["status"] for r in store.model_versions()}["v0002"] == "stopped"
    trials.start("v0003", "")
    assert store.rollback_model_version() is None  # nothing to roll back from: the trial ends all the same
    assert store.trials()[0]["reason"] == "rolled back while the base model served"
    with pytest.raises(StoreError, match="no active model version"):
        store.rollback_model_version()
    store.add_model_version(version="v0004", base_model="starter", adapter_path="/adapters/v0004")
    trials.start("v0004", "")
    store.promote_model_version("v0004")  # adopting the challenger by hand ends its trial too
    assert store.trials()[0]["status"] == "ended" and store.active_model_version()["version"] == "v0004"


def test_the_next_retrain_builds_on_a_challenger_whose_trial_ended_undecided_leaning_its_way(store: Store) -> None:
    _register(store, "v0001")
    trials = Trials(store, SMALL)
    trials.start("v0001", "")
    writer, _ = _writer(store)
    # one 🏆 per request: the challenger's copy wins 5 of 8, never enough for P(better) 0.975 at a look
    for i, winner in enumerate(["v0001", "starter", "v0001", "starter", "v0001", "v0001", "starter", "v0001"]):
        _pick(store, generate_and_store(store, writer, BRIEF, source="slack", seed=i).request_id, winner)
        trials.check()
    [ended] = store.trials()
    assert ended["status"] == "retired" and ended["reason"].startswith("no clear difference after 8")
    assert 0.5 < ended["tally"]["p_better"] < SMALL.promote_at
    leader = undecided_leader(store, "starter")
    assert leader is not None and leader["version"] == "v0001" and leader["status"] == "lost"
    assert undecided_leader(store, "gemma-3-270m") is None  # an adapter of another base model is never built on
    _register(store, "v0002")  # trained since (from the champion or from v0001): one hop per trial
    assert undecided_leader(store, "starter") is None


@pytest.mark.parametrize("ending", ["leaned the champion's way", "promoted", "ended by a person", "champion changed",
                                    "a person re-promoted the champion"])  # fmt: skip
def test_the_next_retrain_starts_from_the_champion_otherwise(store: Store, ending: str) -> None:
    _register(store, "v0001", "v0002")
    store.promote_model_version("v0001")
    trial_id = store.start_trial(challenger="v0002", champion="v0001", rule=SMALL.as_dict())
    leaning = 0.3 if ending == "leaned the champion's way" else 0.8
    if ending == "ended by a person":
        store.end_trial(reason="/copy trial stop")
    else:
        store.finish_trial(trial_id, promote=ending == "promoted", reason="no clear difference after 8 rated requests",
                           tally={"rated": 8, "p_better": leaning})  # fmt: skip
    if ending == "champion changed":
        store.rollback_model_version()  # the base model serves: v0002 was tried against a champion now gone
    if ending == "a person re-promoted the champion":
        time.sleep(0.002)  # the store's timestamps are in milliseconds
        store.promote_model_version("v0001")  # the same champion, but a person's call after the trial stands
    assert undecided_leader(store, "starter") is None
    if ending == "leaned the champion's way":  # the same trial leaning the other way would have been built on
        store.db.execute("update trials set tally = ? where id = ?", ['{"rated": 8, "p_better": 0.8}', trial_id])
        assert undecided_leader(store, "starter")["version"] == "v0002"


def _trial_harness(make_harness: Callable[..., Harness]) -> tuple[Harness, VersionedEngine]:
    engine = VersionedEngine()
    h = make_harness(COPYBOT_ADMINS=ADMIN, COPYBOT_TRIAL_MIN_REQUESTS="2", COPYBOT_TRIAL_LOOK_EVERY="2",
                     COPYBOT_TRIAL_MAX_REQUESTS="6", COPYBOT_TRIAL_PROMOTE_AT="0.85")  # fmt: skip
    assert h.deps.settings.trial_rule.settle_minutes == 10  # the default: people react over a few minutes
    h.deps.writer = CopyWriter(ActiveAdapterBackend(engine, h.store))
    _register(h.store, "v0001")
    assert h.deps.trials is not None
    h.deps.trials.start("v0001", "")
    return h, engine


def _wait_done(h: Harness, count: int) -> list[dict[str, str]]:
    """The request messages' final updates, once `count` requests are done."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = [u for u in h.fake.of("chat.update") if "✅" in u.get("text", "")]
        if len(done) >= count:
            return done
        time.sleep(0.05)
    raise AssertionError(f"{count} requests did not finish: {h.fake.methods()}")


def test_the_slack_flow_with_a_trial_running(make_harness: Callable[..., Harness]) -> None:
    h, _ = _trial_harness(make_harness)
    for i in range(2):
        h.command(f"린넨 셔츠 {i} / 여름 세일 / 30대")
        done = _wait_done(h, i + 1)
    assert all("시험 중인 새 모델" in u["text"] for u in done)
    texts = [c["text"] for c in h.fake.of("chat.postMessage") if c.get("thread_ts")]
    assert len(texts) == 10
    assert not any("v0001" in t or "starter" in t for t in texts)  # unlabelled: nothing says who wrote what
    assert any(t.split(". ", 1)[1] in CHALLENGER_COPIES for t in texts)
    # reactions on the challenger's candidates, through signed events; while they are fresh nothing is decided
    for n, row in enumerate(r for rid in (1, 2) for r in h.store.candidates_for(rid)):
        reaction = "+1" if row["model_version"] == "v0001" else "-1"
        event = {"type": "reaction_added", "user": "U7", "reaction": reaction, "event_ts": f"1700000{n:03d}.0",
                 "item": {"type": "message", "channel": row["slack_channel"], "ts": row["slack_ts"]}}  # fmt: skip
        h.event(event, event_id=f"Ev{n}")
    assert h.store.active_model_version() is None and h.deps.trials.running().evidence.rated == 0  # type: ignore[union-attr]
    # ten minutes later they have settled; the next reaction (here one on a champion copy) lets the rule look: 2
    # requests for, 0 against, P(better) 7/8, over this team's 0.85
    h.deps.trials.clock = lambda: utc_now() + timedelta(minutes=11)  # type: ignore[union-attr]
    row = h.store.candidates_for(1)[0]
    h.event({"type": "reaction_added", "user": "U8", "reaction": "eyes", "event_ts": "1700000999.0",
             "item": {"type": "message", "channel": row["slack_channel"], "ts": row["slack_ts"]}}, event_id="EvLate")  # fmt: skip
    assert h.store.active_model_version() is None  # an emoji that is no signal changes nothing
    h.event({"type": "reaction_added", "user": "U8", "reaction": "+1", "event_ts": "1700001000.0",
             "item": {"type": "message", "channel": row["slack_channel"], "ts": row["slack_ts"]}}, event_id="EvLate2")  # fmt: skip
    assert h.store.active_model_version()["version"] == "v0001"
    assert h.store.trials()[0]["status"] == "promoted"
    status = h.ack_json(h.command("status", user=ADMIN))["text"]
    assert "v0001" in status and "적용됐어요" in status


def test_admins_see_and_stop_the_trial_in_slack(make_harness: Callable[..., Harness]) -> None:
    h, _ = _trial_harness(make_harness)
    shown = h.ack_json(h.command("trial", user=ADMIN))["text"]
    assert "새 모델 v0001을(를) 지금 모델 기본 모델과(와) 실제 요청에서 비교하고 있어요" in shown
    assert "아직 평가된 요청이 없어요" in shown
    status = h.ack_json(h.command("상태", user=ADMIN))["text"]
    assert "새 모델 시험: 새 모델 v0001" in status
    refused = h.ack_json(h.command("trial stop", user="U100"))["text"]
    assert "관리자만" in refused and h.store.running_trial() is not None
    stopped = h.ack_json(h.command("시험 중단", user=ADMIN))["text"]
    assert "시험을 끝냈어요" in stopped and h.store.running_trial() is None
    assert h.store.trials()[0]["status"] == "ended" and "stopped by an admin" in h.store.trials()[0]["reason"]
    assert "진행 중인 시험이 없어요" in h.ack_json(h.command("trial promote", user=ADMIN))["text"]


def test_admins_can_adopt_the_challenger_or_roll_back(make_harness: Callable[..., Harness]) -> None:
    h, _ = _trial_harness(make_harness)
    adopted = h.ack_json(h.command("trial promote", user=ADMIN))["text"]
    assert "v0001을(를) 바로 적용했어요" in adopted and h.store.active_model_version()["version"] == "v0001"
    _register(h.store, "v0002")
    h.deps.trials.start("v0002", "v0001")  # type: ignore[union-attr]
    rolled = h.ack_json(h.command("rollback", user=ADMIN))["text"]
    assert "v0002의 시험도 끝냈어요" in rolled and h.store.running_trial() is None


def test_a_version_of_another_base_is_never_loaded_and_the_log_says_so_once(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """COPYBOT_BASE_MODEL changed while the store's active version (and a trial's challenger) was trained on the
    old base: its weights do not fit, so the base serves alone instead of every request failing."""
    store.add_model_version(version="v0001", base_model="gemma-3-270m", adapter_path="/adapters/v0001")
    store.promote_model_version("v0001")
    _register(store, "v0002")
    engine = VersionedEngine()
    backend = ActiveAdapterBackend(engine, store, base_model="starter")
    with caplog.at_level("WARNING", logger="bot.generation"):
        backend.sync(force=True)
        backend.sync(force=True)
    assert engine.version == "starter" and engine.loaded == set()
    [warning] = [r.getMessage() for r in caplog.records if "v0001" in r.getMessage()]
    assert "trained on gemma-3-270m, not on the configured base starter" in warning
    assert "COPYBOT_BASE_MODEL=gemma-3-270m" in warning
    store.promote_model_version("v0002")  # a version of this base is served as before
    backend.sync(force=True)
    assert engine.version == "v0002" and engine.loaded == {"v0002"}
