"""manifest.yml and the registered listeners agree in both directions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from tests.bot.conftest import Harness

MANIFEST = yaml.safe_load((Path(__file__).resolve().parents[2] / "manifest.yml").read_text("utf-8"))


def test_manifest_declares_what_the_bot_needs() -> None:
    settings = MANIFEST["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == {
        "commands", "chat:write", "reactions:read", "reactions:write", "files:write",
    }  # fmt: skip
    [command] = MANIFEST["features"]["slash_commands"]
    assert command["usage_hint"]


def test_every_listener_is_in_the_manifest_and_every_manifest_entry_has_a_listener(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    registered = set(h.app.copybot_listeners)
    commands = {c["command"] for c in MANIFEST["features"]["slash_commands"]}
    events = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    assert {name for kind, name in registered if kind == "command"} == commands
    assert {name for kind, name in registered if kind == "event"} == events
    assert (
        any(kind in ("view", "action") for kind, _ in registered) == MANIFEST["settings"]["interactivity"]["is_enabled"]
    )


def test_the_app_handles_each_manifest_command_and_event(make_harness: Callable[..., Harness]) -> None:
    h = make_harness()
    for command in MANIFEST["features"]["slash_commands"]:
        assert command["command"] == "/copy"
        assert h.command("help").status == 200
    for i, name in enumerate(MANIFEST["settings"]["event_subscriptions"]["bot_events"]):
        event = {
            "type": name,
            "user": "U1",
            "reaction": "+1",
            "event_ts": "1.0",
            "item": {"type": "message", "channel": "C1", "ts": "1.1"},
        }
        assert h.event(event, event_id=f"Ev{i}").status == 200
    unknown = {"type": "member_joined_channel", "user": "U1", "channel": "C1", "event_ts": "1.0"}
    assert h.event(unknown, event_id="EvX").status == 404  # Bolt's answer when no listener matches
