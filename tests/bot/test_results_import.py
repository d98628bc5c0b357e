"""`copybot results import` as a person runs it, and what the imported results do: stats, the weekly report's
best real performers, and the retraining dataset."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bot.learning.retrain import rated_requests
from model.training.dataset import build_dataset
from storage import Store
from tests.cli import run

BRIEF = {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "20대", "channel": "sms", "n": 3}
TEXTS = ["여름엔 린넨이죠", "시원하게 입어요", "가볍게 입자"]


def copybot(home: Path, *args: str) -> subprocess.CompletedProcess:
    return run(*args, env_home=home)


@pytest.fixture
def written(home: Path) -> tuple[Store, list[list[int]]]:
    """Two finished requests of three candidates; the second request's first copy was edited by a person."""
    store = Store.open(home / "copybot.db")
    ids = []
    for k in range(2):
        request_id = store.record_request({**BRIEF, "product": f"린넨 셔츠 {k}"}, source="cli")
        ids.append(store.save_candidates(request_id, [{"text": f"{t} {k}"} for t in TEXTS], model_version="v1"))
    store.record_edit(candidate_id=ids[1][0], user_id="U1", edited_text="여름엔 역시 린넨 1")
    return store, ids


def _csv(path: Path, lines: list[str]) -> Path:
    path.write_bytes("\r\n".join(lines).encode("cp949"))  # as Korean Excel saves it
    return path


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(home: Path, tmp_path: Path, written) -> None:
    store, ids = written
    path = _csv(tmp_path / "결과.csv", [
        "후보 ID,카피,발송수,클릭수,CTR(%),발송일",
        f"{ids[0][0]},,10000,300,3.0,2026-11-02",
        ",시원하게 입어요 0,10000,120,,2026.11.02",
        "9999,,100,1,,2026-11-02",  # no such candidate
        f"{ids[0][1]},,100,150,,2026-11-02",  # more clicks than sends
        f"{ids[0][2]},,1000,30,9.0,2026-11-02",  # the CTR contradicts clicks/sends
        ",없는 카피,100,1,,",  # no candidate has this text
        f"{ids[0][0]},,500,5,,2026-11-02",  # the same candidate and date again
        f"{ids[1][2]},,,,,2026-11-03",  # no result at all
        f"{ids[1][1]},,100,1,,11월 3일",  # unreadable date
    ])  # fmt: skip
    out = copybot(home, "results", "import", str(path))
    assert out.returncode == 1
    for line, words in ((4, "there is no candidate 9999"), (5, "clicks (150) exceed sends (100)"),
                        (6, "CTR 9.00% disagrees with clicks/sends = 3.00%"), (7, "no candidate or edit has exactly"),
                        (8, f"candidate {ids[0][0]} on 2026-11-02 is already on line 2"), (9, "no result on this row"), (10, "unreadable date")):  # fmt: skip
        assert f"line {line}: {words}" in out.stderr, out.stderr
    assert "line 2:" not in out.stderr and "line 3:" not in out.stderr
    assert "nothing was imported" in out.stderr and "csv (cp949)" in out.stdout
    assert store.outcomes() == []


