"""`/copy status`, `/copy retrain`, `/copy rollback` through the real Bolt app: admins only, answers in Korean."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from bot.learning.schedule import WeeklySchedule, cron_trigger
from bot.learning.weekly import retrain_and_report
from tests.bot.conftest import Harness
from tests.bot.test_versions import write_adapter

ADMIN = "UADMIN1"


def _ephemeral(h: Harness, text: str, user: str = ADMIN) -> str:
    reply = h.ack_json(h.command(text, user=user))
    assert reply["response_type"] == "ephemeral"
    return str(reply["text"])


def _versions(h: Harness, *names: str) -> None:
    for name in names:
        folder = h.deps.settings.adapters_dir
        write_adapter(folder, name)
        h.store.add_model_version(version=name, base_model="starter", adapter_path=str(folder / name),
                                  parent_version="", status="candidate", metrics={})  # fmt: skip
        h.store.promote_model_version(name)


@pytest.mark.parametrize("text", ["status", "retrain", "rollback", "롤백 v0001", "재학습"])
def test_non_admins_are_refused_and_told_who_can(make_harness: Callable[..., Harness], text: str) -> None:
    h = make_harness(COPYBOT_ADMINS=f"{ADMIN},UADMIN2")
    _versions(h, "v0001", "v0002")
    answer = _ephemeral(h, text, user="U100")
    assert "관리자만" in answer and f"<@{ADMIN}>" in answer and "<@UADMIN2>" in answer
    assert h.store.active_model_version()["version"] == "v0002"  # nothing happened
    assert h.fake.of("chat.postMessage") == []


def test_without_admins_configured_the_refusal_says_how_to_set_them(make_harness: Callable[..., Harness]) -> None:
    assert "COPYBOT_ADMINS" in _ephemeral(make_harness(), "status", user=ADMIN)


def test_status_shows_model_retrains_and_queue(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(COPYBOT_ADMINS=ADMIN)
    h.deps.schedule = WeeklySchedule(h.store, cron_trigger(h.deps.settings), lambda slot: {})
    answer = _ephemeral(h, "status")
    assert "지금 쓰는 모델: 기본 모델" in answer and "마지막 재학습: 아직 없음" in answer
    assert "다음 재학습: " in answer and "(Asia/Seoul)" in answer and "생성 대기열: 0건" in answer
    assert "후보 재정렬: 꺼짐 (COPYBOT_RERANK=off)" in answer  # the harness's writer has no reranker
    _versions(h, "v0003")
    run = h.store.start_training_run(trigger="schedule", base_model="starter")
    h.store.finish_training_run(run, status="succeeded", result_version="v0003", gate_decision="promoted")
    answer = _ephemeral(h, "상태")
    assert "지금 쓰는 모델: v0003" in answer and "새 모델 적용, v0003" in answer


def test_rollback_to_the_previous_or_a_named_version(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(COPYBOT_ADMINS=ADMIN)
    assert "되돌릴 모델이 없어요" in _ephemeral(h, "rollback")
    _versions(h, "v0001", "v0002", "v0003")
    assert "이제 v0002을(를) 써요" in _ephemeral(h, "rollback")
    assert h.store.active_model_version()["version"] == "v0002"
    assert "v0003(으)로 바꿨어요" in _ephemeral(h, "rollback v0003")
    assert h.store.active_model_version()["version"] == "v0003"
    assert "v0042 어댑터 폴더가 없거나" in _ephemeral(h, "rollback v0042")


def test_retrain_runs_in_the_background_and_posts_the_report(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(COPYBOT_ADMINS=ADMIN, COPYBOT_REPORT_CHANNEL="CREPORT")
    calls: list[str] = []

    def weekly(trigger: str, now: datetime) -> dict[str, Any]:
        calls.append(trigger)
        return retrain_and_report(h.deps.settings, h.store, h.app.client, trigger=trigger, now=now)

    h.deps.weekly = weekly
    answer = _ephemeral(h, "retrain")
    assert "재학습을 시작했어요" in answer and "<#CREPORT>" in answer
    [result] = h.fake.wait_for("chat.postEphemeral", 1, timeout=60)
    assert result["user"] == ADMIN and "재학습이 끝났어요: skipped" in result["text"]
    assert calls == ["admin"]
    [report] = h.fake.of("chat.postMessage")
    assert report["channel"] == "CREPORT" and "주간 리포트" in report["text"]
    assert h.store.db.table("training_runs").get(1)["trigger"] == "admin"


def test_the_status_names_the_adapter_and_its_base_and_says_when_a_real_base_has_none() -> None:
    from bot.slack.admin import model_text

    assert model_text("gemma-3-270m", "v0002", starter=False) == "v0002 (gemma-3-270m 위에 학습한 어댑터)"
    bare = model_text("gemma-3-270m", "", starter=False)
    assert bare.startswith("gemma-3-270m 그대로예요") and "copybot model starter-adapter" in bare
    assert model_text("starter", "", starter=True) == "기본 모델 starter (재학습한 어댑터 없음)"
