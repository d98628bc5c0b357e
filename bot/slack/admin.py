"""`/copy status`, `/copy retrain` and `/copy rollback [version]`: for the people in COPYBOT_ADMINS only."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.learning.trials import describe_ko, outcome_ko
from bot.learning.versions import promote_version
from bot.slack.copy_requests import BotDeps
from model.errors import AdapterError
from storage import StoreError
from storage.base import utc_now

log = logging.getLogger(__name__)


def refusal(deps: BotDeps) -> str:
    """Who may use admin commands, for someone who may not."""
    admins = ", ".join(f"<@{a}>" for a in deps.settings.admins)
    if not admins:
        return "관리자 명령은 관리자만 쓸 수 있는데, 아직 관리자가 지정되지 않았어요. 운영자에게 COPYBOT_ADMINS 설정을 부탁해 주세요."
    return f"관리자 명령은 관리자만 쓸 수 있어요. {admins}에게 부탁해 주세요."


def _local(moment: str | datetime | None, tz: str) -> str:
    if not moment:
        return "–"
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def status_text(deps: BotDeps) -> str:
    """The active model, the last and next retrain, and the generation queue."""
    store, tz = deps.store, deps.settings.timezone
    active = store.active_model_version()
    run = store.latest_training_run()
    if run is not None:
        outcome = {"promoted": "새 모델 적용", "trial": "새 모델 시험 시작", "kept": "기존 모델 유지"}.get(
            run.get("gate_decision") or "", run["status"]
        )
        last = f"{_local(run['started_at'], tz)} ({outcome}{', ' + run['result_version'] if run.get('result_version') else ''})"
    else:
        last = "아직 없음"
    upcoming = deps.schedule.upcoming(1) if deps.schedule is not None else []
    nxt = _local(upcoming[0], tz) if upcoming else "예약 없음"
    model = model_text(deps.settings.base_model, active["version"] if active else "", deps.settings.uses_starter)
    return (
        f"*copybot 상태*\n• 지금 쓰는 모델: {model}\n• 마지막 재학습: {last}\n• 다음 재학습: {nxt} ({tz})\n"
        f"• 생성 대기열: {deps.pool.depth()}건\n• 후보 재정렬: {rerank_text(deps)}\n"
        f"• 새 모델 시험: {trial_text(deps)}"
    )


def model_text(base: str, version: str, starter: bool) -> str:
    """The adapter serving and the base it runs on; a real base without one is said to be untuned."""
    if version:
        return f"{version} ({base} 위에 학습한 어댑터)"
    if starter:
        return f"기본 모델 {base} (재학습한 어댑터 없음)"
    return (
        f"{base} 그대로예요: 아직 어댑터가 없어 카피가 거칠 수 있어요 "
        "(운영자가 `copybot model starter-adapter`로 첫 어댑터를 만들어야 해요)"
    )


def rerank_text(deps: BotDeps) -> str:
    """Whether candidates are reranked by the learned reward, and if not, why (model/writing/rerank.py)."""
    reranker = deps.writer.reranker
    if reranker is None:
        return "꺼짐 (COPYBOT_RERANK=off)"
    if reranker.current() is None:
        return "아직 보상 모델이 없어요 (재학습이 반응으로 학습해요)"
    if reranker.unavailable:
        return f"꺼짐: 모델 서버가 특징값을 주지 않아요 ({reranker.unavailable}). docs/gpu-host.md를 봐 주세요."
    return "켜짐 (후보를 두 배로 쓰고 반응 예측이 좋은 것을 보여 드려요)"


def trial_text(deps: BotDeps) -> str:
    """The running trial in Korean, or the latest one's outcome."""
    assert deps.trials is not None
    state = deps.trials.check()  # any look that is due is taken before the trial is shown
    if state is not None and state.decision.action == "continue":
        return describe_ko(state.as_dict())
    latest = deps.store.trials(limit=1)
    return outcome_ko(latest[0]) if latest else "진행 중인 시험이 없어요."


TRIAL_STOP = ("stop", "end", "retire", "중단", "종료", "끝")
TRIAL_PROMOTE = ("promote", "adopt", "적용", "채택")


