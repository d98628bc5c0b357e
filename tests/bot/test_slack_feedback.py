"""Reactions and edits through the real Bolt app: feedback events, retries, skin tones, winners, revisions."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.bot.conftest import Harness
from tests.fakes.backends import POLITE, ScriptedBackend


@pytest.fixture
def posted(make_harness: Callable[..., Harness]) -> tuple[Harness, list[dict]]:
    """A harness with one finished request of three candidates posted in C100."""
    h = make_harness(ScriptedBackend(script=[POLITE[:3]]))
    h.ack_json(h.command("린넨 셔츠 / 여름 세일 / 30대 / 3개"))
    h.fake.wait_for("chat.update", 1)
    [request] = h.store.requests_with_status("done")
    return h, h.store.candidates_for(request["id"])


def reaction(kind: str, name: str, ts: str, *, user: str = "U200", event_ts: str = "1700000100.000001") -> dict:
    return {"type": kind, "user": user, "reaction": name, "item_user": "UBOT", "event_ts": event_ts,
            "item": {"type": "message", "channel": "C100", "ts": ts}}  # fmt: skip


def test_reactions_added_and_removed_become_feedback(posted: tuple[Harness, list[dict]]) -> None:
    h, cands = posted
    first = cands[0]
    assert h.event(reaction("reaction_added", "+1", first["slack_ts"]), event_id="Ev1").status == 200
    h.event(reaction("reaction_added", "-1", cands[1]["slack_ts"]), event_id="Ev2")
    scores = h.store.candidate_scores(first["request_id"])
    assert (scores[first["id"]].up, scores[cands[1]["id"]].down) == (1, 1)
    h.event(reaction("reaction_removed", "+1", first["slack_ts"], event_ts="1700000200.0"), event_id="Ev3")
    assert first["id"] not in h.store.candidate_scores(first["request_id"])
    assert [e["action"] for e in h.store.feedback_for(first["id"])] == ["added", "removed"]


def test_a_retried_delivery_counts_once(posted: tuple[Harness, list[dict]]) -> None:
    h, cands = posted
    event = reaction("reaction_added", "thumbsup", cands[0]["slack_ts"])
    h.event(event, event_id="EvDup")
    h.event(event, event_id="EvDup", retry=1)
    h.event(event, event_id="EvDup", retry=2)
    assert len(h.store.feedback_for(cands[0]["id"])) == 1
    assert h.store.candidate_scores()[cands[0]["id"]].up == 1


def test_skin_tones_and_aliases_are_normalised(posted: tuple[Harness, list[dict]]) -> None:
    h, cands = posted
    h.event(reaction("reaction_added", "+1::skin-tone-3", cands[0]["slack_ts"]), event_id="EvSkin")
    h.event(reaction("reaction_added", "thumbsdown", cands[1]["slack_ts"]), event_id="EvAlias")
    [up] = h.store.feedback_for(cands[0]["id"])
    assert (up["signal"], up["reaction"]) == ("up", "+1::skin-tone-3")
    assert h.store.feedback_for(cands[1]["id"])[0]["signal"] == "down"


def test_the_bots_own_reactions_and_other_messages_leave_no_row(posted: tuple[Harness, list[dict]]) -> None:
    h, cands = posted
    h.event(reaction("reaction_added", "+1", cands[0]["slack_ts"], user="UBOT"), event_id="EvSelf")
    h.event(reaction("reaction_added", "+1", "1600000000.000001"), event_id="EvElsewhere")
    h.event(reaction("reaction_added", "tada", cands[0]["slack_ts"]), event_id="EvNotFeedback")
    file_event = reaction("reaction_added", "+1", cands[0]["slack_ts"])
    file_event["item"] = {"type": "file", "file": "F1"}
    h.event(file_event, event_id="EvFile")
    assert h.store.counts()["feedback_events"] == 0


def test_a_new_trophy_from_the_same_person_moves_their_pick(posted: tuple[Harness, list[dict]]) -> None:
    h, cands = posted
    h.event(reaction("reaction_added", "trophy", cands[0]["slack_ts"], event_ts="1700000100.1"), event_id="EvW1")
    h.event(
        reaction("reaction_added", "trophy", cands[2]["slack_ts"], user="U300", event_ts="1700000100.2"),
        event_id="EvW2",
    )
    h.event(reaction("reaction_added", "trophy", cands[1]["slack_ts"], event_ts="1700000100.3"), event_id="EvW3")
    scores = h.store.candidate_scores(cands[0]["request_id"])
    assert cands[0]["id"] not in scores
    assert (scores[cands[1]["id"]].win, scores[cands[2]["id"]].win) == (1, 1)
    assert h.store.stats()["winners"] == 2


def test_a_removal_that_arrives_before_its_addition_still_cancels_it(posted: tuple[Harness, list[dict]]) -> None:
    h, cands = posted
    ts = cands[0]["slack_ts"]
    h.event(reaction("reaction_removed", "+1", ts, event_ts="1700000300.0"), event_id="EvLateRemove")
    h.event(reaction("reaction_added", "+1", ts, event_ts="1700000200.0"), event_id="EvEarlyAdd")
    assert h.store.candidate_scores() == {}


def _view_submission(callback_id: str, values: dict, metadata: str, user: str = "U200") -> dict:
    return {
        "type": "view_submission",
        "user": {"id": user, "team_id": "T0001"},
        "team": {"id": "T0001"},
        "api_app_id": "A1",
        "trigger_id": "T.2",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": metadata,
            "state": {"values": values},
        },
    }


def test_the_edit_button_opens_a_prefilled_modal_and_the_edit_is_stored_and_posted(
    posted: tuple[Harness, list[dict]],
) -> None:
    h, cands = posted
    button = {
        "type": "block_actions", "user": {"id": "U200", "team_id": "T0001"}, "team": {"id": "T0001"},
        "api_app_id": "A1", "trigger_id": "T.3", "container": {"type": "message"},
        "channel": {"id": "C100"}, "message": {"ts": cands[1]["slack_ts"]},
        "actions": [{"action_id": "edit_candidate", "block_id": "b", "value": str(cands[1]["id"]), "type": "button"}],
    }  # fmt: skip
    assert h.interact(button).status == 200
    [opened] = h.fake.wait_for("views.open", 1)
    modal = opened["view"]
    assert modal["callback_id"] == "copy_edit" and modal["private_metadata"] == str(cands[1]["id"])
    assert modal["blocks"][0]["element"]["initial_value"] == cands[1]["text"]

    empty = h.ack_json(
        h.interact(_view_submission("copy_edit", {"text": {"value": {"value": "  "}}}, str(cands[1]["id"])))
    )
    assert empty["response_action"] == "errors" and "text" in empty["errors"]
    values = {"text": {"value": {"type": "plain_text_input", "value": "린넨 셔츠, 여름을 <가볍게> 입어요"}}}
    assert h.interact(_view_submission("copy_edit", values, str(cands[1]["id"]))).status == 200
    [edit] = h.store.edits_for(cands[1]["id"])
    assert (edit["user_id"], edit["original_text"]) == ("U200", cands[1]["text"])
    assert edit["edited_text"] == "린넨 셔츠, 여름을 <가볍게> 입어요"
    revision = next(p for p in h.fake.wait_for("chat.postMessage", 5) if "수정안" in p["text"])
    assert revision["thread_ts"] == h.store.get_request(cands[1]["request_id"])["slack_ts"]
    assert "&lt;가볍게&gt;" in revision["text"] and "<@U200>" in revision["text"]


def test_copy_alone_opens_the_modal_and_its_submission_runs_the_brief(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(ScriptedBackend(script=[POLITE[:2]]))
    assert h.ack_json(h.command("")) == {}
    [opened] = h.fake.wait_for("views.open", 1)
    view = opened["view"]
    assert (view["callback_id"], view["private_metadata"]) == ("copy_brief", "C100")
    assert [b["block_id"] for b in view["blocks"]] == ["product", "event", "age", "channel", "n", "notes"]

    def values(n: str, product: str = "수분 크림") -> dict:
        return {
            "product": {"value": {"type": "plain_text_input", "value": product}},
            "event": {"value": {"type": "plain_text_input", "value": "신상품 입고"}},
            "age": {"value": {"type": "static_select", "selected_option": {"value": "30대"}}},
            "channel": {"value": {"type": "static_select", "selected_option": {"value": "push"}}},
            "n": {"value": {"type": "plain_text_input", "value": n}},
            "notes": {"value": {"type": "plain_text_input", "value": None}},
        }

    bad = h.ack_json(h.interact(_view_submission("copy_brief", values("99"), "C100")))
    assert bad["response_action"] == "errors" and "1~10" in bad["errors"]["n"]
    bad = h.ack_json(h.interact(_view_submission("copy_brief", values("2", product=" "), "C100")))
    assert list(bad["errors"]) == ["product"]
    assert h.store.counts()["requests"] == 0
    assert h.interact(_view_submission("copy_brief", values("2"), "C100")).status == 200
    h.fake.wait_for("chat.update", 1)
    [request] = h.store.requests_with_status("done")
    assert (request["source"], request["channel"], request["n"], request["slack_channel"]) == (
        "modal",
        "push",
        2,
        "C100",
    )
    time.sleep(0.1)
    assert len(h.store.candidates_for(request["id"])) == 2


def test_copybot_stats_counts_what_happened(posted: tuple[Harness, list[dict]]) -> None:
    import json

    from tests.cli import run

    h, cands = posted
    h.event(reaction("reaction_added", "+1", cands[0]["slack_ts"]), event_id="E1")
    h.event(reaction("reaction_added", "-1", cands[1]["slack_ts"]), event_id="E2")
    h.event(reaction("reaction_added", "trophy", cands[2]["slack_ts"]), event_id="E3")
    h.event(reaction("reaction_removed", "-1", cands[1]["slack_ts"], event_ts="1700000200.0"), event_id="E4")
    h.store.record_edit(candidate_id=cands[0]["id"], user_id="U9", edited_text="고친 카피")
    env = {"COPYBOT_DB": str(h.deps.settings.db_path)}  # and no other COPYBOT_ or SLACK_ variable
    out = run("stats", "--json", extra_env=env, check=True)
    figures = json.loads(out.stdout)
    assert figures["requests"] == 1 and figures["requests_by_status"] == {"done": 1}
    assert (figures["candidates"], figures["feedback_events"], figures["edits"]) == (3, 4, 1)
    assert (figures["positive"], figures["negative"], figures["winners"]) == (1, 0, 1)
    text = run("stats", extra_env=env, check=True)
    assert "requests:        1 (done 1)" in text.stdout and "winners:         1" in text.stdout


def test_a_custom_reaction_mapping_is_used(make_harness: Callable[..., Harness], tmp_path) -> None:
    mapping = tmp_path / "reactions.json"
    mapping.write_text('{"positive": ["tada"], "negative": ["-1"], "winner": ["crown"]}', "utf-8")
    h = make_harness(ScriptedBackend(script=[POLITE[:1]]), COPYBOT_REACTIONS=str(mapping))
    h.ack_json(h.command("셔츠 / 세일 / 30대 / 1개"))
    h.fake.wait_for("chat.update", 1)
    [cand] = h.store.candidates_for(h.store.requests_with_status("done")[0]["id"])
    h.event(reaction("reaction_added", "tada", cand["slack_ts"]), event_id="T1")
    h.event(reaction("reaction_added", "+1", cand["slack_ts"], user="U9"), event_id="T2")  # not in this mapping
    h.event(reaction("reaction_added", "crown", cand["slack_ts"], user="U8"), event_id="T3")
    assert [e["signal"] for e in h.store.feedback_for(cand["id"])] == ["up", "win"]


def _use_button(candidate: dict, *, user: str = "U200", action_ts: str = "1700000300.000001") -> dict:
    return {
        "type": "block_actions", "user": {"id": user, "team_id": "T0001"}, "team": {"id": "T0001"},
        "api_app_id": "A1", "trigger_id": "T.4", "container": {"type": "message"},
        "channel": {"id": "C100"}, "message": {"ts": candidate["slack_ts"], "thread_ts": "1700000000.000001"},
        "actions": [{"action_id": "mark_used", "block_id": "b", "value": str(candidate["id"]), "type": "button",
                     "action_ts": action_ts}],
    }  # fmt: skip


def test_a_copy_is_marked_used_by_a_reaction_or_the_button_and_unmarked_by_the_same(
    posted: tuple[Harness, list[dict]],
) -> None:
    h, cands = posted
    thread = [p for p in h.fake.of("chat.postMessage") if p.get("thread_ts")]
    assert [e["action_id"] for e in thread[0]["blocks"][2]["elements"]] == ["edit_candidate", "mark_used"]
    assert f"ID {cands[0]['id']}" in thread[0]["blocks"][1]["elements"][0]["text"]  # what results name it by

    h.event(reaction("reaction_added", "mega", cands[0]["slack_ts"]), event_id="EvMega")
    h.event(reaction("reaction_added", "rocket", cands[0]["slack_ts"], user="U300"), event_id="EvRocket")
    sent = h.store.candidate_scores()[cands[0]["id"]]
    assert sent.used == 2 and (sent.up, sent.down, sent.win) == (0, 0, 0)  # a fact about the copy, not a rating

    assert h.interact(_use_button(cands[1])).status == 200
    [notice] = h.fake.wait_for("chat.postEphemeral", 1)
    assert notice["user"] == "U200" and f"후보 ID {cands[1]['id']}" in notice["text"] and "사용함으로" in notice["text"]
    assert notice["thread_ts"] == "1700000000.000001"  # in the thread, beside the candidate
    assert h.store.candidate_scores()[cands[1]["id"]].used == 1
    h.interact(_use_button(cands[1], action_ts="1700000400.000001"))  # the same person again: unmark
    assert "취소" in h.fake.wait_for("chat.postEphemeral", 2)[1]["text"]
    assert cands[1]["id"] not in h.store.candidate_scores()

    [rated] = h.store.rated_requests()
    assert [c["used"] for c in rated["candidates"]] == [True, False, False]
    figures = h.store.stats()
    assert figures["marked_used"] == 1 and figures["feedback_events"] == 4
