"""Property tests (hypothesis): the `/copy` parser, the register detector and the corpus importer never crash; for
any text they return a result or raise their own clear, Korean- or English-worded error."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.corpus_io import language_checks
from bot.slack.parsing import CommandParseError, parse_command
from model.errors import BriefError
from model.writing.brief import Brief
from model.writing.tone import REGISTERS, detect_register
from storage.corpus import prepare_import
from storage.corpus_files import CorpusFileError

# Text that looks like what people type: Hangul, ASCII, separators the parser cares about, emoji and odd spaces.
PIECES = st.sampled_from(["/", "|", ",", ":", "=", "：", "\n", " ", "20대", "60+", "제품", "행사", "연령", "개수", "문자",
                          "sms", "3개", "help", "status", "롤백", "😊", "\u200b", "\t", "'", ";", "--", "<!channel>"])  # fmt: skip
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=12)), max_size=25).map("".join)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(TEXT)
@example("/")  # found by this test: only separators once crashed the parser
@example(" , | ")
def test_the_copy_parser_returns_a_command_or_a_korean_error(text: str) -> None:
    try:
        parsed = parse_command(text)
    except CommandParseError as exc:
        assert exc.user_message and any("가" <= ch <= "힣" for ch in exc.user_message)
        return
    assert parsed.kind in {"brief", "help", "modal", "admin"}
    if parsed.kind == "brief":
        try:  # what the listener does next: a Brief, or a field-named Korean error
            Brief.create(**parsed.fields)
        except BriefError as exc:
            assert exc.field and exc.user_message


@FAST
@given(TEXT)
def test_the_register_detector_always_answers_a_known_register(text: str) -> None:
    assert detect_register(text) in {*REGISTERS, "plain", "noun", "unknown"}


CELL = st.one_of(TEXT, st.sampled_from(["", "20대", "sms", "2026-05-01", "3.5%", "abc", "9999-99-99", "-1"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(CELL, CELL, CELL, CELL, CELL), max_size=8), st.sampled_from(["csv", "jsonl"]))
def test_the_corpus_importer_reports_every_row_or_refuses_the_file(rows: list[tuple[str, ...]], kind: str) -> None:
    header = ["카피", "제품", "연령", "채널", "날짜"]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"corpus.{kind}"
        if kind == "csv":
            buffer = io.StringIO()
            csv.writer(buffer).writerows([header, *rows])
            path.write_text(buffer.getvalue(), "utf-8")
        else:
            path.write_text("\n".join(json.dumps(dict(zip(header, r, strict=True)), ensure_ascii=False) for r in rows),
                            "utf-8")  # fmt: skip
        try:
            new, report = prepare_import(path, checks=language_checks(), source="test", existing=lambda _: {})
        except (CorpusFileError, ValueError) as exc:
            assert str(exc)  # a whole-file problem, said in words
            return
    # every row read is accounted for: imported, merged as a duplicate, or reported bad with its line
    assert report.rows_read == len(new) + len(report.merged) + len(report.bad)
    assert all(line >= 1 and reason for line, reason in report.bad)
