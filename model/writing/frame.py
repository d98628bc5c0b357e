"""The legal frame of a promotional message to a phone, composed by the bot around the copy the model wrote.

Under 정보통신망법 §50 an advertising SMS, LMS, push or KakaoTalk message starts with "(광고)" and the sender's name
and ends with a free opt-out line; the channel's limit (90 bytes of cp949 for an SMS) counts all of it. So the
model writes only the body, within the budget the frame leaves, and every candidate of such a channel is shown and
measured as the whole message. Which channels need the frame is data (`frame` in model/data/channels.json), and
so is the frame itself (model/data/ad_frame.json). Without a sender or an opt-out number the message shows
placeholders and a flag naming the setting to set: it is never silently sent without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model.datafiles import load_json
from model.writing.brief import channel_table
from model.writing.postprocess import channel_limit, measure

MIN_BODY = 10  # a budget below this many bytes or characters leaves no room for copy
SETTINGS = {"sender": "COPYBOT_AD_SENDER", "optout": "COPYBOT_AD_OPTOUT"}


def needs_frame(channel: str) -> bool:
    """Whether the channel's messages carry the legal frame."""
    return bool(channel_table()["channels"][channel].get("frame"))


@dataclass(frozen=True)
class AdFrame:
    """The sender's name and the opt-out number the frame shows (empty: not set yet)."""

    sender: str = ""
    optout: str = ""

    def _spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = load_json("ad_frame.json")
        return spec

    def missing(self) -> list[str]:
        """The settings still to set, by name."""
        return [SETTINGS[key] for key in ("sender", "optout") if not getattr(self, key)]

    def wrap(self, body: str, channel: str) -> str:
        """The whole message for a channel that needs the frame; the body alone for any other."""
        if not needs_frame(channel):
            return body
        spec = self._spec()
        values = {key: getattr(self, key) or spec["placeholders"][key] for key in ("sender", "optout")}
        return "\n".join([spec["head"].format(**values), body, spec["tail"].format(**values)])

    def budget(self, channel: str) -> int:
        """What the frame leaves of the channel's limit for the body, in the channel's unit."""
        return channel_limit(channel) - (measure(self.wrap("", channel), channel) if needs_frame(channel) else 0)

    def flags(self, channel: str) -> list[str]:
        """A flag on every framed candidate while a setting is missing: which one to set."""
        if not needs_frame(channel) or not self.missing():
            return []
        names = " and ".join(self.missing())
        return [f"ad_frame: 자리표시를 실제 값으로 바꿔야 보낼 수 있어요 — 운영자에게 {names} 설정을 요청하세요 "
                f"({self._spec()['law']})"]  # fmt: skip

    def budgeted_brief(self, brief: dict[str, Any]) -> dict[str, Any]:
        """A training example's brief with the body budget of its framed channel, as the writer sets it when
        serving (`CopyWriter._budgeted`), so that an instruct model is trained on the prompt it is served."""
        channel = brief.get("channel")
        return {**brief, "limit": self.budget(channel)} if channel and needs_frame(channel) else brief

    def notes(self, channel: str) -> list[str]:
        """Advice on the request as a whole (not a flag on a copy): when a promotional message may be sent."""
        return [str(self._spec()["night_note"])] if needs_frame(channel) else []
