"""Pure Block Kit builders: every message and modal copybot shows, as plain dicts. No Slack calls here."""

from __future__ import annotations

from typing import Any

from model.writing.brief import DEFAULT_N, MAX_EVENT, MAX_N, MAX_NOTES, MAX_PRODUCT, age_groups, channel_table
from model.writing.tone import register_name

Block = dict[str, Any]
EDIT_ACTION = "edit_candidate"
USE_ACTION = "mark_used"
BRIEF_VIEW = "copy_brief"
EDIT_VIEW = "copy_edit"
MAX_EDIT = 500
SECTION_LIMIT = 2900  # Slack allows 3000 characters in a section; keep a margin for markup

EXAMPLES = (
    "`/copy 린넨 셔츠 / 여름 세일 / 20대`\n"
    "`/copy 한우 선물세트 | 추석 | 60대+ | 문자 | 3개`\n"
    "`/copy 제품: 수분 크림, 행사: 신상품 입고, 연령: 30대, 채널: push, 메모: 촉촉함 강조`\n"
    "`/copy` 만 입력하면 입력 창이 열려요."
)


def escape(text: str) -> str:
    """Escape &, < and > so that untrusted text can never mention @channel or render a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text)}]}


def brief_line(brief: dict[str, Any]) -> str:
    """'*린넨 셔츠* · 여름 세일 · 20대 · sns', escaped."""
    rest = [brief.get("event"), brief["age_group"], brief["channel"], f"{brief['n']}개"]
    return f"*{escape(brief['product'])}* · " + " · ".join(escape(str(p)) for p in rest if p)


def request_message(brief: dict[str, Any], user_id: str, status: str) -> dict[str, Any]:
    """The visible request message: the brief, who asked, and a status line."""
    head = f"{brief_line(brief)} — <@{user_id}>님 요청"
    notes = f"\n메모: {escape(brief['notes'])}" if brief.get("notes") else ""
    return {"text": f"{head}\n{status}", "blocks": [_section(f"{head}{notes}"), _context(status)]}


def working_status(position: int = 0) -> str:
    """'작성 중…', with the queue position when the request waits."""
    return "✍️ 작성 중…" if position <= 0 else f"✍️ 작성 중… (대기 {position}번째)"


def done_status(count: int, model_version: str, seconds: float, *, trial: bool = False,
                notes: list[str] | tuple[str, ...] = ()) -> str:  # fmt: skip
    """Summary after the candidates are posted; during a live trial it says that a new model wrote some of them
    (never which: the candidates are unlabelled so that reactions judge the copy alone)."""
    model = f"모델 `{escape(model_version)}`" + (" + 시험 중인 새 모델 (섞어서 보여 드려요)" if trial else "")
    advice = "".join(f"\n📌 {escape(note)}" for note in notes)
    return (f"✅ 후보 {count}개 · {model} · {seconds:.1f}초 · 스레드에서 👍/👎로 평가하고 🏆로 최고안을 골라 주세요. "
            f"실제로 보낸 카피에는 📣를 달아 주세요.{advice}")  # fmt: skip


def partial_status(posted: int, total: int) -> str:
    """Some candidates were written but Slack refused to show them."""
    return f"⚠️ 후보 {total}개 중 {posted}개만 올렸어요 (Slack 오류). 잠시 후 `/copy`로 다시 요청해 주세요."


def status_notice(status: str) -> str:
    """A request's status line sent to its user when the request message itself could not be updated."""
    return f"`/copy` 요청 결과: {status}"


def failed_status(reason: str) -> str:
    """What went wrong, in Korean, and how to retry."""
    return f"⚠️ {escape(reason)} 같은 `/copy` 명령으로 다시 요청해 주세요."


def candidate_message(candidate: dict[str, Any], rank: int, candidate_id: int, *, channel: str = "") -> dict[str, Any]:
    """One candidate: the copy (on a channel with the legal frame, the whole message to send, as a block to copy),
    its register, length against the channel's limit, flags and ID (what a results file names it by), and the edit
    and used buttons."""
    framed = candidate.get("message") or ""
    text = escape(framed or candidate["text"])
    mark = "✓" if candidate["register_ok"] else "✗"
    facts = (
        f"{register_name(candidate['register'])} {mark} · {_length(candidate['length'], channel)} · ID {candidate_id}"
    )
    flags = "".join(f"\n⚠️ {escape(f)}" for f in candidate.get("flags", []))
    buttons = [_button(EDIT_ACTION, "✏️ 수정", candidate_id), _button(USE_ACTION, "📣 사용함", candidate_id)]
    body = f"*{rank}.*\n```{text}```" if framed else f"*{rank}.* {text}"
    return {
        "text": f"{rank}. {text}",
        "blocks": [_section(body), _context(facts + flags), {"type": "actions", "elements": buttons}],
    }


