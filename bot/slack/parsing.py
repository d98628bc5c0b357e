"""Parse `/copy` text: positional parts or key-value pairs, in Korean or English, plus `help` and the empty form."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from model.errors import BriefError
from model.writing.brief import normalize_age, normalize_channel

MAX_TEXT = 1000
KEYS = {
    "product": ("제품", "상품", "product"),
    "event": ("행사", "이벤트", "event"),
    "age": ("타깃", "타겟", "연령", "나이", "age", "target"),
    "channel": ("채널", "매체", "channel"),
    "n": ("개수", "갯수", "n", "count"),
    "notes": ("메모", "노트", "notes", "note"),
}
HELP_WORDS = {"help", "도움말", "도움", "사용법", "?", "-h", "--help"}
ADMIN_WORDS = {"status": "status", "상태": "status", "retrain": "retrain", "재학습": "retrain",
               "rollback": "rollback", "롤백": "rollback", "되돌리기": "rollback", "trial": "trial", "시험": "trial",
               "비교": "trial"}  # fmt: skip
_KEY_RE = re.compile(
    r"(?:^|(?<=[\s,/|]))(" + "|".join(re.escape(k) for keys in KEYS.values() for k in keys) + r")\s*[:=：]",
    re.IGNORECASE,
)
# Any "word:" in key-value text, known or not: an unknown key is refused rather than read into the field before it
# ("제품: 셔츠, 혜택: 20% 할인" must not make "셔츠, 혜택: 20% 할인" the product). Not a time (10:00) nor a URL.
_ANY_KEY_RE = re.compile(r"(?:^|(?<=[\s,/|]))([가-힣A-Za-z][가-힣A-Za-z0-9_]{0,11})\s*[:=：](?!//)")
_SPLIT_RE = re.compile(r"\s*[/|,\n，]\s*")
_COUNT_RE = re.compile(r"^(\d{1,2})\s*개$")


class CommandParseError(ValueError):
    """The text could not be read as a brief; `user_message` says why in Korean."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


@dataclass(frozen=True)
class ParsedCommand:
    """What the user asked for: 'brief' (with raw fields), 'help', 'modal', or an admin 'word'."""

    kind: str
    fields: dict[str, str] = field(default_factory=dict)


def parse_command(text: str | None) -> ParsedCommand:
    """Read `/copy` text; raise `CommandParseError` when it is not a usable brief."""
    text = (text or "").strip()
    if not text:
        return ParsedCommand("modal")
    if len(text) > MAX_TEXT:
        raise CommandParseError(f"요청이 너무 길어요 ({len(text)}자). {MAX_TEXT}자 이내로 줄여 주세요.")
    if text.lower() in HELP_WORDS:
        return ParsedCommand("help")
    word, _, rest = text.partition(" ")
    if word.lower() in ADMIN_WORDS:
        return ParsedCommand("admin", {"word": ADMIN_WORDS[word.lower()], "arg": rest.strip()})
    fields = _key_values(text) if _KEY_RE.search(text) else _positional(text)
    if not fields.get("product"):
        raise CommandParseError("제품을 찾지 못했어요. 맨 앞에 제품을 적어 주세요.")
    if not fields.get("age"):
        raise CommandParseError("타깃 연령대를 찾지 못했어요. 10대~60대+ 중 하나를 함께 적어 주세요.")
    return ParsedCommand("brief", fields)


def _key_values(text: str) -> dict[str, str]:
    known = {k.lower() for keys in KEYS.values() for k in keys}
    unknown = [m.group(1) for m in _ANY_KEY_RE.finditer(text) if m.group(1).lower() not in known]
    if unknown:
        names = ", ".join(keys[0] for keys in KEYS.values())
        raise CommandParseError(f"'{unknown[0]}' 항목은 알 수 없어요. 쓸 수 있는 항목: {names}")
    matches = list(_KEY_RE.finditer(text))
    if matches[0].start() > 0 and text[: matches[0].start()].strip(" ,/|\n"):
        raise CommandParseError("키-값 형식은 모든 항목에 이름을 붙여 주세요. 예: `제품: 린넨 셔츠, 연령: 20대`")
    fields: dict[str, str] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        name = next(k for k, aliases in KEYS.items() if match.group(1).lower() in aliases)
        if name in fields:
            raise CommandParseError(f"'{match.group(1)}' 항목이 두 번 있어요. 한 번만 적어 주세요.")
        fields[name] = text[match.end() : end].strip(" ,/|\n\t")
    return fields


def _classify(part: str) -> str | None:
    """Which field a positional part looks like: age, channel or n (None: free text)."""
    if _COUNT_RE.match(part):
        return "n"
    for name, check in (("age", normalize_age), ("channel", normalize_channel)):
        try:
            check(part)
            return name
        except BriefError:
            continue
    return None


def _positional(text: str) -> dict[str, str]:
    split = _SPLIT_RE.split(text)
    parts = [p for p in split if p]
    if not parts or not split[0].strip():  # only separators, or a blank first part: nothing else is the product
        raise CommandParseError(
            "제품을 찾지 못했어요. 맨 앞에 제품을 적어 주세요. 예: `/copy 린넨 셔츠 / 여름 세일 / 20대`"
        )
    fields: dict[str, str] = {"product": parts[0]}
    for part in parts[1:]:
        kind = _classify(part)
        if kind == "n":
            fields["n"] = part.rstrip("개").strip()
        elif kind and kind not in fields:
            fields[kind] = part
        elif "event" not in fields:
            fields["event"] = part
        elif "notes" not in fields:
            fields["notes"] = part
        else:
            raise CommandParseError(
                f"'{part}'을(를) 어디에 넣을지 모르겠어요. 제품 / 행사 / 연령 / 채널 순으로 적어 주세요."
            )
    return fields
