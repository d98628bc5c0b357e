"""Brief -> prompt. A chat template for instruct base models, a compact plain template for base models.

The plain template is also the training format of the starter model and of SFT examples, so the prompt a
model sees at generation time is exactly the one it was trained on.
"""

from __future__ import annotations

from typing import Any

from model.brief import Brief, channel_table
from model.tone import REGISTERS, profile_for, register_name, tone_profiles

# The plain template: field markers, then the copy. Age group, channel and register are single marker tokens
# (e.g. "<20대>", "<sns>", "<polite>"), so a tiny model spends little compute on the prompt.
PLAIN_TEMPLATE = "<제품>{product}<행사>{event}<{age_group}><{channel}><{register}>{notes}<카피>"
NO_EVENT = "상시"
FIELD_MARKERS = ["<제품>", "<행사>", "<메모>", "<카피>"]


def prompt_markers() -> list[str]:
    """Every marker token of the plain template: fields, age groups, channels and registers."""
    return [
        *FIELD_MARKERS,
        *[f"<{age}>" for age in tone_profiles()],
        *[f"<{name}>" for name in channel_table()["channels"]],
        *[f"<{register}>" for register in REGISTERS],
    ]


def registers_for(brief: Brief) -> list[str]:
    """The register each of the brief's n candidates is asked for, cycling through the profile's registers."""
    profile = profile_for(brief.age_group)
    order = [profile.preferred, *[r for r in profile.registers if r != profile.preferred]]
    return [order[i % len(order)] for i in range(brief.n)]


def prompt_register(age_group: str, register: str) -> str:
    """The register a copy is prompted under when it is learned from: its own when the audience's profile lists
    it, else the profile's preferred one (a noun-ending copy for 50대 trains under the formal prompt)."""
    profile = profile_for(age_group)
    return register if register in profile.registers else profile.preferred


def plain_prompt(brief: Brief, register: str) -> str:
    """The one-line plain prompt for a base model; the copy follows it."""
    notes = f"<메모>{brief.notes}" if brief.notes else ""
    return PLAIN_TEMPLATE.format(
        product=brief.product,
        event=brief.event or NO_EVENT,
        age_group=brief.age_group,
        channel=brief.channel,
        register=register,
        notes=notes,
    )


def chat_messages(brief: Brief, register: str) -> list[dict[str, str]]:
    """System and user messages for an instruct model (rendered with the tokenizer's chat template)."""
    profile = profile_for(brief.age_group)
    spec = channel_table()["channels"][brief.channel]
    limit = f"{spec['max_bytes']}바이트({spec['encoding']})" if "max_bytes" in spec else f"{spec['max_chars']}자"
    emoji = "이모지를 써도 됩니다" if profile.emoji and spec.get("emoji", True) else "이모지는 쓰지 마세요"
    system = (
        "당신은 한국 백화점의 광고 카피라이터입니다. 요청마다 광고 카피 한 개만 쓰고, 설명이나 따옴표 없이 카피만 "
        "출력하세요. 근거 없는 절대적 표현(최고, 최초, 1위, 유일, 100%)과 의학적 효능 표현은 쓰지 마세요."
    )
    lines = [
        f"제품: {brief.product}",
        f"행사: {brief.event or NO_EVENT}",
        f"타깃: {brief.age_group} ({profile.hints})",
        f"채널: {spec['label']}, {limit} 이내, {emoji}",
        f"말투: {register_name(register)}로 끝맺으세요",
    ]
    if brief.notes:
        lines.append(f"메모: {brief.notes}")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


def build_prompt(brief: Brief, register: str, tokenizer: Any = None) -> str:
    """The prompt text: the chat template when the tokenizer has one, else the plain template."""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        rendered: str = tokenizer.apply_chat_template(
            chat_messages(brief, register), tokenize=False, add_generation_prompt=True
        )
        return rendered
    return plain_prompt(brief, register)
