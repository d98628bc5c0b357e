"""Real exports as a team has them (issue 36): headers as people write them, a title row above the header, every
column accounted for, the rows missing a field counted, a re-import that completes them, and a retrain that says
which column it lacked. In process through click's runner (tests/cli.py), with a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from storage import Store
from tests.cli import run

HEADER = ["카피", "상품", "행사", "타깃 연령", "매체", "CTR"]
OPENINGS = ("지금 바로 만나보세요", "여름을 시원하게 보내요", "가볍게 챙겨 가세요", "특별한 가격으로 준비했어요")


def copybot(*args: str) -> subprocess.CompletedProcess[str]:
    return run(*args, env_home=Path(os.environ["COPYBOT_HOME"]))  # the `home` fixture's


def _archive_rows(briefs: int = 80) -> list[list[str]]:
    """Four copies per brief (320 for 80 briefs), the first opening doing best, as a team's CTR export."""
    rows = []
    for b in range(briefs):
        for i, opening in enumerate(OPENINGS):
            age = ("20대", "30대")[b % 2]
            rows.append([f"{opening} 상품{b} {i}", f"상품 {b}", "여름 세일", age, "sns", f"{4.0 - i + b / 100:.2f}"])
    return rows


def _csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "cp949", above: str = "") -> Path:
    lines = [above, ""] if above else []
    lines += [",".join(header), *(",".join(r) for r in rows)]
    path.write_bytes("\r\n".join(lines).encode(encoding))
    return path


def _xlsx(path: Path, header: list[str], rows: list[list[str]], above: str = "") -> Path:
    from openpyxl import Workbook

    book = Workbook()
    if above:
        book.active.append([above])
        book.active.append([])
    book.active.append(header)
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("타깃 연령", "age_group"),
        ("대상 연령", "age_group"),
        ("연령대(타깃)", "age_group"),
        ("광고 카피", "text"),
        ("카피 문구", "text"),
        ("매체명", "channel"),
        ("상품명(국문)", "product"),
        ("캠페인명", "event"),
        ("CTR(%)", "score"),
    ],
)
@pytest.mark.parametrize("kind", ["utf-8", "cp949", "xlsx"])
def test_headers_as_people_write_them_map_to_their_field(
    home: Path, tmp_path: Path, header: str, field: str, kind: str
) -> None:
    base = {"text": "카피", "product": "상품", "event": "행사", "age_group": "연령", "channel": "채널", "score": "성과"}
    names = [header if f == field else name for f, name in base.items()]
    rows = [["여름엔 역시 린넨이죠", "린넨 셔츠", "여름 세일", "20대", "sns", "3.2"]]
    path = (
        _xlsx(tmp_path / "team.xlsx", names, rows)
        if kind == "xlsx"
        else _csv(tmp_path / "team.csv", names, rows, encoding=kind)
    )
    result = copybot("corpus", "import", str(path), "--json", "--dry-run")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    use = next(c for c in report["columns"] if c["column"] == header)
    assert use["field"] == field
    assert all(c["field"] for c in report["columns"])  # every column used, none silently dropped
    assert report["missing"] == {}


@pytest.mark.parametrize(
    ("header", "hint"),
    [
        ("상품 카피", "--map '상품 카피=copy' or --map '상품 카피=product'"),
        ("타깃 매체", "--map '타깃 매체=age' or --map '타깃 매체=channel'"),
    ],
)
@pytest.mark.parametrize("kind", ["cp949", "xlsx"])
def test_a_header_that_could_be_two_fields_is_refused_with_the_map_that_settles_it(
    home: Path, tmp_path: Path, header: str, hint: str, kind: str
) -> None:
    names = ["카피", "연령", header]
    rows = [["여름엔 역시 린넨이죠", "20대", "sns"]]
    path = _xlsx(tmp_path / "t.xlsx", names, rows) if kind == "xlsx" else _csv(tmp_path / "t.csv", names, rows, kind)
    refused = copybot("corpus", "import", str(path))
    assert refused.returncode == 2 and hint in refused.stderr
    assert Store.open(home / "copybot.db").counts()["corpus"] == 0
    chosen = hint.split(" or ")[-1].removeprefix("--map ").strip("'")
    settled = copybot("corpus", "import", str(path), "--map", chosen)
    assert settled.returncode == 0, settled.stderr
    assert f"{header} -> {chosen.split('=')[1]}" in settled.stdout


