"""Clean raw model output into candidates: normalise, fit the channel, drop empties, non-Korean text and
near-duplicates."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from model.writing.brief import channel_table

# Emoji and pictographs; cp949 cannot encode them, and formal registers should not carry them.
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f\u200d]")
_SENTENCE_END = re.compile(r"[.!?…~]+|(?<=[다요죠])\s")
NEAR_DUPLICATE_JACCARD = 0.8
# A copy whose letters are mostly not Hangul is not Korean copy (a random or off-brief model's multilingual
# garbage, a run of Latin tokens); brand names in Latin letters beside Korean words stay well above this.
MIN_HANGUL_SHARE = 0.5


def normalize(text: str) -> str:
    """NFC, one line, single spaces, no wrapping quotes or leftover prompt markers; "" for a broken byte sequence
    or a text whose letters are less than half Hangul (the writer drops empty texts)."""
    text = unicodedata.normalize("NFC", text or "")
    if "\ufffd" in text:
        return ""  # a broken byte sequence: drop the whole copy rather than show mojibake
    text = re.sub(r"<[^<>]{1,6}>.*$", "", text)  # a tiny model may start a new brief: '<제품> ...'
    text = re.sub(r"\s+", " ", text).strip()
    text = text.strip("\"'“”‘’「」").strip()
    return text if hangul_share(text) >= MIN_HANGUL_SHARE else ""


def hangul_share(text: str) -> float:
    """Hangul syllables and jamo among the text's letters (0.0 when it has no letters)."""
    letters = [ch for ch in text if unicodedata.category(ch).startswith("L")]
    hangul = sum("\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f"
                 for ch in letters)  # fmt: skip
    return hangul / len(letters) if letters else 0.0


def strip_emoji(text: str) -> str:
    """Remove emoji, then tidy the spaces they leave."""
    return re.sub(r"\s+", " ", EMOJI.sub("", text)).strip()


def _key(text: str) -> str:
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).lower())


def _bigrams(text: str) -> set[str]:
    key = _key(text)
    return {key[i : i + 2] for i in range(len(key) - 1)} or {key}


def is_near_duplicate(a: str, b: str) -> bool:
    """Same text after normalising, or character-bigram Jaccard similarity of at least 0.8."""
    if _key(a) == _key(b):
        return True
    x, y = _bigrams(a), _bigrams(b)
    return len(x & y) / max(1, len(x | y)) >= NEAR_DUPLICATE_JACCARD


def dedupe(texts: list[str], *, keep: list[str] | None = None) -> list[str]:
    """Drop empty texts and any near-duplicate of an earlier one (or of one in `keep`)."""
    kept: list[str] = list(keep or [])
    out: list[str] = []
    for text in texts:
        if text and not any(is_near_duplicate(text, other) for other in kept):
            kept.append(text)
            out.append(text)
    return out


def measure(text: str, channel: str) -> int:
    """Length in the channel's unit: cp949 bytes for SMS, characters elsewhere."""
    spec = channel_table()["channels"][channel]
    if "max_bytes" in spec:
        return len(text.encode(spec["encoding"], errors="replace"))
    return len(text)


def channel_limit(channel: str) -> int:
    """The channel's maximum length, in the unit `measure` uses."""
    spec: dict[str, Any] = channel_table()["channels"][channel]
    return int(spec.get("max_bytes", spec.get("max_chars", 0)))


def fit_channel(text: str, channel: str, *, allow_emoji: bool, limit: int = 0) -> str:
    """Remove emoji where not allowed and cut an over-long copy at its last sentence end that fits `limit` (the
    channel's own limit when 0; the budget a legal frame leaves the body otherwise)."""
    spec = channel_table()["channels"][channel]
    if not (allow_emoji and spec.get("emoji", True)):
        text = strip_emoji(text)
    if "encoding" in spec:
        text = text.encode(spec["encoding"], errors="ignore").decode(spec["encoding"])
    limit = limit or channel_limit(channel)
    if measure(text, channel) <= limit:
        return text
    cuts = [m.end() for m in _SENTENCE_END.finditer(text) if measure(text[: m.end()].strip(), channel) <= limit]
    return text[: cuts[-1]].strip() if cuts else text


def length_flag(text: str, channel: str) -> list[str]:
    """Flags when the message (the copy, or the framed message on a channel with the legal frame) is over the
    channel's limit, or has more lines than it allows; an over-long SMS is told where it would fit."""
    spec = channel_table()["channels"][channel]
    size, limit = measure(text, channel), channel_limit(channel)
    flags = []
    if size > limit:
        unit = "bytes" if "max_bytes" in spec else "chars"
        longer = spec.get("longer")
        hint = f"; 줄이거나 {channel_table()['channels'][longer]['label']}로 보내세요" if longer else ""
        flags.append(f"too_long: {size} {unit}, {channel} allows {limit}{hint}")
    lines = text.count("\n") + 1
    if "max_lines" in spec and lines > spec["max_lines"]:
        flags.append(f"too_many_lines: {lines} lines, {channel} allows {spec['max_lines']}")
    return flags
