"""Corpus import from real files: encodings, Korean headers, Excel, bad rows, re-imports, near-duplicates,
masking and the stable split."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bot.corpus_io import STARTER_MAPPING, language_checks, starter_corpus_path
from storage import Store
from storage.corpus import ImportReport, clean_text, content_hash, prepare_import, split_for
from storage.corpus_files import CorpusFileError

HEADER = "카피,제품,카테고리,행사,연령,채널,성과,날짜"
ROWS = [
    "여름엔 역시 린넨이죠,린넨 셔츠,fashion,여름 세일,20대,배너,3.2%,2025-06-01",
    "정성을 담은 한우를 준비했습니다,한우 세트,food,추석 선물,50대 이상,문자,1.1,2025.09.01",
    "가볍게 떠나요 제주로,캐리어,travel,여름 휴가,30s,push,,20250710",
]


def _import(store: Store, path: Path, **kw: object) -> tuple[list[dict], ImportReport]:
    return prepare_import(
        path, checks=language_checks(), source=kw.pop("source", path.stem), existing=store.stored_corpus_rows, **kw
    )  # type: ignore[arg-type]


def _write_csv(path: Path, lines: list[str], encoding: str) -> Path:
    path.write_bytes("\r\n".join(lines).encode(encoding))
    return path


@pytest.mark.parametrize(("encoding", "label"), [("cp949", "cp949"), ("utf-8-sig", "utf-8"), ("utf-8", "utf-8")])
def test_csv_encodings_and_korean_headers(store: Store, tmp_path: Path, encoding: str, label: str) -> None:
    path = _write_csv(tmp_path / "copies.csv", [HEADER, *ROWS], encoding)
    rows, report = _import(store, path)
    assert report.detected == f"csv ({label})"
    assert report.bad == [] and len(rows) == 3
    first = rows[0]
    assert (first["text"], first["product"], first["age_group"], first["channel"]) == (
        "여름엔 역시 린넨이죠",
        "린넨 셔츠",
        "20대",
        "banner",
    )
    assert (first["score"], first["date"], first["register_detected"]) == (3.2, "2025-06-01", "polite")
    assert rows[1]["age_group"] == "50대" and rows[1]["channel"] == "sms" and rows[1]["date"] == "2025-09-01"
    assert rows[2]["score"] is None and rows[2]["date"] == "2025-07-10"
    assert store.add_corpus_rows(rows) == 3


def test_a_cp949_csv_names_its_measure_and_the_measure_is_kept(store: Store, tmp_path: Path) -> None:
    lines = ["카피,제품,연령,채널,클릭률(%),전환율", "여름엔 역시 린넨이죠,린넨 셔츠,20대,배너,3.2,0.4",
             "가볍게 떠나요 제주로,캐리어,30대,push,,"]  # fmt: skip
    rows, report = _import(store, _write_csv(tmp_path / "results.csv", lines, "cp949"))
    assert (report.score_column, report.score_measure, report.unused_score_columns) == ("클릭률(%)", "ctr", ["전환율"])
    assert [(r["score"], r["score_measure"]) for r in rows] == [(3.2, "ctr"), (None, "")]
    # --map picks the other measure, and its name says what it is
    rows, report = _import(store, tmp_path / "results.csv", overrides={"전환율": "score"})
    assert (report.score_measure, rows[0]["score"], rows[0]["score_measure"]) == ("conversion_rate", 0.4,
                                                                                  "conversion_rate")  # fmt: skip


@pytest.mark.parametrize(
    ("header", "measure"),
    [("CTR", "ctr"), ("Click-through rate (%)", "ctr"), ("CVR", "conversion_rate"), ("반응률", "response_rate"),
     ("오픈율 [%]", "open_rate"), ("Open_Rate", "open_rate"), ("성과", "score"), ("Score", "score")],
)  # fmt: skip
def test_an_xlsx_score_column_is_read_under_the_names_teams_use(
    store: Store, tmp_path: Path, header: str, measure: str
) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["카피", "제품", "연령", header])
    book.active.append(["새 학기, 가볍게 시작해요", "백팩", "10대", 2.5])
    book.save(tmp_path / "scored.xlsx")
    rows, report = _import(store, tmp_path / "scored.xlsx")
    assert (report.score_column, rows[0]["score"], rows[0]["score_measure"]) == (header, 2.5, measure)
    store.add_corpus_rows(rows)
    assert store.corpus_rows()[0]["score_measure"] == measure


def test_xlsx_and_jsonl(store: Store, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["문구", "상품", "타깃", "매체", "반응"])
    sheet.append(["새 학기, 가볍게 시작해요", "백팩", "10대", "sns", 0.8])
    sheet.append(["품격 있는 선물을 드립니다", "시계", "60대+", "print", None])
    book.save(tmp_path / "copies.xlsx")
    rows, report = _import(store, tmp_path / "copies.xlsx")
    assert report.detected == "xlsx" and [r["product"] for r in rows] == ["백팩", "시계"]
    assert rows[0]["score"] == 0.8 and rows[1]["register_detected"] == "formal"
    assert (rows[0]["score_measure"], report.score_measure) == ("score", "score")  # 반응: a generic score

    jsonl = tmp_path / "copies.jsonl"
    jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"copy": "오늘만 특별가예요", "product": "수분 크림", "age": "30대"},
        {"copy": "같이 가자, 캠핑!", "product": "텐트", "age": "20s", "register": "polite"},
    ]), "utf-8")  # fmt: skip
    rows, report = _import(store, jsonl)
    assert [r["age_group"] for r in rows] == ["30대", "20대"]
    assert report.register_disagreements == 1  # labelled polite, reads as casual


def test_bad_rows_are_named_by_line_and_block_the_import(store: Store, tmp_path: Path) -> None:
    lines = [
        HEADER,
        ROWS[0],
        ",빈 카피,fashion,세일,20대,sns,,",
        "나이를 모르는 카피예요,셔츠,fashion,세일,9살,sns,,",
        "가" * 501 + ",긴 카피,fashion,세일,20대,sns,,",
        "날짜가 이상해요,셔츠,fashion,세일,20대,sns,,2025-13-45",
        "점수가 이상해요,셔츠,fashion,세일,20대,sns,high,",
        "채널이 이상해요,셔츠,fashion,세일,20대,fax,,",
    ]
    rows, report = _import(store, _write_csv(tmp_path / "bad.csv", lines, "utf-8"))
    reasons = dict(report.bad)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8]
    assert reasons[3] == "empty copy"
    assert "unknown age group '9살'" in reasons[4]
    assert "too long (501 characters" in reasons[5]
    assert "unreadable date '2025-13-45'" in reasons[6]
    assert "unreadable score 'high'" in reasons[7]
    assert "unknown channel 'fax'" in reasons[8]
    assert len(rows) == 1  # the valid row is prepared; the CLI decides whether to write it


def test_reimport_adds_nothing_and_near_duplicates_merge(store: Store, tmp_path: Path) -> None:
    lines = [
        HEADER,
        *ROWS,
        '"여름엔   역시, 린넨이죠!!",린넨 셔츠,fashion,여름 세일,20대,sns,4.0,',
        "ｓａｌｅ 시작,셔츠,f,e,20대,sns,,",
        "SALE 시작!,셔츠,f,e,20대,sns,,",
    ]
    path = _write_csv(tmp_path / "dups.csv", lines, "utf-8")
    rows, report = _import(store, path)
    assert report.merged == [(5, 2), (7, 6)]
    assert len(rows) == 4
    assert store.add_corpus_rows(rows) == 4
    again, report2 = _import(store, path)
    assert again == [] and report2.already_present == 4
    assert store.add_corpus_rows(again) == 0
    assert store.counts()["corpus"] == 4


def test_cleaning_masks_contacts_and_strips_markup() -> None:
    text, phones, emails = clean_text(
        "<b>**봄 세일**</b> 문의 010-1234-5678, 02 555 1234, 1588-1234 &amp; sale@shop.co.kr"
    )
    assert text == "봄 세일 문의 [전화번호], [전화번호], [전화번호] & [이메일]"
    assert (phones, emails) == (3, 1)
    assert clean_text("# 제목\n- [링크](https://x.io) 문구")[0] == "제목 링크 문구"
    assert clean_text("e\u0301")[0] == "\u00e9"


def test_masking_is_counted_in_the_report(store: Store, tmp_path: Path) -> None:
    lines = ["카피,연령", "문의는 010-9876-5432 로 주세요,30대", "help@copy.kr 로 연락 주세요,30대"]
    rows, report = _import(store, _write_csv(tmp_path / "mask.csv", lines, "utf-8"))
    assert (report.masked_phones, report.masked_emails) == (1, 1)
    assert "010" not in rows[0]["text"] and "@" not in rows[1]["text"]


def test_the_split_is_decided_by_the_hash_and_stable(store: Store, tmp_path: Path) -> None:
    assert split_for(content_hash("여름엔 린넨이죠")) == split_for(content_hash("여름엔, 린넨이죠!"))
    path = _write_csv(tmp_path / "a.csv", [HEADER, *ROWS], "utf-8")
    first = {r["content_hash"]: r["split"] for r in _import(store, path)[0]}
    second = {r["content_hash"]: r["split"] for r in _import(store, path)[0]}
    assert first == second
    rows, _ = prepare_import(
        starter_corpus_path(),
        checks=language_checks(),
        source="starter",
        overrides=STARTER_MAPPING,
        existing=lambda hashes: {},
    )
    shares = {s: sum(r["split"] == s for r in rows) / len(rows) for s in ("train", "validation", "test")}
    assert 0.75 < shares["train"] < 0.85 and 0.06 < shares["validation"] < 0.14 and 0.06 < shares["test"] < 0.14
    for age in ("20대", "60대+"):
        stratum = [r for r in rows if r["age_group"] == age]
        assert 0.65 < sum(r["split"] == "train" for r in stratum) / len(stratum) < 0.95


def test_the_starter_corpus_goes_through_the_same_path(store: Store) -> None:
    rows, report = prepare_import(
        starter_corpus_path(),
        checks=language_checks(),
        source="starter",
        overrides=STARTER_MAPPING,
        existing=store.stored_corpus_rows,
    )
    assert (report.rows_read, report.bad, report.merged, report.register_disagreements) == (936, [], [], 0)
    assert store.add_corpus_rows(rows) == 936
    stats = store.corpus_stats()
    assert stats["rows"] == 936 and stats["source"] == {"starter": 936}
    assert set(stats["split"]) == {"train", "validation", "test"}
    assert stats["length"]["p50"] > 0 and stats["scored_share"] == 0.0


def test_unreadable_files_and_headers_are_clear(store: Store, tmp_path: Path) -> None:
    (tmp_path / "x.pdf").write_text("x")
    with pytest.raises(CorpusFileError, match=r"unsupported file type '\.pdf'"):
        _import(store, tmp_path / "x.pdf")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"copy\n\xff\xfe\xfa\xfb\n")
    with pytest.raises(CorpusFileError, match="neither UTF-8 nor CP949"):
        _import(store, latin)
    no_copy = _write_csv(tmp_path / "nocopy.csv", ["제품,연령", "셔츠,20대"], "utf-8")
    with pytest.raises(ValueError, match="no copy column"):
        _import(store, no_copy)
    mapped = _write_csv(tmp_path / "mapped.csv", ["헤드라인,연령", "여름 세일 시작해요,20대"], "utf-8")
    rows, _ = _import(store, mapped, overrides={"헤드라인": "text"})
    assert rows[0]["text"] == "여름 세일 시작해요"


def test_a_5_mb_line_or_cell_is_refused_in_seconds_by_its_line(store: Store, tmp_path: Path) -> None:
    """Cleaning runs in linear time and only after the length check (issue 40): a 5 MB JSONL line once ran for
    minutes in the e-mail mask, and a 1.7M-character CSV field ended in a csv.Error traceback."""
    huge = "a" * 5_000_000
    jsonl = tmp_path / "huge.jsonl"
    jsonl.write_text(json.dumps({"카피": huge, "연령": "20대"}) + "\n", encoding="utf-8")
    started = time.monotonic()
    rows, report = _import(store, jsonl)
    assert time.monotonic() - started < 5  # the Korean analyser is not even loaded: no row is left to read
    assert rows == [] and report.bad == [(1, "copy too long (5,000,000 characters, at most 500)")]

    # a long cell among the rows searched for the header is data, not a header to be split into words
    long_cell = _write_csv(tmp_path / "long.csv", ["카피,연령", f"{'명' * 100_000},20대"], "utf-8")
    started = time.monotonic()
    _, report = _import(store, long_cell)
    assert time.monotonic() - started < 5 and report.bad == [(2, "copy too long (100,000 characters, at most 500)")]

    csv_file = _write_csv(
        tmp_path / "huge.csv", ["카피,연령", "좋은 카피예요,20대", f'"{"가" * 1_700_000}",20대'], "utf-8"
    )
    rows, report = _import(store, csv_file)
    assert [r["text"] for r in rows] == ["좋은 카피예요"]
    [(line, reason)] = report.bad
    assert line == 3 and reason.startswith("cannot be read as CSV (field larger than field limit")


@pytest.mark.parametrize("size", [5_000, 50_000, 500_000])
def test_cleaning_takes_linear_time_on_what_once_backtracked(size: int) -> None:
    for text in ("a" * size, "a." * size, "[" * size, "\n" * size + "# 제목", "<" * size, "0" * size):
        started = time.monotonic()
        clean_text(text)
        assert time.monotonic() - started < 2  # quadratic took 0.99 s at 20k and hours at 5 MB
