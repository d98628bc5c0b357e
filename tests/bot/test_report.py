"""The weekly report: figures against a seeded store, Korean charts, Markdown, `copybot report`, and the Slack post
through the fake server's whole files_upload_v2 sequence."""

from __future__ import annotations

import json
import logging
import warnings
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from slack_sdk import WebClient

from bot.learning.trial_rule import TrialRule
from bot.report.build import build_report
from bot.report.charts import draw_charts
from bot.report.publish import post_report, write_report
from bot.report.text import retrain_sentence
from bot.report.weeks import Week
from storage import Store
from tests.bot.report_data import seed_two_weeks
from tests.cli import run
from tests.fakes.slack_api import FakeSlack

SEOUL = ZoneInfo("Asia/Seoul")
W48 = Week.parse("2026-W48", SEOUL)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def seeded(tmp_path: Path) -> Store:
    store = seed_two_weeks(tmp_path / "copybot.db")
    # the Monday-after retrain that learned from W48, with its loss curves
    store._clock = lambda: W48.end.astimezone(ZoneInfo("UTC"))  # type: ignore[method-assign]
    run_id = store.start_training_run(trigger="schedule", base_model="starter", parent_version="v0001")
    store.finish_training_run(
        run_id,
        status="succeeded",
        result_version="v0002",
        gate_decision="promoted",
        gate_reasons=["ok: preference: the chosen copy gained on 80% of held-out pairs"],
        dataset_summary={"counts": {"sft_feedback": 12, "sft_replay": 12, "pairs": 9}},
        metrics={
            "old": {"val_loss": 2.5, "distinct_2": 0.8, "temperature_scale": 1.0},
            "new": {"val_loss": 2.3, "distinct_2": 0.79, "temperature_scale": 1.125},
            "losses": {"train": [[1.0, 2.9], [2.0, 2.4]], "eval": [[1.0, 2.6], [2.0, 2.5]]},
        },
    )
    return store


def test_week_bounds_follow_the_team_time_zone() -> None:
    assert W48.bounds() == ("2026-11-22T15:00:00.000+00:00", "2026-11-29T15:00:00.000+00:00")
    assert W48.shifted(-1).label == "2026-W47" and W48.shifted(1).label == "2026-W49"
    with pytest.raises(ValueError, match="write it like 2026-W48"):
        Week.parse("48", SEOUL)
    with pytest.raises(ValueError, match="has no week 54"):
        Week.parse("2026-W54", SEOUL)


def test_figures_against_a_seeded_store(seeded: Store) -> None:
    report = build_report(seeded, W48)
    t, last = report.this, report.last
    assert (t["requests"], t["candidates"], t["requesters"]) == (4, 8, 3)
    assert (last["requests"], last["candidates"], last["requesters"]) == (2, 3, 2)  # Sunday 23:59 KST is W47
    assert t["reaction_rate"] == 0.375  # 3 of 8: the 👍 that was taken back does not count
    assert t["win_rate"] == 0.5 and last["win_rate"] == 0.5
    assert t["win_rate_by"]["age_group"] == {
        "20대": {"requests": 2, "won": 1, "rate": 0.5},
        "50대": {"requests": 2, "won": 1, "rate": 0.5},
    }
    assert t["win_rate_by"]["channel"]["push"] == {"requests": 1, "won": 0, "rate": 0.0}
    assert t["win_rate_by"]["event"]["추석"]["won"] == 1
    assert (t["register_match"], t["flagged"], t["ungrounded"]) == (0.875, 0.25, 0.125)
    assert t["flag_codes"] == {"absolute": 1, "ungrounded": 1}
    assert [c["text"] for c in t["top_copies"]] == ["정성을 담았습니다.", "여름엔 린넨이죠!"]  # 2 🏆 before 1 🏆 + 1 👍
    assert (
        t["edits"]
        == [
            {
                "original": "오늘만 20% 할인해요",
                "edited": "오늘 하루, 20% 할인해요",
                "product": t["edits"][0]["product"],
                "age_group": "20대",
            }
        ]
        and t["edit_count"] == 1
    )
    assert report.delta("requests") == 2 and report.delta("reaction_rate") == pytest.approx(0.375 - 1 / 3, abs=1e-4)
    assert [w["requests"] for w in report.trend][-2:] == [2, 4] and len(report.trend) == 8
    assert report.run is not None and report.run["result_version"] == "v0002"


