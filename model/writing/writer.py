"""From a brief to checked candidates: prompt, generate in a batch, clean, check register, screen, fit the channel,
and, on a channel that needs it, wrap each copy in the legal frame of a promotional message (model/writing/frame.py)."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from model.errors import ModelSideError
from model.writing.brief import Brief
from model.writing.compliance import ComplianceRule, load_rules, screen, strip_framed_labels
from model.writing.facts import UNGROUNDED, flags_for
from model.writing.form import form_faults_many
from model.writing.frame import MIN_BODY, AdFrame, needs_frame
from model.writing.postprocess import channel_limit, dedupe, fit_channel, length_flag, measure, normalize
from model.writing.prompt import registers_for
from model.writing.rerank import Option, Reranker, choose
from model.writing.tone import detect_register, profile_for, register_name

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
        model: str | None = None,
        avoid: Sequence[str] = (),  # copies the set already holds (an engine without a sibling penalty ignores it)
    ) -> list[str]: ...


@dataclass(frozen=True)
class Candidate:
    """One checked copy: its text, detected register, whether that fits the audience, flags and length; on a channel
    with the legal frame, also the whole message to send, which `length` measures."""

    text: str
    register: str
    register_ok: bool
    flags: list[str] = field(default_factory=list)
    length: int = 0
    model_version: str = ""  # the version that wrote it
    message: str = ""  # the framed message (광고 표시, sender, copy, opt-out line); "" on a channel without the frame

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
    notes: list[str] = field(default_factory=list)  # advice on the request as a whole (when it may be sent)
    # the rules broken by each text written but never shown because it was not copy (model/writing/form.py)
    malformed: list[list[str]] = field(default_factory=list)


@dataclass
class CopyWriter:
    """Turns briefs into candidates with any `Backend`; regenerates register mismatches a bounded number of times."""

    backend: Backend
    rules: list[ComplianceRule] = field(default_factory=load_rules)
    temperature: float = 0.8
    top_p: float = 0.95
    max_extra_rounds: int = MAX_EXTRA_ROUNDS
    # with a reward model in force: write 2n, show the best n (model/writing/rerank.py)
    reranker: Reranker | None = None
    frame: AdFrame = field(default_factory=AdFrame)  # the sender and opt-out number (placeholders until set)

    def write(self, brief: Brief, *, seed: int | None = None, versions: Sequence[str] | None = None) -> Generation:
        """Generate `brief.n` candidates; mismatches that survive every retry are kept, marked and flagged.

        `versions` names the model version that writes each candidate (a live trial's split); then each version's
        candidates are written by it, and the whole set is shuffled so that the order says nothing about who wrote
        what."""
        started = time.perf_counter()
        brief = self._budgeted(brief)
        plan = list(versions) if versions is not None else [self.backend.version] * brief.n
        if len(plan) != brief.n:
            raise ValueError(f"versions names {len(plan)} writers for {brief.n} candidates")
        groups = list(dict.fromkeys(plan))
        candidates: list[Candidate] = []
        rounds = generated = 0
        malformed: list[list[str]] = []
        for g, version in enumerate(groups):
            group_seed = None if seed is None else seed + 7919 * g  # sides must not share their samples
            model = None if versions is None else version
            written, r, made = self._write_group(
                brief, plan.count(version), model, version, group_seed, candidates, malformed
            )
            candidates += written
            rounds, generated = max(rounds, r), generated + made
        if not candidates:
            raise ModelSideError(
                f"the model returned no usable text in {rounds} rounds for {brief.as_dict()}",
                user_message="모델이 쓸 만한 문장을 만들지 못했어요. 제품이나 행사를 조금 바꿔 다시 요청해 주세요.",
            )
        if len(groups) > 1:
            (random.Random(seed) if seed is not None else random.SystemRandom()).shuffle(candidates)
        elapsed = int((time.perf_counter() - started) * 1000)
        notes = self.frame.notes(brief.channel)
        return Generation(candidates, self.backend.version, rounds, generated, elapsed, notes, malformed)

    def _budgeted(self, brief: Brief) -> Brief:
        """The brief with the body's budget when its channel carries the legal frame; refused when the frame leaves
        no room for copy (a long sender name on an SMS), saying where it fits."""
        if not needs_frame(brief.channel):
            return brief
        budget = self.frame.budget(brief.channel)
        if budget < MIN_BODY:
            raise ModelSideError(
                f"the legal frame leaves {budget} of the {brief.channel} limit for the copy; shorten "
                "COPYBOT_AD_SENDER or ask for a longer channel (lms)",
                user_message=f"광고 표시·발신자·수신거부 문구만으로 {brief.channel} 길이를 거의 다 써서 본문 자리가 "
                "없어요. 장문 문자(LMS)로 요청해 주세요.",
            )  # fmt: skip
        return dataclasses.replace(brief, limit=budget)

    def _write_group(
        self,
        brief: Brief,
        n: int,
        model: str | None,
        version: str,
        seed: int | None,
        others: list[Candidate],
        malformed: list[list[str]],
    ) -> tuple[list[Candidate], int, int]:
        """n candidates by one model, retrying register mismatches, copies that state a figure the brief does not
        give (shown last, flagged, when no retry helps) and texts that are not copy (never shown;
        the rules each broke added to `malformed`); (candidates, rounds, texts generated)."""
        profile = profile_for(brief.age_group)
        factor = self._pool_factor()
        wanted = registers_for(dataclasses.replace(brief, n=n))
        pool_registers = registers_for(dataclasses.replace(brief, n=n * factor)) if factor > 1 else wanted
        matched: list[tuple[str, str]] = []
        too_long: list[tuple[str, str]] = []  # in register, but the framed message is over the channel's limit
        mismatched: list[tuple[str, str]] = []
        invented: list[tuple[str, str]] = []  # in register, but stating a figure or benefit the brief does not give
        rounds = generated = 0
        while len(matched) < n and rounds <= self.max_extra_rounds:
            missing = n - len(matched)
            # the first round writes the whole pool; retries ask for extra copies, since some come back as
            # duplicates or in the wrong register
            registers = pool_registers if rounds == 0 else [wanted[i % len(wanted)] for i in range(missing * 2)]
            # the set's copies so far (the other side's in a trial, this side's on a retry): the sibling penalty
            # keeps the new ones apart from them as it does within one batch
            seen = [c.text for c in others] + [t for t, _ in matched + too_long + mismatched + invented]
            texts = self._generate(brief, registers, seed=None if seed is None else seed + rounds, model=model,
                                   avoid=seen)  # fmt: skip
            rounds += 1
            generated += len(texts)
            fresh = dedupe(texts, keep=seen)
            for text, faults in zip(fresh, form_faults_many(fresh), strict=True):
                if faults:  # not copy at all: never shown, and never labelled as fitting the audience
                    malformed.append(faults)
                    continue
                register = detect_register(text)
                if not profile.accepts(register):
                    mismatched.append((text, register))
                elif flags_for(text, brief):
                    invented.append((text, register))
                else:
                    (matched if self._fits(text, brief) else too_long).append((text, register))
        written = [self._finish(t, r, True, brief, version) for t, r in matched + too_long]
        written += [self._finish(t, r, False, brief, version) for t, r in mismatched]
        written += [self._finish(t, r, True, brief, version) for t, r in invented]  # last: a claim nobody made
        return self._shown(brief, written, n), rounds, generated

    def _fits(self, text: str, brief: Brief) -> bool:
        """Whether a copy's whole message fits its channel. Only a framed channel's copy is written again when it
        does not (the frame leaves its body less room than the model learned to fill); a copy that no retry
        shortens is still shown, flagged, after those that fit."""
        return not needs_frame(brief.channel) or not length_flag(self.frame.wrap(text, brief.channel), brief.channel)

    def _pool_factor(self) -> int:
        if self.reranker is None or not self.reranker.worth_a_pool() or not hasattr(self.backend, "features"):
            return 1
        return self.reranker.factor

    def _shown(self, brief: Brief, written: list[Candidate], n: int) -> list[Candidate]:
        """The n candidates to show: the first n in the audience's register (then mismatches), or, with a reward
        in force and more written than shown, the best n by tier and reward."""
        scores = None
        if self.reranker is not None and len(written) > n:
            scores = self.reranker.scores(self.backend, brief, [c.text for c in written],
                                          [c.register for c in written])  # fmt: skip
        if scores is None:
            return written[:n]
        options = [Option(c.text, _tier(c), s) for c, s in zip(written, scores, strict=True)]
        return [written[i] for i in choose(options, n)]

    def _generate(
        self, brief: Brief, registers: list[str], *, seed: int | None, model: str | None = None,
        avoid: Sequence[str] = (),
    ) -> list[str]:  # fmt: skip
        allow_emoji = profile_for(brief.age_group).emoji
        prompts = [self.backend.prompt_for(brief, r) for r in registers]
        extra: dict[str, Any] = {"model": model} if model is not None else {}
        if avoid:
            extra["avoid"] = list(avoid)
        raw = self.backend.complete(
            prompts,
            max_tokens=_max_tokens(brief.limit or channel_limit(brief.channel)),
            temperature=self.temperature,
            top_p=self.top_p,
            seed=seed,
            stop=STOP_MARKERS,
            **extra,
        )
        texts = [normalize(t) for t in raw]
        if needs_frame(brief.channel):  # the frame adds "(광고)" itself: a model trained on real SMS writes one
            texts = [strip_framed_labels(t, self.rules) for t in texts]
        return [fit_channel(t, brief.channel, allow_emoji=allow_emoji, limit=brief.limit) for t in texts]

    def _finish(self, text: str, register: str, ok: bool, brief: Brief, version: str) -> Candidate:
        message = self.frame.wrap(text, brief.channel)
        framed = needs_frame(brief.channel)
        flags = screen(text, self.rules, framed=framed) + flags_for(text, brief) + length_flag(message, brief.channel)
        flags += self.frame.flags(brief.channel)
        if not ok:
            expected = "/".join(register_name(r) for r in profile_for(brief.age_group).registers)
            flags.append(f"register_mismatch: {register_name(register)}, {brief.age_group} expects {expected}")
        return Candidate(text, register, ok, flags, measure(message, brief.channel), version, message if framed else "")


def _tier(candidate: Candidate) -> int:
    """0: in register, no flag; 1: in register, flagged (a claim to check, too long); 2: register mismatch;
    3: a figure or benefit the brief does not give (model/writing/facts.py), which the team must not send as is."""
    if any(f.startswith(UNGROUNDED) for f in candidate.flags):
        return 3
    if not candidate.register_ok:
        return 2
    return 1 if candidate.flags else 0


def _max_tokens(limit: int) -> int:
    """A generous token budget for a copy of `limit` bytes or characters; the byte-level tokenizer spends about
    one token per syllable."""
    return min(160, limit + 16)
