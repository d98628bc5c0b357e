"""Thin Bolt listeners: parse, ack, hand off, render. Each stays short; the work lives in copy_requests.py."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack import admin, blocks
from bot.slack.copy_requests import BUSY, RESTARTING, BotDeps, Origin, accept, reject_busy
from bot.slack.parsing import CommandParseError, parse_command
from model.errors import BriefError
from model.writing.brief import Brief, clean_field
from storage import StoreBusy, StoreError
from storage.scores import active_reactions

log = logging.getLogger(__name__)

COMMAND = "/copy"
REACTION_EVENTS = ("reaction_added", "reaction_removed")
# Which modal input shows the error for each brief field.
FIELD_BLOCKS = {
    "product": "product",
    "event": "event",
    "age_group": "age",
    "channel": "channel",
    "n": "n",
    "notes": "notes",
}


def register(app: App, deps: BotDeps) -> list[tuple[str, str]]:
    """Attach every copybot listener to the app; return (kind, name) pairs, which a test checks against
    manifest.yml: commands and events must appear there, and views/actions need interactivity."""
    app.command(COMMAND)(lambda ack, command, client: on_copy(deps, ack, command, client))
    app.view(blocks.BRIEF_VIEW)(lambda ack, body, view, client: on_brief_submit(deps, ack, body, view, client))
    app.action(blocks.EDIT_ACTION)(lambda ack, body, client: on_edit_button(deps, ack, body, client))
    app.view(blocks.EDIT_VIEW)(lambda ack, body, view, client: on_edit_submit(deps, ack, body, view, client))
    app.action(blocks.USE_ACTION)(lambda ack, body, client: on_use_button(deps, ack, body, client))
    for name in REACTION_EVENTS:
        app.event(name)(lambda body, event, context: on_reaction(deps, body, event, context))
    return [
        ("command", COMMAND),
        ("view", blocks.BRIEF_VIEW),
        ("action", blocks.EDIT_ACTION),
        ("view", blocks.EDIT_VIEW),
        ("action", blocks.USE_ACTION),
        *[("event", name) for name in REACTION_EVENTS],
    ]


def _ephemeral(message: dict[str, Any]) -> dict[str, Any]:
    return {"response_type": "ephemeral", **message}


def _channel_allowed(deps: BotDeps, channel_id: str) -> bool:
    allowed = deps.settings.allowed_channels
    return not allowed or channel_id in allowed


def on_copy(deps: BotDeps, ack: Ack, command: dict[str, Any], client: WebClient) -> None:
    """`/copy`: help, the modal, or a brief to write; errors come back ephemerally and post nothing."""
    channel_id, user_id = str(command.get("channel_id") or ""), str(command.get("user_id") or "")
    if not channel_id or not user_id:  # not a command Slack sends: nowhere to answer
        ack(**_ephemeral({"text": "요청을 읽을 수 없어요. 채널에서 `/copy`를 다시 입력해 주세요."}))
        return
    if not _channel_allowed(deps, channel_id):
        where = ", ".join(f"<#{c}>" for c in deps.settings.allowed_channels)
        ack(**_ephemeral({"text": f"이 채널에서는 /copy를 쓸 수 없어요. {where}에서 요청해 주세요."}))
        return
    try:
        parsed = parse_command(command.get("text"))
        if parsed.kind == "help":
            ack(**_ephemeral(blocks.help_message()))
            return
        if parsed.kind == "admin":
            ack(
                **_ephemeral({"text": admin.handle(deps, command, client, parsed.fields["word"], parsed.fields["arg"])})
            )
            return
        if parsed.kind == "modal":
            ack()
            client.views_open(trigger_id=command.get("trigger_id", ""), view=blocks.brief_modal(channel_id))
            return None
        brief = Brief.create(**parsed.fields)
    except (CommandParseError, BriefError) as exc:
        ack(**_ephemeral(blocks.help_message(exc.user_message)))
        return
    origin = Origin(user_id, command.get("team_id", ""), channel_id, "slack", command.get("response_url", ""))
    if not deps.pool.accepting or not deps.pool.reserve():
        reject_busy(deps, brief, origin)  # stored first: the request is kept even if the process dies next
        ack(**_ephemeral({"text": BUSY if deps.pool.accepting else RESTARTING}))
        return
    ack()
    accept(deps, client, brief, origin)
    return None


def _modal_values(view: dict[str, Any]) -> dict[str, str]:
    """Each input block's value; a block or value missing from the payload reads as empty, so the form's own
    checks answer for it (never a 500)."""
    values: dict[str, str] = {}
    state = (view.get("state") or {}).get("values") or {}
    for block_id, inputs in state.items():
        element = (inputs or {}).get("value") or {}
        option = element.get("selected_option")
        value = (option or {}).get("value") if "selected_option" in element else element.get("value")
        values[block_id] = str(value or "")
    return values


def _number(value: Any) -> int | None:
    """A button value or private_metadata that should hold an id; None when it does not (a forged payload)."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