def test_charts_are_pngs_with_hangul_and_no_missing_glyph(seeded: Store, tmp_path: Path) -> None:
    import matplotlib
    from matplotlib.font_manager import FontProperties, findfont

    report = build_report(seeded, W48)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts = draw_charts(report, tmp_path)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
    assert "Nanum" in findfont(FontProperties(family=matplotlib.rcParams["font.family"]))
    assert set(charts) == {"trend", "age", "loss"}
    for chart in charts.values():
        data = Path(chart["path"]).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
        assert chart["alt"] and any("가" <= ch <= "힣" for ch in chart["alt"] + chart["title"])


def test_markdown_report_and_the_cli(seeded: Store, tmp_path: Path, home: Path) -> None:
    path = write_report(build_report(seeded, W48), tmp_path / "out")
    text = path.read_text("utf-8")
    for expected in (
        "# copybot 주간 리포트 2026-W48",
        "| 요청 | 4 | 2 | +2 |",
        "| 우승 비율 (우승작이 나온 요청) | 50% | 50% | +0%p |",
        "| 브리프에 없는 수치·혜택이 남은 후보 | 12% | 0% | +12%p |",
        "새 모델 v0002이(가) 검증을 통과해 적용됐어요.",
        "| 피드백 검증 손실 (낮을수록 좋음) | 2.500 | 2.300 | -0.200 |",
        "| 샘플링 온도 배율 (다양성 보정) | 1.000 | 1.125 | +0.125 |",
        "학습 데이터: sft_feedback 12",
        "## 연령대별 우승 비율",
        "1. 정성을 담았습니다.",
        "오늘만 20% 할인해요 → **오늘 하루, 20% 할인해요**",
        "](trend.png)",
        "](loss_curves.png)",
    ):
        assert expected in text, expected

    db = seeded.db.conn.execute("pragma database_list").fetchone()[2]
    out = run(
        "report", "--week", "2026-W48", "--out", str(tmp_path / "cli"), env_home=home, extra_env={"COPYBOT_DB": db}
    )
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stdout and (tmp_path / "cli" / "report.md").is_file()
    assert (tmp_path / "cli" / "win_rate_by_age.png").read_bytes().startswith(PNG)
    bad = run("report", "--week", "week 48", env_home=home)
    assert bad.returncode == 2 and "write it like 2026-W48" in bad.stderr


def test_the_report_shows_the_trial_the_retrain_started_and_the_rewards_auroc(seeded: Store, tmp_path: Path) -> None:
    from bot.report.publish import report_blocks

    run_id = seeded.start_training_run(trigger="schedule", base_model="starter", parent_version="v0002")
    seeded.add_model_version(version="v0003", base_model="starter", adapter_path="/a/v0003")
    seeded.finish_training_run(
        run_id,
        status="succeeded",
        result_version="v0003",
        gate_decision="trial",
        metrics={
            "old": {},
            "new": {},
            "reward": {"auroc_new": 0.81, "auroc_current": 0.74, "chosen": "new", "heldout": 40},
        },
    )
    seeded.start_trial(challenger="v0003", champion="v0002", rule=TrialRule().as_dict(), training_run_id=run_id)
    report = build_report(seeded, W48)
    text = write_report(report, tmp_path / "out").read_text("utf-8")
    assert (
        "새 모델 v0003이(가) 안전 검사를 통과해, 실제 요청에서 지금 모델과 나눠 쓰며 비교하는 시험을 시작했어요."
        in text
    )
    assert "보상 모델(반응 예측): 보류한 반응 40개 기준 AUROC 0.81 (지금 쓰던 보상 모델 0.74) → 새 보상 모델로" in text
    assert (
        "## 새 모델 시험\n\n새 모델 v0003을(를) 지금 모델 v0002과(와) 실제 요청에서 비교하고 있어요. 아직 평가된"
        in text
    )
    sections = [b["text"]["text"] for b in report_blocks(report) if b["type"] == "section" and "text" in b]
    assert any(t.startswith("*새 모델 시험*\n새 모델 v0003") for t in sections)
    assert any("AUROC 0.81" in t for t in sections)
    # once the rule has decided, the week's report says how it ended
    seeded.finish_trial(
        seeded.running_trial()["id"], promote=False, reason="no clear difference", tally={"rated": 30, "p_better": 0.61}
    )
    ended = build_report(seeded, W48.shifted(1))
    assert (
        ended.trial
        == "새 모델 v0003은(는) 실제 요청에서 더 낫다는 근거가 없어 내렸어요 (평가된 요청 30건, 더 나을 확률 61%)."
    )
    waited = seeded.start_training_run(trigger="schedule", base_model="starter")
    seeded.finish_training_run(waited, status="skipped", error="a live trial is still deciding (trial 1: …)")
    assert "시험이 아직 진행 중이라 재학습은" in retrain_sentence(
        build_report(seeded, W48.shifted(1), run=seeded.latest_training_run())
    )


