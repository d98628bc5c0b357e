"""Brief -> prompt: the one renderer that serving, training examples, the gate's scoring and the simulator use.

Three shapes, chosen by the tokenizer of the model being served or trained:
- a tokenizer with a chat template (an instruct model): the template's rendering of a Korean system and user
  message, with thinking off (Qwen3);
- the starter's tokenizer, whose vocabulary holds the plain template's markers ("<제품>", "<20대>", "<카피>" …) as
  single tokens: that compact one-line template, so a tiny model spends little compute on the prompt;
- any other tokenizer (a pretrained base model such as gemma-3-270m): a short Korean form, one "field: value"
  line each (제품, 행사, 타깃, 채널, 말투), ending "카피:" and a newline. A pretrained model reads a form like this as text it has seen; the
  marker template is, to its tokenizer, a run of angle brackets and Hangul that its copies then imitate (the
  first gemma adapter, trained on markers, began copies with "<가정의 달<<세부" and "<b>2018>").
Datasets carry briefs and copies, not rendered prompts (model/training/dataset.py), and are rendered here with the
tokenizer of the model they train, so one dataset trains any base on exactly the prompt that base is served.

The prompt ends on a token boundary of its tokenizer, because the trainers tokenize prompt + copy in one go and
treat the prompt's own tokens as the context: a marker that merged with the copy's first characters would be
trained on a context the model never sees when served. The starter's markers are single tokens; the form ends
with a newline, which no tokenizer here merges with the Hangul, digits or emoji a copy starts with; a chat
template's generation prompt ends with one already.
"""

from __future__ import annotations

from typing import Any

from model.writing.brief import Brief, channel_table
from model.writing.tone import REGISTERS, profile_for, register_name, tone_profiles

# The plain template: field markers, then the copy. Age group, channel and register are single marker tokens
# (e.g. "<20대>", "<sns>", "<polite>"), so a tiny model spends little compute on the prompt.
PLAIN_TEMPLATE = "<제품>{product}<행사>{event}<{age_group}><{channel}><{register}>{notes}<카피>"
NO_EVENT = "상시"
FIELD_MARKERS = ["<제품>", "<행사>", "<메모>", "<카피>"]
COPY_MARKER = "<카피>"


def prompt_markers() -> list[str]:
    """Every marker token of the plain template: fields, age groups, channels and registers."""
    return [
        *FIELD_MARKERS,
        *[f"<{age}>" for age in tone_profiles()],
        *dict.fromkeys(f"<{channel_marker(name)}>" for name in channel_table()["channels"]),
        *[f"<{register}>" for register in REGISTERS],
    ]


def channel_marker(channel: str) -> str:
    """The channel the marker template names: its own, or for a channel added after the starter was built, the one
    its `marker` says (LMS is prompted as SMS), so that the starter's vocabulary and figures stay as they are."""
    return str(channel_table()["channels"][channel].get("marker", channel))


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
        channel=channel_marker(brief.channel),
        register=register,
        notes=notes,
    )


FORM_END = "카피:\n"
VOICE_HEADING = "참고: 우리 브랜드에서 성과가 좋았던 카피 (그대로 베끼지 말고 말투와 결만 참고하세요)"


def brief_lines(brief: Brief, register: str) -> list[str]:
    """The brief as Korean "field: value" lines: the user message of the chat prompt and the body of the form."""
    profile = profile_for(brief.age_group)
    spec = channel_table()["channels"][brief.channel]
    size = brief.limit or spec.get("max_bytes", spec.get("max_chars"))
    limit = f"{size}바이트({spec['encoding']})" if "max_bytes" in spec else f"{size}자"
    if brief.limit:  # the bot's legal frame takes the rest of the channel's limit
        limit = f"본문 {limit} (광고 표시·발신자·수신거부 문구는 따로 붙어요)"
    emoji = "이모지를 써도 됩니다" if profile.emoji and spec.get("emoji", True) else "이모지는 쓰지 마세요"
    lines = [
        f"제품: {brief.product}",
        f"행사: {brief.event or NO_EVENT}",
        f"타깃: {brief.age_group} ({profile.hints})",
        f"채널: {spec['label']}, {limit} 이내, {emoji}",
        f"말투: {register_name(register)}로 끝맺으세요",
    ]
    if brief.notes:
        lines.append(f"메모: {brief.notes}")
    if brief.examples:
        lines.append(VOICE_HEADING)
        lines += [f"- {text}" for text in brief.examples]
    return lines


def chat_messages(brief: Brief, register: str) -> list[dict[str, str]]:
    """System and user messages for an instruct model (rendered with the tokenizer's chat template); the brief's
    brand-voice examples, if any, close the user message. The plain and form templates of base models have no
    place for them: a base model continues examples instead of learning from them."""
    system = (
        "당신은 한국 백화점의 광고 카피라이터입니다. 요청마다 광고 카피 한 개만 쓰고, 설명이나 따옴표 없이 카피만 "
        "출력하세요. 근거 없는 절대적 표현(최고, 최초, 1위, 유일, 100%)과 의학적 효능 표현은 쓰지 마세요."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(brief_lines(brief, register))}]