def test_a_good_file_is_imported_by_id_or_exact_text_and_a_corrected_file_replaces(
    home: Path, tmp_path: Path, written
) -> None:
    store, ids = written
    lines = [
        "후보 ID,카피,발송수,클릭수,CTR(%),전환수,발송일",
        f"{ids[0][0]},,10000,300,3.0,12,2026-11-02",
        ",시원하게  입어요 0,10000,120,,3,2026.11.02",  # exact text, whitespace runs aside
        ",여름엔 역시 린넨 1,2000,90,,,2026-11-09",
    ]  # a person's edit of candidate ids[1][0] went out
    path = _csv(tmp_path / "결과.csv", lines)
    dry = copybot(home, "results", "import", str(path), "--dry-run", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["new"] == 3 and store.outcomes() == []
    out = copybot(home, "results", "import", str(path))
    assert out.returncode == 0, out.stderr
    assert "imported 3 new result row(s), replaced 0" in out.stdout and "CTR read as percent" in out.stdout
    rows = {r["candidate_id"]: r for r in store.outcomes()}
    assert (rows[ids[0][0]]["ctr"], rows[ids[0][0]]["conversions"]) == (pytest.approx(0.03), 12)
    assert rows[ids[0][1]]["clicks"] == 120 and rows[ids[0][1]]["date"] == "2026-11-02"
    assert rows[ids[1][0]]["text"] == "여름엔 역시 린넨 1"  # what went out: the edit
    lines[1] = f"{ids[0][0]},,10000,320,,12,2026-11-02"
    again = copybot(home, "results", "import", str(_csv(tmp_path / "결과.csv", lines)), "--json")
    report = json.loads(again.stdout)
    assert (report["new"], report["updated"], report["imported"]) == (0, 3, True)
    assert {r["candidate_id"]: r["clicks"] for r in store.outcomes()}[ids[0][0]] == 320


def test_an_xlsx_with_fractional_ctrs_and_an_ambiguous_text(home: Path, tmp_path: Path, written) -> None:
    from openpyxl import Workbook

    store, ids = written
    request_id = store.record_request(BRIEF, source="cli")
    store.save_candidates(request_id, [{"text": "가볍게 입자 0"}], model_version="v1")  # same text as ids[0][2]
    book = Workbook()
    book.active.append(["카피", "클릭률", "날짜"])
    book.active.append(["여름엔 린넨이죠 0", 0.031, "2026-11-02"])
    book.active.append(["가볍게 입자 0", 0.02, "2026-11-02"])
    book.save(tmp_path / "results.xlsx")
    out = copybot(home, "results", "import", str(tmp_path / "results.xlsx"), "--json")
    report = json.loads(out.stdout)
    assert out.returncode == 1 and report["ctr_as_percent"] is False and not report["imported"]
    assert report["bad"] == [{"line": 3, "reason": f"2 candidates have exactly this copy (IDs {ids[0][2]}, "
                                                  f"{ids[0][2] + 4}); give the candidate ID"}]  # fmt: skip
    book.active.delete_rows(3)
    book.save(tmp_path / "results.xlsx")
    assert copybot(home, "results", "import", str(tmp_path / "results.xlsx")).returncode == 0
    assert [(r["candidate_id"], r["ctr"], r["sends"]) for r in store.outcomes()] == [(ids[0][0], 0.031, None)]


def test_a_file_without_a_copy_or_a_result_column_is_a_usage_error(home: Path, tmp_path: Path, written) -> None:
    out = copybot(home, "results", "import", str(_csv(tmp_path / "x.csv", ["제품,발송수", "셔츠,100"])))
    assert out.returncode == 2 and "no column names the copy" in out.stderr and "후보 ID" in out.stderr
    out = copybot(home, "results", "import", str(_csv(tmp_path / "y.csv", ["후보 ID,발송수", "1,100"])))
    assert out.returncode == 2 and "no result column" in out.stderr


def test_results_show_in_stats_and_reach_the_dataset(home: Path, tmp_path: Path, written) -> None:
    store, ids = written
    # in both A/B tests the second copy beat the first beyond noise; in the second, a person's edit of the first
    # copy went out, named by its text
    lines = [
        "후보 ID,카피,발송수,클릭수,발송일",
        f"{ids[0][0]},,5000,100,2026-11-02",
        f"{ids[0][1]},,5000,200,2026-11-02",
        ",여름엔 역시 린넨 1,5000,100,2026-11-02",
        f"{ids[1][1]},,5000,200,2026-11-02",
    ]
    assert copybot(home, "results", "import", str(_csv(tmp_path / "r.csv", lines))).returncode == 0
    figures = json.loads(copybot(home, "stats", "--json").stdout)
    assert (figures["copies_with_results"], figures["result_rows"]) == (4, 4)
    best = figures["best_performers"]
    assert [b["candidate_id"] for b in best[:2]] == [ids[0][1], ids[1][1]] and best[0]["ctr"] == 0.04
    text = copybot(home, "stats").stdout
    assert "best real performers:" in text and "CTR 4.00% (200/5,000)" in text and "시원하게 입어요 0" in text

    data = build_dataset(rated_requests(store), [], [], force=True)
    pairs = [(p["chosen"], p["rejected"]) for p in data.pairs + data.heldout_pairs]
    assert pairs.count(("시원하게 입어요 0", "여름엔 린넨이죠 0")) == 3  # the train request's pair, weighted
    assert ("시원하게 입어요 1", "여름엔 역시 린넨 1") in pairs  # held out: what went out was the edit
    assert data.summary["counts"]["outcome_pairs"] == 1


def test_a_pasted_framed_sms_names_the_copy_inside_it(home: Path, tmp_path: Path, written) -> None:
    store, _ = written
    request_id = store.record_request({**BRIEF, "n": 1}, source="cli")
    [cid] = store.save_candidates(request_id, [{"text": "린넨 셔츠 20% 할인해요.", "message":
                                                "(광고)현대백화점\n린넨 셔츠 20% 할인해요.\n무료수신거부 080-123-4567"}],
                                  model_version="v1")  # fmt: skip
    pasted = "(광고)현대백화점 린넨 셔츠 20% 할인해요. 무료수신거부 080-123-4567"  # as the sending tool exported it
    out = copybot(home, "results", "import", str(_csv(tmp_path / "sms.csv", ["카피,발송수,클릭수",
                                                                           f"{pasted},3000,45"])))  # fmt: skip
    assert out.returncode == 0, out.stderr
    [row] = store.outcomes()
    assert (row["candidate_id"], row["text"], row["ctr"]) == (cid, "린넨 셔츠 20% 할인해요.", 0.015)


def test_results_that_cannot_be_replaced_are_removed_by_their_file(home: Path, tmp_path: Path, written) -> None:
    store, ids = written
    undated = _csv(tmp_path / "첫 결과.csv", ["후보 ID,발송수,클릭수", f"{ids[0][0]},1000,30"])
    assert copybot(home, "results", "import", str(undated)).returncode == 0
    dated = _csv(tmp_path / "고친 결과.csv", ["후보 ID,발송수,클릭수,발송일", f"{ids[0][0]},1000,30,2026-11-02"])
    refused = copybot(home, "results", "import", str(dated))
    assert refused.returncode == 1 and "recorded without a date" in refused.stderr  # it would count twice
    dry = copybot(home, "results", "remove", "--source", "첫 결과.csv", "--dry-run")
    assert dry.returncode == 0 and "would remove 1 result row(s)" in dry.stdout and len(store.outcomes()) == 1
    assert copybot(home, "results", "remove", "--source", "첫 결과.csv").returncode == 0 and store.outcomes() == []
    assert copybot(home, "results", "import", str(dated)).returncode == 0
    assert [r["date"] for r in store.outcomes()] == ["2026-11-02"]
    unknown = copybot(home, "results", "remove", "--source", "없는 파일.csv")
    assert unknown.returncode == 2 and "no result rows came from" in unknown.stderr