def test_posting_uses_the_whole_files_upload_v2_sequence(seeded: Store, tmp_path: Path, fake_slack: FakeSlack) -> None:
    client = WebClient(token="xoxb-test", base_url=fake_slack.url)
    report = build_report(seeded, W48)
    assert post_report(client, "CREPORT", report, tmp_path / "r") is True
    [summary] = fake_slack.of("chat.postMessage")
    assert summary["channel"] == "CREPORT" and summary["text"] == "copybot 주간 리포트 2026-W48"
    assert "새 모델 v0002" in str(summary["blocks"])
    urls = fake_slack.of("files.getUploadURLExternal")
    assert sorted(u["filename"] for u in urls) == ["loss_curves.png", "trend.png", "win_rate_by_age.png"]
    assert all(u["alt_txt"] and int(u["length"]) > 5000 for u in urls)
    assert sorted(len(b) for b in fake_slack.uploads.values()) == sorted(int(u["length"]) for u in urls)
    assert all(b.startswith(PNG) for b in fake_slack.uploads.values())
    [done] = fake_slack.of("files.completeUploadExternal")
    assert done["channel_id"] == "CREPORT"
    assert "연령대별 우승 비율" in [f["title"] for f in json.loads(done["files"])]
    methods = fake_slack.methods()
    assert (
        methods.index("files.getUploadURLExternal")
        < methods.index("upload")
        < methods.index("files.completeUploadExternal")
    )


@pytest.mark.parametrize(
    ("error", "words"), [("channel_not_found", "check COPYBOT_REPORT_CHANNEL"), ("not_in_channel", "/invite @copybot")]
)
def test_a_wrong_channel_is_logged_exactly_and_the_report_kept(
    seeded: Store, tmp_path: Path, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, error: str, words: str
) -> None:
    fake_slack.fail_next("chat.postMessage", error)
    client = WebClient(token="xoxb-test", base_url=fake_slack.url)
    with caplog.at_level(logging.ERROR):
        assert post_report(client, "CWRONG", build_report(seeded, W48), tmp_path / "r") is False
    [line] = [r.getMessage() for r in caplog.records if "not posted" in r.getMessage()]
    assert "CWRONG" in line and words in line and str(tmp_path / "r" / "report.md") in line
    assert (tmp_path / "r" / "report.md").is_file() and fake_slack.of("files.getUploadURLExternal") == []