def form_prompt(brief: Brief, register: str) -> str:
    """The Korean form a pretrained base model without a chat template is given; the copy follows its last line.

    Its fields are the bare values, without the chat prompt's hints and limits: the adapter learns what 20대 or
    SMS asks for from the copies it is trained on, and every token of the prompt is paid for at every training
    step, three times with the anchor (41 tokens for gemma-3-270m, against 87 with the hints: the copy itself is
    about 25)."""
    spec = channel_table()["channels"][brief.channel]
    lines = [f"제품: {brief.product}", f"행사: {brief.event or NO_EVENT}", f"타깃: {brief.age_group}",
             f"채널: {spec['label']}", f"말투: {register_name(register)}"]  # fmt: skip
    if brief.notes:
        lines.append(f"메모: {brief.notes}")
    return "\n".join(lines) + "\n" + FORM_END


def render_prompt(brief: Brief, register: str, tokenizer: Any = None) -> str:
    """The prompt text for one candidate: the chat template when the tokenizer has one, the marker template when
    its vocabulary holds the markers (the starter; also without a tokenizer), else the form."""
    if has_chat_template(tokenizer):
        return render_chat(chat_messages(brief, register), tokenizer)
    return plain_prompt(brief, register) if knows_markers(tokenizer) else form_prompt(brief, register)


def render_chat(messages: list[dict[str, str]], tokenizer: Any) -> str:
    """Chat messages as the prompt text for the assistant's next turn, with the tokenizer's chat template (Qwen3's
    thinking switched off); the model server's /v1/chat/completions renders with it too."""
    rendered: str = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                  enable_thinking=False)  # fmt: skip
    bos = tokenizer.bos_token
    if bos and rendered.startswith(bos) and tokenizer.bos_token_id in tokenizer("")["input_ids"]:
        rendered = rendered[len(bos) :]  # the tokenizer adds it (Gemma's template writes it too)
    return rendered


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """A rendered prompt's token ids as the trainers make them, with the tokenizer's own special tokens (a base
    that wants <bos> first gets it); serving and scoring tokenize it the same way."""
    return list(tokenizer(prompt)["input_ids"])


def copy_ids(tokenizer: Any, completion: str) -> list[int]:
    """A copy's token ids as the trainers append them: its text, then end-of-sequence."""
    ids = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    eos = tokenizer.eos_token_id
    return [*ids, eos] if eos is not None and (not ids or ids[-1] != eos) else ids


def has_chat_template(tokenizer: Any) -> bool:
    return tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))


def knows_markers(tokenizer: Any) -> bool:
    """Whether the plain template's markers are tokens of this vocabulary (the starter adds them; no pretrained
    tokenizer has them). No tokenizer means the marker template, as the starter's build writes its corpus.

    The copy marker is looked up by id: `get_vocab()` builds a dict of the whole vocabulary on every call (0.23 s
    for Gemma's 262,144 tokens), and this runs once per rendered prompt."""
    if tokenizer is None:
        return True
    marker_id = tokenizer.convert_tokens_to_ids(COPY_MARKER)
    return marker_id is not None and marker_id != tokenizer.unk_token_id


def end_of_copy(tokenizer: Any) -> str:
    """The text that ends a copy in training: the chat template's end-of-turn marker (what generation stops at),
    or the tokenizer's end-of-sequence token for the plain template. Empty when neither can be found."""
    if has_chat_template(tokenizer):
        probe = "\u2063copy\u2063"  # a string no template contains, to find what follows an assistant turn
        messages = [{"role": "user", "content": "x"}, {"role": "assistant", "content": probe}]
        text: str = tokenizer.apply_chat_template(messages, tokenize=False, enable_thinking=False)
        after = text[text.find(probe) + len(probe) :] if probe in text else ""
        for token in tokenizer.all_special_tokens:
            if token and after.lstrip().startswith(token):
                return str(token)
    return str(tokenizer.eos_token or "") if tokenizer is not None else ""


def end_of_copy_ids(tokenizer: Any) -> list[int]:
    """Token ids that end a copy when generating: the end-of-turn marker and the end-of-sequence token."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    marker = end_of_copy(tokenizer)
    if marker:
        ids.add(tokenizer.convert_tokens_to_ids(marker))
    return sorted(i for i in ids if isinstance(i, int) and i >= 0)


def prompt_shapes(tokenizer: Any) -> list[str]:
    """A rendered prompt for every age group, channel and register, with a sample product: the template's own
    text, which a trimmed output layer keeps whatever the briefs (model/vocab.py)."""
    out = []
    for age, profile in tone_profiles().items():
        for channel in channel_table()["channels"]:
            brief = Brief.create(product="린넨 셔츠", event="여름 세일", age=age, channel=channel, notes="메모")
            out += [render_prompt(brief, register, tokenizer) for register in profile.registers]
    return out
