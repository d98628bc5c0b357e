"""Who can drive the bot, and what a hostile input can do: signatures (Slack's own test vector), replays, secrets
in logs, input limits, and text that looks like SQL or Slack markup. (Admin refusals: test_slack_admin.py; model
server auth: model/test_server.py; adapter path traversal: model/test_registry.py and model/test_server.py;
escaping of model text: test_slack_copy.py.)"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from slack_bolt.request import BoltRequest

from bot.logs import REDACTED, RedactSecrets
from bot.settings import Settings
from tests.bot.conftest import Harness
from tests.bot.test_slack_feedback import _view_submission, posted, reaction  # noqa: F401  (the fixture)
from tests.fakes import signing
from tests.fakes.backends import ScriptedBackend

# From Slack's "Verifying requests from Slack" page: secret, timestamp, body and the signature it must produce.
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TS = 1531420618
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
    "channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
    "response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)


def _dispatch(h: Harness, body: str, timestamp: int, signature: str) -> int:
    headers = {"content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": str(timestamp),
               "x-slack-signature": signature}  # fmt: skip
    return int(h.app.dispatch(BoltRequest(body=body, headers=headers)).status)


def test_slacks_documented_signature_vector(
    make_harness: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert signing.sign(VECTOR_BODY, VECTOR_TS, VECTOR_SECRET) == VECTOR_SIGNATURE  # our test signer agrees with Slack
    h = make_harness(SLACK_SIGNING_SECRET=VECTOR_SECRET)
    monkeypatch.setattr("slack_sdk.signature.Clock.now", lambda self: VECTOR_TS + 60.0)  # as if it were 2018
    # verified, then routed: the app has no /webhook-collect command, so Bolt answers 404 (not 401)
    assert _dispatch(h, VECTOR_BODY, VECTOR_TS, VECTOR_SIGNATURE) == 404
    assert _dispatch(h, VECTOR_BODY.replace("foobar", "foobaz"), VECTOR_TS, VECTOR_SIGNATURE) == 401
    assert _dispatch(h, VECTOR_BODY, VECTOR_TS + 1, VECTOR_SIGNATURE) == 401
    assert _dispatch(h, VECTOR_BODY, VECTOR_TS, VECTOR_SIGNATURE[:-1] + "0") == 401
    assert _dispatch(h, VECTOR_BODY, VECTOR_TS, "") == 401


@pytest.mark.parametrize(("age_s", "status"), [(0, 200), (290, 200), (301, 401), (3600, 401), (-301, 401)])
def test_a_request_older_than_five_minutes_is_a_replay(
    make_harness: Callable[..., Harness], age_s: int, status: int
) -> None:
    h = make_harness()
    body = signing.command_body("help")
    ts = int(time.time()) - age_s
    assert _dispatch(h, body, ts, signing.sign(body, ts)) == status
    assert h.store.counts()["requests"] == 0


def test_tokens_never_appear_in_logs(make_harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture) -> None:
    token = "xoxb-1234567890-secret-bot-token"
    h = make_harness(ScriptedBackend(), SLACK_BOT_TOKEN=token)
    with caplog.at_level(logging.DEBUG):
        h.ack_json(h.command("린넨 셔츠 / 여름 세일 / 20대"))
        h.fake.wait_for("chat.update", 1)
        ts = h.store.candidates_for(1)[0]["slack_ts"]
        h.event(reaction("reaction_added", "+1", ts), event_id="EvSec1")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "chat.postMessage" in text or len(caplog.records) > 5  # the flow did log (slack_sdk logs at DEBUG)
    for secret in (token, signing.SECRET):
        assert secret not in text
    assert token not in repr(h.deps.settings) and signing.SECRET not in repr(h.deps.settings)


def test_the_log_filter_redacts_secrets_and_anything_token_shaped() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactSecrets(["my-model-key-123456"]))
    logger = logging.getLogger("copybot.test.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling %s with key %s", "https://gpu", "my-model-key-123456")
        logger.warning("slack said invalid_auth for xoxb-99999999-abcdef and xapp-1-A0-123456")
        try:
            raise RuntimeError("header Authorization: Bearer my-model-key-123456")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert records[0] == f"calling https://gpu with key {REDACTED}"
    assert records[1] == f"slack said invalid_auth for {REDACTED} and {REDACTED}"
    assert "my-model-key-123456" not in records[2] and REDACTED in records[2]


def test_settings_keep_secrets_out_of_their_repr() -> None:
    settings = Settings.from_env({"COPYBOT_HOME": "/tmp/x", "SLACK_BOT_TOKEN": "xoxb-very-secret",
                                  "SLACK_SIGNING_SECRET": "sig-secret", "COPYBOT_MODEL_API_KEY": "model-secret"})  # fmt: skip
    assert not any(s in repr(settings) for s in ("xoxb-very-secret", "sig-secret", "model-secret"))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("셔츠 / 여름 / 20대 / " + "가" * 1000, "1000자 이내"),
        ("가" * 81 + " / 여름 세일 / 20대", "제품"),
        ("셔츠 / " + "나" * 81 + " / 20대", "행사"),
        ("제품: 셔츠, 연령: 20대, 메모: " + "다" * 301, "메모"),
    ],
)
def test_over_long_slash_commands_are_refused_and_store_nothing(
    make_harness: Callable[..., Harness], text: str, words: str
) -> None:
    h = make_harness()
    reply = h.ack_json(h.command(text))
    assert reply["response_type"] == "ephemeral" and words in reply["text"]
    assert h.store.counts()["requests"] == 0 and h.fake.of("chat.postMessage") == []


def test_over_long_form_fields_and_edits_are_refused(posted: tuple[Harness, list[dict]]) -> None:  # noqa: F811
    h, cands = posted
    fields = {
        "product": {"value": {"type": "plain_text_input", "value": "가" * 81}},
        "event": {"value": {"type": "plain_text_input", "value": ""}},
        "age": {"value": {"type": "static_select", "selected_option": {"value": "30대"}}},
        "channel": {"value": {"type": "static_select", "selected_option": {"value": "push"}}},
        "n": {"value": {"type": "plain_text_input", "value": "2"}},
        "notes": {"value": {"type": "plain_text_input", "value": None}},
    }
    form = h.ack_json(h.interact(_view_submission("copy_brief", fields, "C100")))
    assert form["response_action"] == "errors" and list(form["errors"]) == ["product"]
    edit = {"text": {"value": {"type": "plain_text_input", "value": "가" * 501}}}
    answer = h.ack_json(h.interact(_view_submission("copy_edit", edit, str(cands[0]["id"]))))
    assert answer["response_action"] == "errors" and "500자" in answer["errors"]["text"]
    assert h.store.edits_for(cands[0]["id"]) == [] and h.store.counts()["requests"] == 1


def test_sql_and_markup_looking_text_is_stored_verbatim_and_harmless(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(ScriptedBackend())
    product = "셔츠'); DROP TABLE requests;--"
    event = "*굵게* <!channel> <https://evil.example|여기> &amp;"
    h.ack_json(h.command(f"제품: {product}, 행사: {event}, 연령: 20대"))
    [placeholder] = h.fake.wait_for("chat.postMessage", 1)
    h.fake.wait_for("chat.update", 1)
    [request] = h.store.requests_with_status("done")
    assert (request["product"], request["event"]) == (product, event)  # kept exactly as typed
    assert h.store.counts()["requests"] == 1 and "requests" in h.store.db.table_names()
    assert "<!channel>" not in placeholder["text"] and "&lt;!channel&gt;" in placeholder["text"]
    assert "<https://evil.example" not in placeholder["text"] and "&amp;amp;" in placeholder["text"]
