"""Live champion/challenger trials: who writes which candidates, what the reactions say, and when the rule decides.

A retrain whose adapter passes the offline safety floor starts a trial instead of promoting it. While it runs,
each request's candidates are written partly by the champion (the active version, or the base model) and partly
by the challenger: for n=5, 3 + 2, alternating which side gets 3, shuffled and unlabelled in Slack. After each
reaction the evidence is re-read from the store and the rule of `bot/learning/trial_rule.py` is applied; it promotes the
challenger or retires it. The trial's state lives in the store, so it survives restarts; a rollback, a manual
promote or `/copy trial stop` ends it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.learning.trial_rule import Decision, Side, Tally, TrialRule, decide, tally
from model.training.feedback import RatedCandidate
from storage import Store
from storage.base import Clock, Row, iso, utc_now

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
_DECIDING = threading.Lock()  # reactions arrive on several threads; one decision at a time in this process
WAITING = "a live trial is still deciding"  # how a retrain that waits for a trial says so (the report reads it)


def split(n: int, ordinal: int) -> list[str]:
    """Which side writes each of n candidates: the larger half alternates between the sides by `ordinal`."""
    larger, smaller = (n + 1) // 2, n // 2
    first, second = (CHAMPION, CHALLENGER) if ordinal % 2 == 0 else (CHALLENGER, CHAMPION)
    return [first] * larger + [second] * smaller


@dataclass(frozen=True)
class TrialState:
    """A trial as it stands: its row, its rule, the evidence and what the rule says now."""

    trial: Row
    rule: TrialRule
    evidence: Tally
    decision: Decision

    @property
    def id(self) -> int:
        return int(self.trial["id"])

    @property
    def challenger(self) -> str:
        return str(self.trial["challenger_version"])

    @property
    def champion(self) -> str:
        """The champion's version, or "" for the base model."""
        return str(self.trial["champion_version"] or "")

    def as_dict(self) -> dict[str, Any]:
        """Plain values for `--json`, status commands and the report."""
        return {"id": self.id, "challenger": self.challenger, "champion": self.champion or "base model",
                "started_at": self.trial["started_at"], "status": self.trial["status"], **self.evidence.as_dict(),
                "challenger_rate": self.evidence.rate(self.evidence.challenger),
                "champion_rate": self.evidence.rate(self.evidence.champion),
                "next": self.decision.reason, "next_look": self.next_look, "rule": self.rule.as_dict()}  # fmt: skip

    @property
    def next_look(self) -> int:
        """The rated-request count of the rule's next look."""
        looked = max(int(self.trial.get("looked_at") or 0), self.decision.look or 0)
        return next((n for n in self.rule.looks() if n > looked), self.rule.max_requests)

    def line(self) -> str:
        """One English line for the CLI and logs."""
        e = self.evidence
        return (f"trial {self.id}: {self.challenger} (challenger) vs {self.champion or 'the base model'} (champion): "
                f"{e.rated} rated requests, liked {_pct(e.rate(e.challenger))} vs {_pct(e.rate(e.champion))}, "
                f"P(better) {e.p_better:.2f}; {self.decision.reason}")  # fmt: skip


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def describe_ko(trial: dict[str, Any]) -> str:
    """A trial (as `TrialState.as_dict()` gives it) in one Korean sentence, for Slack and the weekly report."""
    champion = "기본 모델" if trial["champion"] in ("", "base model") else trial["champion"]
    head = f"새 모델 {trial['challenger']}을(를) 지금 모델 {champion}과(와) 실제 요청에서 비교하고 있어요"
    if not trial["rated"]:
        return f"{head}. 아직 평가된 요청이 없어요. 후보에 👍/👎/🏆를 달아 주시면 판단에 쓰여요."
    rates = f"좋아요 비율 {_pct(trial['challenger_rate'])} 대 {_pct(trial['champion_rate'])}"
    return (f"{head}. 평가된 요청 {trial['rated']}건: 새 모델이 나았던 요청 {trial['wins']}건, 못했던 요청 "
            f"{trial['losses']}건, {rates}, 새 모델이 더 나을 확률 {trial['p_better']:.0%}. 평가된 요청이 "
            f"{trial['next_look']}건이 되면 다시 판단해요 (최대 {trial['rule']['max_requests']}건).")  # fmt: skip


def outcome_ko(trial: dict[str, Any]) -> str:
    """How a finished trial ended, in Korean (a stored trial row with its tally)."""
    tally_ = trial.get("tally") or {}
    figures = f" (평가된 요청 {tally_['rated']}건, 더 나을 확률 {tally_['p_better']:.0%})" if tally_ else ""
    return {
        "promoted": f"새 모델 {trial['challenger_version']}이(가) 실제 요청에서 더 좋은 반응을 얻어 적용됐어요{figures}.",
        "retired": f"새 모델 {trial['challenger_version']}은(는) 실제 요청에서 더 낫다는 근거가 없어 내렸어요{figures}.",
        "ended": f"새 모델 {trial['challenger_version']}의 비교는 관리자가 끝냈어요.",
    }.get(str(trial["status"]), f"새 모델 {trial['challenger_version']}을(를) 비교하고 있어요.")


