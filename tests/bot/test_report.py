"""The weekly report: figures against a seeded store, Korean charts, Markdown, `copybot report`, and the Slack post
through the fake server's whole files_upload_v2 sequence."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from slack_sdk import WebClient

from bot.report.build import build_report
from bot.report.charts import draw_charts
from bot.report.publish import post_report, write_report
from bot.report.weeks import Week
from storage import Store
from tests.bot.report_data import seed_two_weeks
from tests.bot.test_cli import run
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
    store.finish_training_run(run_id, status="succeeded", result_version="v0002", gate_decision="promoted",
                              gate_reasons=["ok: preference: the chosen copy gained on 80% of held-out pairs"],
                              dataset_summary={"counts": {"sft_feedback": 12, "sft_replay": 12, "pairs": 9}},
                              metrics={"old": {"val_loss": 2.5, "distinct_2": 0.8, "temperature_scale": 1.0},
                                       "new": {"val_loss": 2.3, "distinct_2": 0.79, "temperature_scale": 1.125},
                                       "losses": {"train": [[1.0, 2.9], [2.0, 2.4]],
                                       "eval": [[1.0, 2.6], [2.0, 2.5]]}})  # fmt: skip
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
    assert t["win_rate_by"]["age_group"] == {"20대": {"requests": 2, "won": 1, "rate": 0.5},
                                             "50대": {"requests": 2, "won": 1, "rate": 0.5}}  # fmt: skip
    assert t["win_rate_by"]["channel"]["push"] == {"requests": 1, "won": 0, "rate": 0.0}
    assert t["win_rate_by"]["event"]["추석"]["won"] == 1
    assert (t["register_match"], t["flagged"]) == (0.875, 0.125)
    assert [c["text"] for c in t["top_copies"]] == ["정성을 담았습니다.", "여름엔 린넨이죠!"]  # 2 🏆 before 1 🏆 + 1 👍
    assert t["edits"] == [{"original": "오늘만 20% 할인해요", "edited": "오늘 하루, 20% 할인해요", "product": t["edits"][0]["product"],
                           "age_group": "20대"}] and t["edit_count"] == 1  # fmt: skip
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
    for expected in ("# copybot 주간 리포트 2026-W48", "| 요청 | 4 | 2 | +2 |", "| 우승 비율 (우승작이 나온 요청) | 50% | 50% | +0%p |",
                     "새 모델 v0002이(가) 검증을 통과해 적용됐어요.", "| 피드백 검증 손실 (낮을수록 좋음) | 2.500 | 2.300 | -0.200 |",
                     "| 샘플링 온도 배율 (다양성 보정) | 1.000 | 1.125 | +0.125 |",
                     "학습 데이터: sft_feedback 12", "## 연령대별 우승 비율", "1. 정성을 담았습니다.",
                     "오늘만 20% 할인해요 → **오늘 하루, 20% 할인해요**", "](trend.png)", "](loss_curves.png)"):  # fmt: skip
        assert expected in text, expected

    db = seeded.db.conn.execute("pragma database_list").fetchone()[2]
    out = run("report", "--week", "2026-W48", "--out", str(tmp_path / "cli"), env_home=home,
              extra_env={"COPYBOT_DB": db})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stdout and (tmp_path / "cli" / "report.md").is_file()
    assert (tmp_path / "cli" / "win_rate_by_age.png").read_bytes().startswith(PNG)
    bad = run("report", "--week", "week 48", env_home=home)
    assert bad.returncode == 2 and "write it like 2026-W48" in bad.stderr


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


@pytest.mark.parametrize(("error", "words"), [("channel_not_found", "check COPYBOT_REPORT_CHANNEL"),
                                              ("not_in_channel", "/invite @copybot")])  # fmt: skip
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