def trial_command(deps: BotDeps, arg: str) -> str:
    """`/copy trial` shows the live trial; `stop` ends it (the challenger is set aside); `promote` adopts the
    challenger now, without waiting for the rule."""
    assert deps.trials is not None
    word = arg.split()[0].lower() if arg.split() else ""
    state = deps.trials.running()
    if not word:
        return trial_text(deps)
    if state is None:
        return "진행 중인 시험이 없어요. `/copy status`로 상태를 확인해 주세요."
    if word in TRIAL_STOP:
        deps.trials.stop(f"stopped by an admin in Slack after {state.evidence.rated} rated requests")
        return f"시험을 끝냈어요. 새 모델 {state.challenger}은(는) 쓰지 않고, 지금 모델을 계속 써요."
    if word in TRIAL_PROMOTE:
        deps.store.promote_model_version(state.challenger)  # a manual promote ends the trial
        return f"새 모델 {state.challenger}을(를) 바로 적용했어요. 몇 초 안에 새 요청부터 적용돼요."
    return "`/copy trial`, `/copy trial stop`, `/copy trial promote` 중 하나로 입력해 주세요."


def start_retrain(deps: BotDeps, client: WebClient, user: str, channel: str) -> str:
    """Run the weekly job now in the background; the report goes to the report channel, the outcome to the user."""
    if deps.weekly is None:
        return "이 봇에는 재학습 작업이 연결되어 있지 않아요. 운영자에게 알려 주세요."
    job = deps.weekly

    def run() -> None:
        try:
            result = job("admin", utc_now())
            retrain = result["retrain"]
            text = f"재학습이 끝났어요: {retrain['status']} {retrain['version']}. {retrain['message']}"
        except Exception as exc:  # the operator log has the traceback; the admin gets told
            log.exception("admin retrain failed")
            text = f"재학습 중 문제가 생겼어요. 운영자 로그를 확인해 주세요. ({exc!r})"
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            log.warning("could not tell %s the retrain result: %s", user, exc.response.get("error"))

    threading.Thread(target=run, name="admin-retrain", daemon=True).start()
    where = f"<#{deps.settings.report_channel}>" if deps.settings.report_channel else "서버의 reports 폴더"
    return f"재학습을 시작했어요. 몇 분 걸려요. 끝나면 리포트를 {where}에 올리고 결과를 알려 드릴게요."


def rollback(deps: BotDeps, version: str) -> str:
    """Go back to the previous version, or to `version`; either ends a running trial."""
    store = deps.store
    running = store.running_trial()
    ended = f" 진행 중이던 새 모델 {running['challenger_version']}의 시험도 끝냈어요." if running else ""
    try:
        if version:
            try:
                promote_version(store, deps.settings, version)
            except AdapterError as exc:
                log.info("rollback to %s refused: %s", version, exc)
                return f"{exc.user_message} `copybot model list`로 버전을 확인해 주세요."
            return f"{version}(으)로 바꿨어요. 몇 초 안에 새 요청부터 적용돼요.{ended}"
        active = store.rollback_model_version()
    except StoreError as exc:
        log.info("rollback refused: %s", exc)
        return "되돌릴 모델이 없어요. 지금은 기본 모델을 쓰고 있어요."
    now = active["version"] if active else "기본 모델"
    return f"이전 모델로 되돌렸어요. 이제 {now}을(를) 써요. 몇 초 안에 새 요청부터 적용돼요.{ended}"


def handle(deps: BotDeps, command: dict[str, Any], client: WebClient, word: str, arg: str) -> str:
    """The ephemeral answer to an admin command (a refusal for non-admins)."""
    user = command["user_id"]
    if user not in deps.settings.admins:
        log.info("admin command %r refused for %s", word, user)
        return refusal(deps)
    if word == "status":
        return status_text(deps)
    if word == "retrain":
        return start_retrain(deps, client, user, command["channel_id"])
    if word == "trial":
        return trial_command(deps, arg)
    return rollback(deps, arg.split()[0] if arg else "")