def test_without_a_report_channel_the_log_says_so_and_the_report_is_kept(
    seeded: Store, tmp_path: Path, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    client = WebClient(token="xoxb-test", base_url=fake_slack.url)
    with caplog.at_level(logging.WARNING):
        assert post_report(client, None, build_report(seeded, W48), tmp_path / "r") is False
    assert any("COPYBOT_REPORT_CHANNEL is not set" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "r" / "report.md").is_file() and fake_slack.calls == []


def test_the_best_real_performers_are_those_whose_results_arrived_that_week(seeded: Store, tmp_path: Path) -> None:
    from bot.report.publish import report_blocks

    ids = {c["text"]: c["id"] for r in seeded.rated_requests() for c in r["candidates"]}
    utc = ZoneInfo("UTC")
    seeded._clock = lambda: W48.start.astimezone(utc) - timedelta(days=2)  # type: ignore[method-assign]
    seeded.record_outcomes(
        [
            {
                "candidate_id": ids["지난주 카피 하나"],
                "text": "지난주 카피 하나",
                "sends": 100,
                "clicks": 9,
                "ctr": 0.09,
                "date": "2026-11-18",
            }
        ],
        source="w47.csv",
    )
    seeded._clock = lambda: W48.start.astimezone(utc) + timedelta(days=3)  # type: ignore[method-assign]
    seeded.record_outcomes(
        [
            # 1 of 10 is a higher CTR than 400 of 5,000, but a lucky click away from 0: ranked by the interval's
            # lower end (1.8 % against 7.3 %); a CTR that came without counts comes after counted ones
            {
                "candidate_id": ids["여름엔 린넨이죠!"],
                "text": "여름엔 린넨이죠!",
                "sends": 10,
                "clicks": 1,
                "ctr": 0.1,
                "date": "2026-11-24",
            },
            {
                "candidate_id": ids["정성을 담았습니다."],
                "text": "정성을 담았습니다.",
                "sends": 5000,
                "clicks": 400,
                "ctr": 0.08,
                "conversions": 31,
                "date": "2026-11-25",
            },
            {
                "candidate_id": ids["오늘만 20% 할인해요"],
                "text": "오늘 하루, 20% 할인해요",
                "ctr": 0.06,
                "date": "2026-11-25",
            },
        ],
        source="w48.csv",
    )
    report = build_report(seeded, W48)
    best = report.this["best_performers"]
    assert [b["text"] for b in best] == ["정성을 담았습니다.", "여름엔 린넨이죠!", "오늘 하루, 20% 할인해요"]
    assert [b["text"] for b in report.last["best_performers"]] == ["지난주 카피 하나"]
    text = write_report(report, tmp_path / "out").read_text("utf-8")
    assert "## 실제 성과가 좋았던 카피" in text
    assert "1. 정성을 담았습니다. — CTR 8.00% (400/5,000) · 전환 31건 (상품" in text
    blocks = json.dumps(report_blocks(report), ensure_ascii=False)
    assert "실제 성과가 좋았던 카피" in blocks and "CTR 10.00% (1/10)" in blocks


def test_text_from_people_is_literal_in_the_reports_markdown(seeded: Store, tmp_path: Path) -> None:
    """An edit is typed by anyone in the channel: it must not load an image, inject HTML or break a table."""
    [candidate] = [c for c in seeded.db.table("candidates").rows_where("text = ?", ["지금 만나 보세요"])]
    edit = seeded.record_edit(
        candidate_id=candidate["id"],
        user_id="U5",
        edited_text="![](http://evil.example/pixel.png) <img src=x onerror=alert(1)> a|b **굵게**",
    )
    [[when]] = seeded.db.execute("select min(created_at) from edits").fetchall()  # in the seeded week
    seeded.db.execute("update edits set created_at = ? where id = ?", [when, edit])
    seeded.db.conn.commit()
    text = write_report(build_report(seeded, W48), tmp_path / "out").read_text("utf-8")
    line = next(li for li in text.splitlines() if "evil.example" in li)
    assert "![](" not in line and "<img" not in line and "a|b" not in line and "**굵게**" not in line
    assert r"!\[\](http://evil.example/pixel.png) &lt;img src=x onerror=alert(1)&gt; a\|b \*\*굵게\*\*" in line


def test_the_report_and_the_retrain_say_why_training_stopped_early(seeded: Store, tmp_path: Path) -> None:
    from bot.learning.retrain import RetrainOutcome, outcome_text

    why = "SFT stopped at step 40 of 120: corpus loss 2.512 rose past 2.400 + the forgetting budget 0.08; kept step 30"
    run_id = seeded.start_training_run(trigger="schedule", base_model="gemma-3-270m", parent_version="v0002")
    seeded.finish_training_run(
        run_id,
        status="succeeded",
        result_version="v0003",
        gate_decision="kept",
        metrics={"old": {}, "new": {}, "losses": {"train": [[1.0, 2.9]], "stopped": why}},
    )
    text = write_report(build_report(seeded, W48, run=seeded.latest_training_run()), tmp_path / "out").read_text()
    assert f"학습은 기존 카피를 잊기 시작해 일찍 멈췄고, 그 전의 가장 좋은 상태를 남겼어요. ({why})" in text
    shown = outcome_text(RetrainOutcome("kept", "kept v0002", losses={"stopped": why}))
    assert f"training stopped early: {why}" in shown