def on_brief_submit(deps: BotDeps, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
    """The `/copy` form: invalid fields come back inline; a valid brief runs like a command."""
    values = _modal_values(view)
    try:
        brief = Brief.create(**{block: values.get(block, "") for block in FIELD_BLOCKS.values()})
    except BriefError as exc:
        ack(response_action="errors", errors={FIELD_BLOCKS.get(exc.field, "product"): exc.user_message})
        return
    channel = str(view.get("private_metadata") or "")
    user = body.get("user") or {}
    if not channel or not user.get("id"):  # the form was not opened by /copy: no channel to answer in
        ack(
            response_action="errors",
            errors={"product": "이 양식으로는 요청할 수 없어요. 채널에서 `/copy`를 다시 입력해 주세요."},
        )
        return
    if not deps.pool.reserve():
        ack(response_action="errors", errors={"product": BUSY if deps.pool.accepting else RESTARTING})
        return
    ack()
    accept(deps, client, brief, origin=Origin(user["id"], user.get("team_id", ""), channel, "modal"))
    return None


def on_edit_button(deps: BotDeps, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
    """ "✏️ 수정": open the edit form prefilled with the candidate."""
    ack()
    candidate_id = _number((body.get("actions") or [{}])[0].get("value"))
    candidate = deps.store.candidate(candidate_id) if candidate_id is not None else None
    if candidate_id is None or candidate is None:
        log.warning("edit button for unknown candidate %s", candidate_id)
        return
    client.views_open(trigger_id=body["trigger_id"], view=blocks.edit_modal(candidate_id, candidate["text"]))


def on_edit_submit(deps: BotDeps, ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
    """Store the person's revision as a human edit and post it in the thread."""
    text = clean_field(_modal_values(view).get("text", ""))
    if not text:
        ack(response_action="errors", errors={"text": "수정한 카피를 적어 주세요."})
        return
    if len(text) > blocks.MAX_EDIT:
        ack(response_action="errors", errors={"text": f"{blocks.MAX_EDIT}자 이내로 적어 주세요."})
        return
    candidate_id = _number(view.get("private_metadata"))
    user_id = (body.get("user") or {}).get("id", "")
    if candidate_id is None or not user_id:
        ack(
            response_action="errors",
            errors={"text": "어느 후보의 수정인지 알 수 없어요. 후보의 ✏️ 버튼으로 다시 열어 주세요."},
        )
        return
    ack()
    try:
        deps.store.record_edit(candidate_id=candidate_id, user_id=user_id, edited_text=text)
    except StoreBusy:  # held and written once the database is free; the revision is still shown
        assert deps.held is not None
        deps.held.write("edit", {"candidate_id": candidate_id, "user_id": user_id, "edited_text": text})
    except StoreError:
        log.warning("edit for a candidate that no longer exists: %s", candidate_id)
        return None
    candidate = deps.store.candidate(candidate_id) or {}
    request = deps.store.get_request(int(candidate["request_id"])) or {}
    try:
        client.chat_postMessage(
            channel=candidate["slack_channel"],
            thread_ts=request.get("slack_ts"),
            **blocks.revision_message(user_id, int(candidate["rank"]), text),
        )
    except SlackApiError as exc:
        log.warning("edit %s stored but not posted: %s", candidate_id, exc.response.get("error"))
    return None


def on_use_button(deps: BotDeps, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
    """ "📣 사용함": mark the candidate as sent (as the 📣 reaction does), or unmark it when this person had marked
    it; the answer, only to them, gives the candidate ID that campaign results are imported by."""
    ack()
    action, user_id = (body.get("actions") or [{}])[0], (body.get("user") or {}).get("id", "")
    candidate_id = _number(action.get("value"))
    candidate = deps.store.candidate(candidate_id) if candidate_id is not None else None
    if candidate_id is None or candidate is None or not user_id:
        log.warning("used button for unknown candidate %s", candidate_id)
        return
    marked = (user_id, candidate_id, "used") in active_reactions(deps.store.feedback_for(candidate_id))
    moment = str(action.get("action_ts") or time.time())
    mark = {
        "event_id": f"button:{candidate_id}:{user_id}:{moment}",
        "candidate_id": candidate_id,
        "user_id": user_id,
        "action": "removed" if marked else "added",
        "signal": "used",
        "reaction": "button",
        "event_ts": moment,
    }
    try:
        deps.store.record_feedback(**mark)
    except StoreBusy:  # held and written once the database is free
        assert deps.held is not None
        deps.held.write("feedback", mark)
    except StoreError as exc:
        log.warning("used mark on candidate %s not recorded: %s", candidate_id, exc)
        return
    channel = (body.get("channel") or {}).get("id") or candidate["slack_channel"]
    thread = (body.get("message") or {}).get("thread_ts")  # answer in the thread the candidates are in
    try:
        client.chat_postEphemeral(channel=channel, user=user_id, thread_ts=thread,
                                  text=blocks.used_notice(int(candidate["rank"]), candidate_id, marked=not marked))  # fmt: skip
    except SlackApiError as exc:
        log.warning("used mark on candidate %s stored but not confirmed: %s", candidate_id, exc.response.get("error"))


def on_reaction(deps: BotDeps, body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
    """👍 👎 🏆 📣 on a candidate message become feedback events; anything else leaves no row."""
    item = event.get("item", {})
    signal = deps.reactions.signal(event.get("reaction", ""))
    if item.get("type") != "message" or signal is None or event.get("user") == context.get("bot_user_id"):
        return
    held = {
        "event_id": body.get("event_id") or f"{event['type']}:{event.get('event_ts')}:{event.get('user')}",
        "channel": item.get("channel", ""),
        "ts": item.get("ts", ""),
        "user_id": event.get("user", ""),
        "action": "added" if event["type"] == "reaction_added" else "removed",
        "signal": signal,
        "reaction": event.get("reaction", ""),
        "event_ts": event.get("event_ts", ""),
    }
    try:
        candidate = deps.store.candidate_by_message(held["channel"], held["ts"])
        if candidate is None:
            log.info(
                "reaction :%s: on %s/%s ignored: no candidate there (not a copybot candidate, or deleted)",
                event.get("reaction"),
                item.get("channel"),
                item.get("ts"),
            )
            return
        deps.store.record_feedback(
            event_id=held["event_id"],
            candidate_id=int(candidate["id"]),
            user_id=held["user_id"],
            action=held["action"],
            signal=signal,
            reaction=held["reaction"],
            event_ts=held["event_ts"],
        )
    except (StoreBusy, sqlite3.OperationalError):  # locked past the busy timeout: held, written once it is free
        assert deps.held is not None
        deps.held.write("reaction", held)
        return
    except StoreError as exc:  # the candidate vanished between the lookup and the write
        log.warning("reaction :%s: on candidate %s not recorded: %s", event.get("reaction"), held["ts"], exc)
        return
    if deps.trials is not None:
        deps.trials.check()  # the live trial's rule looks when enough requests are rated
