"""From a brief to checked candidates: prompt, generate in a batch, clean, check register, screen, fit the channel."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from model.brief import Brief
from model.compliance import ComplianceRule, load_rules, screen
from model.errors import ModelSideError
from model.postprocess import channel_limit, dedupe, fit_channel, length_flag, measure, normalize
from model.prompt import registers_for
from model.tone import detect_register, profile_for, register_name

MAX_EXTRA_ROUNDS = 2
STOP_MARKERS = ["<제품>", "<카피>", "\n\n"]


class Backend(Protocol):
    """What the writer needs from a model: the in-process engine and the HTTP client both provide it."""

    @property
    def version(self) -> str:
        """The model version that writes (recorded on every candidate)."""
        ...

    def prompt_for(self, brief: Brief, register: str) -> str: ...

    def complete(
        self,
        prompts: list[str],
        *,
        max_tokens: int,
        temperature: float,
        top_p: float,
        seed: int | None,
        stop: list[str] | None,
    ) -> list[str]: ...


@dataclass(frozen=True)
class Candidate:
    """One checked copy: its text, detected register, whether that fits the audience, flags and length."""

    text: str
    register: str
    register_ok: bool
    flags: list[str] = field(default_factory=list)
    length: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain fields for JSON and storage."""
        return asdict(self)


@dataclass(frozen=True)
class Generation:
    """The result of one brief: candidates plus what it took to make them."""

    candidates: list[Candidate]
    model_version: str
    rounds: int
    generated: int
    elapsed_ms: int


@dataclass
class CopyWriter:
    """Turns briefs into candidates with any `Backend`; regenerates register mismatches a bounded number of times."""

    backend: Backend
    rules: list[ComplianceRule] = field(default_factory=load_rules)
    temperature: float = 0.8
    top_p: float = 0.95
    max_extra_rounds: int = MAX_EXTRA_ROUNDS

    def write(self, brief: Brief, *, seed: int | None = None) -> Generation:
        """Generate `brief.n` candidates; mismatches that survive every retry are kept, marked and flagged."""
        started = time.perf_counter()
        profile = profile_for(brief.age_group)
        wanted = registers_for(brief)
        matched: list[tuple[str, str]] = []
        mismatched: list[tuple[str, str]] = []
        rounds = generated = 0
        while len(matched) < brief.n and rounds <= self.max_extra_rounds:
            missing = brief.n - len(matched)
            # retries ask for extra copies, since some come back as duplicates or in the wrong register
            registers = wanted[:missing] if rounds == 0 else [wanted[i % len(wanted)] for i in range(missing * 2)]
            texts = self._generate(brief, registers, seed=None if seed is None else seed + rounds)
            rounds += 1
            generated += len(texts)
            seen = [t for t, _ in matched + mismatched]
            for text in dedupe(texts, keep=seen):
                register = detect_register(text)
                (matched if profile.accepts(register) else mismatched).append((text, register))
        chosen = [(t, r, True) for t, r in matched[: brief.n]]
        chosen += [(t, r, False) for t, r in mismatched[: brief.n - len(chosen)]]
        if not chosen:
            raise ModelSideError(
                f"the model returned no usable text in {rounds} rounds for {brief.as_dict()}",
                user_message="모델이 쓸 만한 문장을 만들지 못했어요. 제품이나 행사를 조금 바꿔 다시 요청해 주세요.",
            )
        candidates = [self._finish(text, register, ok, brief) for text, register, ok in chosen]
        elapsed = int((time.perf_counter() - started) * 1000)
        return Generation(candidates, self.backend.version, rounds, generated, elapsed)

    def _generate(self, brief: Brief, registers: list[str], *, seed: int | None) -> list[str]:
        allow_emoji = profile_for(brief.age_group).emoji
        prompts = [self.backend.prompt_for(brief, r) for r in registers]
        raw = self.backend.complete(
            prompts,
            max_tokens=_max_tokens(brief.channel),
            temperature=self.temperature,
            top_p=self.top_p,
            seed=seed,
            stop=STOP_MARKERS,
        )
        return [fit_channel(normalize(t), brief.channel, allow_emoji=allow_emoji) for t in raw]

    def _finish(self, text: str, register: str, ok: bool, brief: Brief) -> Candidate:
        flags = screen(text, self.rules) + length_flag(text, brief.channel)
        if not ok:
            expected = "/".join(register_name(r) for r in profile_for(brief.age_group).registers)
            flags.append(f"register_mismatch: {register_name(register)}, {brief.age_group} expects {expected}")
        return Candidate(text, register, ok, flags, measure(text, brief.channel))


def _max_tokens(channel: str) -> int:
    """A generous token budget for the channel; the byte-level tokenizer spends about one token per syllable."""
    return min(160, channel_limit(channel) + 16)
