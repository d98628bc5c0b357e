"""The `Brief`: what a marketer asks for, validated and normalised (age spellings, channel aliases)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from model.datafiles import load_json
from model.errors import BriefError
from model.writing.tone import tone_profiles

MAX_PRODUCT = 80
MAX_EVENT = 80
MAX_NOTES = 300
MIN_N, MAX_N = 1, 10
DEFAULT_N = 5

_KOREAN_DECADES = {"십": 10, "이십": 20, "삼십": 30, "사십": 40, "오십": 50, "육십": 60, "칠십": 70, "팔십": 80}
_WORD_AGES = {
    "청소년": "10대",
    "틴": "10대",
    "teen": "10대",
    "teens": "10대",
    "teenager": "10대",
    "teenagers": "10대",
    "시니어": "60대+",
    "senior": "60대+",
    "seniors": "60대+",
    "실버": "60대+",
}


def age_groups() -> list[str]:
    """The canonical age groups, youngest first."""
    return list(tone_profiles())


def _decade_group(decade: int) -> str | None:
    if decade < 10 or decade > 110:
        return None
    return "60대+" if decade >= 60 else f"{decade}대"


def normalize_age(raw: str) -> str:
    """Map spellings such as '20대', '20s', '25', '50대 이상', '60+', '이십대' to a canonical age group."""
    text = unicodedata.normalize("NFKC", raw or "").strip().lower().replace(" ", "")
    if text in _WORD_AGES:
        return _WORD_AGES[text]
    m = re.fullmatch(r"(\d{1,3})(대|s|'s|세|살)?(\+|이상|초반|중반|후반|이후)?", text)
    if m:
        number = int(m.group(1))
        group = _decade_group(number - number % 10)
        if group:
            return group
    m = re.fullmatch(r"(십|이십|삼십|사십|오십|육십|칠십|팔십)대(\+|이상)?", text)
    if m:
        group = _decade_group(_KOREAN_DECADES[m.group(1)])
        if group:
            return group
    valid = ", ".join(age_groups())
    raise BriefError(
        "age_group",
        f"unknown age group {raw!r}; use one of {valid} (also accepted: 20s, 25, 50대 이상, 60+)",
        user_message=f"연령대 '{raw}'을(를) 알 수 없어요. {valid} 중 하나로 적어 주세요 (예: 20대, 20s, 60+).",
    )


def channel_table() -> dict[str, Any]:
    """The channel limits data: {'channels': {...}, 'default': ...}."""
    return load_json("channels.json")


def channels() -> list[str]:
    """The canonical channel names."""
    return list(channel_table()["channels"])


def normalize_channel(raw: str | None) -> str:
    """Map a channel name or alias ('문자', 'SMS', '배너') to its canonical name; empty means the default."""
    text = unicodedata.normalize("NFKC", raw or "").strip().lower()
    if not text:
        return str(channel_table()["default"])
    for name, spec in channel_table()["channels"].items():
        if text == name or text in [a.lower() for a in spec.get("aliases", [])]:
            return str(name)
    valid = ", ".join(channels())
    raise BriefError(
        "channel",
        f"unknown channel {raw!r}; use one of {valid}",
        user_message=f"채널 '{raw}'을(를) 알 수 없어요. {valid} 중 하나로 적어 주세요 (문자, 배너, 푸시도 돼요).",
    )


def clean_field(text: str | None) -> str:
    """A typed field as it is stored and shown: NFC, single spaces, and none of the characters a person cannot see
    but a machine reads: control characters (a NUL makes a report binary), zero-width characters, and bidi
    overrides (which make text read in another order than it is stored). A field of only those is empty."""
    text = unicodedata.normalize("NFC", text or "")
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text if unicodedata.category(c) != "Cf")
    return re.sub(r"\s+", " ", text).strip()


def _check_length(field_name: str, korean: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise BriefError(
            field_name,
            f"{field_name} is {len(value)} characters; keep it to {limit} or fewer",
            user_message=f"{korean}이(가) 너무 길어요 ({len(value)}자). {limit}자 이내로 줄여 주세요.",
        )


# The fields a marketer fills in, as stored with each request; SUBJECT the ones that say what the copy is about
# (a held-out brief, a training example's brief, the CLI's heading). `examples` and `limit` are added by the bot.
FIELDS = ("product", "event", "age_group", "channel", "n", "notes")
SUBJECT = FIELDS[:4]


@dataclass(frozen=True)
class Brief:
    """One copy request. Build it with `Brief.create` to validate and normalise the fields."""

    product: str
    event: str
    age_group: str
    channel: str
    n: int = DEFAULT_N
    notes: str = ""
    # Brand-voice examples the prompt shows an instruct model (model/writing/voice.py): chosen by the bot, never
    # typed by a person, and carried in training examples so that training renders the prompt serving renders.
    examples: tuple[str, ...] = ()
    # The body's budget in the channel's unit when the bot's legal frame (model/writing/frame.py) takes part of the
    # channel's limit; 0 means the channel's own limit. Set by the writer, carried in training examples like `examples`.
    limit: int = 0

    @classmethod
    def create(
        cls,
        *,
        product: str | None,
        event: str | None = "",
        age: str | None,
        channel: str | None = None,
        n: int | str | None = None,
        notes: str | None = "",
    ) -> Brief:
        """Validate raw fields; raise `BriefError` naming the first bad field."""
        product_clean = clean_field(product)
        if not product_clean:
            raise BriefError(
                "product",
                "product is empty; give the product to write copy for, e.g. --product '린넨 셔츠'",
                user_message="제품을 적어 주세요. 예: `/copy 린넨 셔츠 / 여름 세일 / 20대`",
            )
        _check_length("product", "제품", product_clean, MAX_PRODUCT)
        event_clean = clean_field(event)
        _check_length("event", "행사", event_clean, MAX_EVENT)
        notes_clean = clean_field(notes)
        _check_length("notes", "메모", notes_clean, MAX_NOTES)
        if not clean_field(age):
            raise BriefError(
                "age_group",
                f"age group is empty; use one of {', '.join(age_groups())}",
                user_message=f"타깃 연령대를 적어 주세요: {', '.join(age_groups())}",
            )
        return cls(
            product=product_clean,
            event=event_clean,
            age_group=normalize_age(age or ""),
            channel=normalize_channel(channel),
            n=_parse_n(n),
            notes=notes_clean,
        )

    def as_dict(self) -> dict[str, Any]:
        """The brief's fields as a plain dict (for storage and JSON)."""
        return {name: getattr(self, name) for name in FIELDS}


def brief_fields(row: Mapping[str, Any], names: tuple[str, ...] = FIELDS) -> dict[str, Any]:
    """A brief's fields picked from a wider row (a stored request, a corpus copy), under their own names."""
    return {name: row[name] for name in names}


def _parse_n(n: int | str | None) -> int:
    if n is None or (isinstance(n, str) and not n.strip()):
        return DEFAULT_N
    try:
        value = int(str(n).strip().rstrip("개"))
    except ValueError:
        value = -1
    if not MIN_N <= value <= MAX_N:
        raise BriefError(
            "n",
            f"n must be a whole number from {MIN_N} to {MAX_N}, got {n!r}",
            user_message=f"개수는 {MIN_N}~{MAX_N} 사이의 숫자로 적어 주세요 (받은 값: {n}).",
        )
    return value