def evidence(store: Store, trial: Row, rule: TrialRule, now: datetime) -> Tally:
    """The trial's tally, re-read from the feedback log (a removed reaction is removed from the evidence); a
    request counts once its reactions have settled."""
    settled_before = iso(now - timedelta(minutes=rule.settle_minutes))
    rows = []
    for request in store.trial_requests(int(trial["id"])):
        sides = {CHALLENGER: Side(), CHAMPION: Side()}
        reacted = False
        for c in request["candidates"]:
            side = CHALLENGER if c["model_version"] == trial["challenger_version"] else CHAMPION
            liked = RatedCandidate("", "", c["up"], c["down"], c["win"]).liked
            sides[side] = Side(sides[side].shown + 1, sides[side].liked + liked)
            reacted |= bool(c["up"] or c["down"] or c["win"])
        settled = request["last_reaction_at"] is not None and request["last_reaction_at"] <= settled_before
        rows.append((sides[CHALLENGER], sides[CHAMPION], reacted and settled))
    return tally(rows)


def undecided_leader(store: Store, base_model: str) -> Row | None:
    """The challenger the next retrain starts from instead of the champion, or None (start from the champion).

    It is the latest trial's challenger when that trial ran to its last look without a decision while leaning the
    challenger's way (P(better) above one half), the champion it was tried against is still the one serving, and
    nothing has been trained since. Why: a trial of 30 requests sees a gain of about 10 points of liked share less
    than half the time (docs/learning-loop.md, section 4), so a taste learned in small steps would stall, each new
    challenger one step ahead of a champion that never moves. Built on, two undecided steps make one difference
    the next trial can see. Nothing is promoted on this: the next challenger still passes the offline floor
    against the champion, and only its own trial promotes it, a test that holds whatever the challenger was
    trained from. One hop per trial: a retrain after this one starts from the champion again unless its own
    trial leaned the same way."""
    latest = store.trials(limit=1)
    if not latest:
        return None
    trial = latest[0]
    if trial["status"] != "retired" or float((trial["tally"] or {}).get("p_better", 0.0)) <= 0.5:
        return None
    active = store.active_model_version()
    if str(trial["champion_version"] or "") != (str(active["version"]) if active else ""):
        return None
    if active and str(active["promoted_at"] or "") > str(trial["ended_at"] or ""):
        return None  # a person rolled back or promoted since (even back to the same champion): their call stands
    versions = store.model_versions()
    newest = versions[-1] if versions else None
    if newest is None or newest["version"] != trial["challenger_version"] or not newest["adapter_path"]:
        return None
    return newest if newest["base_model"] == base_model else None


class Trials:
    """The running trial of one store, and the rule new trials start with."""

    def __init__(self, store: Store, rule: TrialRule | None = None, *, clock: Clock = utc_now) -> None:
        self.store = store
        self.rule = rule or TrialRule()
        self.clock = clock

    def running(self) -> TrialState | None:
        """The running trial with its evidence, or None."""
        trial = self.store.running_trial()
        if trial is None:
            return None
        rule = TrialRule.from_dict(trial["rule"])
        found = evidence(self.store, trial, rule, self.clock())
        return TrialState(trial, rule, found, decide(rule, found, looked_at=int(trial["looked_at"] or 0)))

    def start(self, challenger: str, champion: str, *, training_run_id: int | None = None) -> int:
        """Start a trial of `challenger` against `champion` ("" for the base model) with this rule."""
        trial_id = self.store.start_trial(challenger=challenger, champion=champion, rule=self.rule.as_dict(),
                                          training_run_id=training_run_id)  # fmt: skip
        log.info("trial %d started: %s against %s", trial_id, challenger, champion or "the base model")
        return trial_id

    def check(self) -> TrialState | None:
        """Apply the rule to the running trial; when it decides, record the outcome. Returns the state it decided
        on (its decision says what happened), or None when no trial runs."""
        with _DECIDING:
            state = self.running()
            if state is None or state.decision.look is None:
                return state
            if state.decision.action == "continue":
                self.store.note_trial_look(state.id, state.decision.look)
                return state
            promote = state.decision.action == "promote"
            if not self.store.finish_trial(state.id, promote=promote, reason=state.decision.reason,
                                           tally=state.evidence.as_dict()):  # fmt: skip
                return state  # decided elsewhere in the meantime
            log.info("trial %d: %s %s (%s)", state.id, "promoted" if promote else "retired", state.challenger,
                     state.decision.reason)  # fmt: skip
            return state

    def stop(self, reason: str) -> str | None:
        """End the running trial by a person's decision; the challenger's version, or None if none ran."""
        with _DECIDING:
            return self.store.end_trial(reason=reason)