def _length(length: int, channel: str) -> str:
    """'메시지 82/90바이트' on a channel with a byte limit, '길이 35/60자' on one with a character limit."""
    spec = channel_table()["channels"].get(channel)
    if spec is None:
        return f"길이 {length}"
    if "max_bytes" in spec:
        return f"메시지 {length}/{spec['max_bytes']}바이트"
    return f"{'메시지' if spec.get('frame') else '길이'} {length}/{spec['max_chars']}자"


def _button(action_id: str, label: str, candidate_id: int) -> Block:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": label},
            "value": str(candidate_id)}  # fmt: skip


def used_notice(rank: int, candidate_id: int, *, marked: bool) -> str:
    """The ephemeral answer to the 📣 button: what was recorded, and how results will reach the model."""
    if not marked:
        return f"{rank}번 후보의 '사용함' 표시를 취소했어요."
    return (f"{rank}번 후보를 사용함으로 표시했어요 (후보 ID {candidate_id}). 캠페인이 끝나면 발송·클릭 결과를 이 ID와 "
            "함께 운영자에게 전해 주세요. 실제 성과는 어떤 반응보다 크게 학습에 반영돼요.")  # fmt: skip


def revision_message(user_id: str, rank: int, text: str) -> dict[str, Any]:
    """A person's corrected version, posted in the thread."""
    body = f"✏️ <@{user_id}>님의 {rank}번 수정안\n>{escape(text)}"
    return {"text": body, "blocks": [_section(body)]}


def help_message(problem: str = "") -> dict[str, Any]:
    """Usage with examples; `problem` explains what was wrong with the last command."""
    head = f"⚠️ {escape(problem)}\n\n" if problem else ""
    body = (f"{head}*copybot 사용법*\n{EXAMPLES}\n연령대: {', '.join(age_groups())} · 채널: "
            f"{', '.join(channel_table()['channels'])}\n관리자: `/copy status` · `/copy retrain` · `/copy rollback [버전]` · "
            "`/copy trial [stop|promote]`")  # fmt: skip
    return {"text": body, "blocks": [_section(body)]}


def _input(block_id: str, label: str, element: Block, *, optional: bool = False) -> Block:
    return {"type": "input", "block_id": block_id, "label": {"type": "plain_text", "text": label},
            "element": element, "optional": optional}  # fmt: skip


def _text_input(max_length: int, *, initial: str = "", multiline: bool = False) -> Block:
    element: Block = {
        "type": "plain_text_input",
        "action_id": "value",
        "max_length": max_length,
        "multiline": multiline,
    }
    if initial:
        element["initial_value"] = initial
    return element


def _select(options: list[tuple[str, str]], initial: str | None = None) -> Block:
    opts = [{"text": {"type": "plain_text", "text": label}, "value": value} for value, label in options]
    element: Block = {"type": "static_select", "action_id": "value", "options": opts}
    if initial is not None:
        element["initial_option"] = next(o for o in opts if o["value"] == initial)
    return element


def brief_modal(channel_id: str) -> Block:
    """The form `/copy` alone opens; the channel to post in travels in private_metadata."""
    channels = [(name, f"{spec['label']} ({name})") for name, spec in channel_table()["channels"].items()]
    return {
        "type": "modal",
        "callback_id": BRIEF_VIEW,
        "private_metadata": channel_id,
        "title": {"type": "plain_text", "text": "카피 요청"},
        "submit": {"type": "plain_text", "text": "작성"},
        "close": {"type": "plain_text", "text": "취소"},
        "blocks": [
            _input("product", "제품", _text_input(MAX_PRODUCT)),
            _input("event", "행사", _text_input(MAX_EVENT), optional=True),
            _input("age", "타깃 연령대", _select([(a, a) for a in age_groups()])),
            _input("channel", "채널", _select(channels, channel_table()["default"])),
            _input("n", f"후보 개수 (1~{MAX_N})", _text_input(2, initial=str(DEFAULT_N))),
            _input("notes", "메모", _text_input(MAX_NOTES, multiline=True), optional=True),
        ],
    }


def edit_modal(candidate_id: int, text: str) -> Block:
    """The form the ✏️ button opens, prefilled with the candidate."""
    return {
        "type": "modal",
        "callback_id": EDIT_VIEW,
        "private_metadata": str(candidate_id),
        "title": {"type": "plain_text", "text": "카피 수정"},
        "submit": {"type": "plain_text", "text": "저장"},
        "close": {"type": "plain_text", "text": "취소"},
        "blocks": [_input("text", "수정한 카피", _text_input(MAX_EDIT, initial=text[:MAX_EDIT], multiline=True))],
    }
