"""Hand-written model backends for the bot's tests: scripted answers, a slow model, a failing host."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from model.errors import ModelSideError, ModelUnavailableError
from model.writing.brief import Brief

FORMAL = ["정성을 담아 준비했습니다.", "귀한 분께 마음을 전하십시오.", "넉넉한 명절 되십시오.", "품격 있는 선물을 드립니다.", "감사의 마음을 담았습니다."]  # fmt: skip
POLITE = ["여름엔 린넨이죠!", "가볍게 입어 보세요.", "시원함을 선물해요.", "오늘만 특별가예요.", "지금 만나 보세요 😊"]  # fmt: skip


@dataclass
class ScriptedBackend:
    """Answers each batch from a script (then from `fallback`), optionally slowly; records prompts."""

    script: list[list[str]] = field(default_factory=list)
    fallback: list[str] = field(default_factory=lambda: POLITE)
    delay_s: float = 0.0
    gate: threading.Event | None = None  # when set, each call waits until the test opens the gate
    version: str = "scripted-v1"
    calls: list[list[str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def prompt_for(self, brief: Brief, register: str) -> str:
        return f"{brief.product}|{register}"

    def complete(self, prompts: list[str], **_: object) -> list[str]:
        time.sleep(self.delay_s)
        if self.gate is not None:
            self.gate.wait(timeout=30)
        with self._lock:
            self.calls.append(prompts)
            index = len(self.calls) - 1
        answers = self.script[index] if index < len(self.script) else self.fallback
        return (answers * (len(prompts) // max(1, len(answers)) + 1))[: len(prompts)]


@dataclass
class FailingBackend:
    """A model host that is down."""

    version: str = "down"
    error: ModelSideError = field(
        default_factory=lambda: ModelUnavailableError(
            "model host unreachable", user_message="모델 서버에 연결하지 못했어요. 잠시 후 다시 시도해 주세요."
        )
    )

    def prompt_for(self, brief: Brief, register: str) -> str:
        return brief.product

    def complete(self, prompts: list[str], **_: object) -> list[str]:
        raise self.error


CHAMPION_COPIES = [
    "여름엔 린넨이죠!",
    "가볍게 입어 보세요.",
    "시원함을 선물해요.",
    "주말에 만나 보세요.",
    "바람이 잘 통해요.",
]
CHALLENGER_COPIES = [
    "새로 나온 셔츠예요.",
    "오늘 입기 좋아요.",
    "산뜻하게 골라요.",
    "출근길도 편해요.",
    "가족과 함께 입어요.",
]


@dataclass
class VersionedEngine:
    """The in-process engine's adapter interface (default version, named adapters loaded on the side) over scripted
    copy: the base model and each adapter write their own list, so a test can tell who wrote what."""

    copies: dict[str, list[str]] = field(default_factory=dict)  # version -> what it writes (default: base list)
    base_version: str = "starter"
    version: str = "starter"
    loaded: set[str] = field(default_factory=set)
    calls: list[tuple[str, int]] = field(default_factory=list)  # (version, prompts) per call

    def use_adapter(self, adapter_path: object, version: str) -> None:
        if adapter_path is not None:
            self.loaded.add(version)
        self.version = version

    def add_adapter(self, adapter_path: object, version: str) -> None:
        self.loaded.add(version)

    def prompt_for(self, brief: Brief, register: str) -> str:
        return f"{brief.product}|{register}"

    def complete(self, prompts: list[str], *, model: str | None = None, **_: object) -> list[str]:
        name = model or self.version
        if name != self.base_version and name not in self.loaded:
            raise ModelUnavailableError(f"{name} is not loaded", user_message="모델을 불러오지 못했어요.")
        self.calls.append((name, len(prompts)))
        texts = self.copies.get(name) or (CHAMPION_COPIES if name == self.base_version else CHALLENGER_COPIES)
        start = sum(n for v, n in self.calls[:-1] if v == name)  # a retry writes the next copies on the list
        return [texts[(start + i) % len(texts)] for i in range(len(prompts))]