@pytest.mark.parametrize("kind", ["cp949", "xlsx"])
def test_a_title_row_and_blank_rows_above_the_header_are_skipped_and_the_header_row_named(
    home: Path, tmp_path: Path, kind: str
) -> None:
    rows = _archive_rows(2)
    title = "2025년 상반기 카피 성과"
    path = (
        _xlsx(tmp_path / "report.xlsx", HEADER, rows, above=title)
        if kind == "xlsx"
        else _csv(tmp_path / "report.csv", HEADER, rows, above=title)
    )
    result = copybot("corpus", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert "header on line 3" in result.stdout and "imported 8 row(s)" in result.stdout
    texts = {r["text"] for r in Store.open(home / "copybot.db").corpus_rows()}
    assert title not in texts and "카피" not in texts and len(texts) == 8


def test_every_column_is_reported_and_an_unused_one_that_looks_like_data_gets_its_map(
    home: Path, tmp_path: Path
) -> None:
    header = ["카피", "상품", "고객층", "매체", "CTR", "비고", "타깃 성별"]
    rows = [[r[0], r[1], r[3], r[4], r[5], "검수 완료", "여성"] for r in _archive_rows(3)]
    path = _csv(tmp_path / "export.csv", header, rows)
    text = copybot("corpus", "import", str(path), "--dry-run")
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert "  카피 -> copy" in out and "  CTR -> score (ctr)" in out and "  비고 -> not used" in out
    assert "고객층 -> not used: its values look like the age; to use it as the age: --map '고객층=age'" in out
    assert "타깃 성별 -> not used: its name mentions the age" in out
    assert (
        "missing age: 12 of 12 row(s) have none (needed for training prompts and for ranking copies among their peers)"
        in out
    )
    assert "missing event: 12 of 12" in out and "dry run: nothing was written" in out

    report = json.loads(copybot("corpus", "import", str(path), "--dry-run", "--json").stdout)  # JSON alone
    uses = {c["column"]: c for c in report["columns"]}
    assert [c["column"] for c in report["columns"]] == header
    assert uses["고객층"]["use"] == "none" and uses["고객층"]["suggest"] == "age_group"
    assert uses["고객층"]["hint"] == "--map '고객층=age'" and uses["비고"]["hint"] == ""
    assert report["missing"]["age_group"]["rows"] == 12 and report["missing"]["age_group"]["hint"]
    assert report["missing"]["event"]["rows"] == 12 and "channel" not in report["missing"]
    assert report["header_line"] == 1 and report["new"] == 12 and report["imported"] is False
    assert Store.open(home / "copybot.db").counts()["corpus"] == 0  # nothing written on --dry-run


def test_the_issues_export_retrain_names_the_unused_column_and_a_second_import_completes_it(
    home: Path, tmp_path: Path
) -> None:
    """The export of issue 36, with an age column copybot cannot read by its name: the retrain says so in terms of
    the file, and importing it again with the --map fills in the 320 rows it already has."""
    header = ["카피", "상품", "행사", "주요 고객", "매체", "CTR"]
    path = _csv(tmp_path / "archive.csv", header, _archive_rows(80))
    first = copybot("corpus", "import", str(path))
    assert first.returncode == 0 and "imported 320 row(s)" in first.stdout
    assert "missing age: 320 of 320 row(s)" in first.stdout and "--map '주요 고객=age'" in first.stdout

    stats = json.loads(copybot("corpus", "stats", "--json").stdout)
    assert stats["missing"]["age_group"]["rows"] == 320 and stats["missing"]["age_group"]["scored"] == 320
    [source] = stats["missing"]["age_group"]["sources"]
    assert (source["column"], source["hint"]) == ("주요 고객", "--map '주요 고객=age'")
    assert (
        "its column '주요 고객' was not used; import it again with --map '주요 고객=age'"
        in copybot("corpus", "stats").stdout
    )

    refused = json.loads(copybot("retrain", "--from-corpus", "--json").stdout)
    assert refused["status"] == "skipped"
    message = refused["message"]
    assert "320 scored copies, but none has an age group" in message
    assert "its column '주요 고객' was not used; import it again with --map '주요 고객=age'" in message
    assert "import more" not in message

    dry = copybot("corpus", "import", str(path), "--map", "주요 고객=age", "--dry-run")
    assert "would complete 320 row(s) already present (age 320)" in dry.stdout
    again = copybot("corpus", "import", str(path), "--map", "주요 고객=age", "--json")
    report = json.loads(again.stdout)
    assert (report["inserted"], report["already_present"], report["completed"]) == (0, 320, 320)
    assert report["completed_fields"] == {"age_group": 320} and report["missing"] == {}
    store = Store.open(home / "copybot.db")
    assert {r["age_group"] for r in store.corpus_rows()} == {"20대", "30대"}
    assert json.loads(copybot("corpus", "stats", "--json").stdout)["missing"]["age_group"]["rows"] == 0
    ready = json.loads(copybot("retrain", "--from-corpus", "--dry-run", "--json").stdout)
    assert ready["status"] == "dry-run" and ready["dataset"]["counts"]["pairs"] >= 10


def test_a_re_import_never_overwrites_a_value_and_fills_only_what_is_empty(home: Path, tmp_path: Path) -> None:
    rows = [["여름엔 역시 린넨이죠", "린넨 셔츠", "", "20대", "sns", ""]]
    assert copybot("corpus", "import", str(_csv(tmp_path / "a.csv", HEADER, rows))).returncode == 0
    changed = [["여름엔 역시 린넨이죠", "다른 상품", "여름 세일", "30대", "banner", "2.5"]]
    result = copybot("corpus", "import", str(_csv(tmp_path / "b.csv", HEADER, changed)))
    assert "completed 1 row(s) already present (event 1, score 1)" in result.stdout
    [row] = Store.open(home / "copybot.db").corpus_rows()
    assert (row["product"], row["age_group"], row["channel"]) == ("린넨 셔츠", "20대", "sns")  # kept
    assert (row["event"], row["score"], row["score_measure"]) == ("여름 세일", 2.5, "ctr")  # filled in


def test_duplicate_header_names_and_misaligned_rows_are_refused_by_line(home: Path, tmp_path: Path) -> None:
    # an export whose first 카피 column is empty: once the last silently won and the first read as "empty copy"
    twice = _csv(tmp_path / "twice.csv", ["카피", "연령", "카피"], [["", "20대", "b 카피예요"]])
    refused = copybot("corpus", "import", str(twice))
    assert refused.returncode == 2 and "columns ['카피', '카피 #3'] could each be the copy" in refused.stderr
    assert "--map '카피=copy'" in refused.stderr
    settled = copybot("corpus", "import", str(twice), "--map", "카피 #3=copy")
    assert settled.returncode == 0 and "카피 -> not used: the copy comes from '카피 #3'" in settled.stdout
    assert [r["text"] for r in Store.open(home / "copybot.db").corpus_rows()] == ["b 카피예요"]
    one = tmp_path / "one.csv"
    one.write_text("카피\n여름엔 린넨이죠\n시원하게, 가볍게 입어요\n", encoding="utf-8")
    bad = copybot("corpus", "import", str(one))
    assert bad.returncode == 1 and "line 3: 2 fields but the header has 1" in bad.stderr


def test_results_import_reads_headers_as_people_write_them_and_completes_a_missing_date(
    home: Path, tmp_path: Path
) -> None:
    store = Store.open(home / "copybot.db")
    request = store.record_request(
        {"product": "린넨 셔츠", "age_group": "20대", "channel": "sms", "n": 1}, source="cli"
    )
    [cid] = store.save_candidates(request, [{"text": "여름엔 린넨이죠"}], model_version="v1")
    title = "11월 캠페인 결과"
    path = _csv(
        tmp_path / "results.csv",
        ["후보 번호", "발송 건수", "클릭 수", "발송 날짜"],
        [[str(cid), "1000", "30", "2026-11-02"]],
        above=title,
    )
    refused = copybot("results", "import", str(path))  # 발송 날짜: the sends or the date?
    assert refused.returncode == 2 and "--map '발송 날짜=date'" in refused.stderr
    first = copybot("results", "import", str(path), "--map", "발송 날짜=none")
    assert first.returncode == 0, first.stderr
    assert "header on line 3" in first.stdout and "발송 날짜 -> not used: left out by --map" in first.stdout
    assert [(r["date"], r["clicks"]) for r in store.outcomes()] == [("", 30)]
    again = copybot("results", "import", str(path), "--map", "발송 날짜=date", "--json")
    report = json.loads(again.stdout)
    assert report["completed"] == 1 and report["new"] == 0 and report["header_line"] == 3
    assert {c["column"]: c["field"] for c in report["column_report"]}["발송 날짜"] == "date"
    assert [(r["date"], r["sends"], r["clicks"]) for r in store.outcomes()] == [("2026-11-02", 1000, 30)]
