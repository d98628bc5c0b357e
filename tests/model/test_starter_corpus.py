"""The shipped starter corpus: size, coverage, tone rules, channel limits, distinctness and its datasheet."""

from __future__ import annotations

import re
from collections import Counter
from importlib import resources

from model.starter.corpus import FIELDS, load_corpus
from model.starter.datasheet import count_tables
from model.writing.compliance import load_rules, screen
from model.writing.postprocess import EMOJI, channel_limit, is_near_duplicate, measure
from model.writing.tone import profile_for

ROWS = load_corpus()


def test_size_and_coverage() -> None:
    assert len(ROWS) >= 800
    assert all(tuple(sorted(r)) == tuple(sorted(FIELDS)) for r in ROWS)
    assert len({r["category"] for r in ROWS}) >= 10
    assert len({r["event"] for r in ROWS}) >= 12
    assert {r["age_group"] for r in ROWS} == {"10대", "20대", "30대", "40대", "50대", "60대+"}
    assert {r["channel"] for r in ROWS} == {"banner", "sms", "push", "sns", "print"}
    assert {r["register"] for r in ROWS} == {"formal", "polite", "casual", "noun"}
    assert min(Counter(r["category"] for r in ROWS).values()) >= 50
    assert len({r["product"] for r in ROWS}) >= 300


def test_registers_follow_the_tone_table() -> None:
    assert all(profile_for(r["age_group"]).accepts(r["register"]) for r in ROWS)
    assert sum(r["register"] == "noun" for r in ROWS) / len(ROWS) <= 0.12


def test_channel_limits_emoji_and_compliance() -> None:
    for r in ROWS:
        assert measure(r["text"], r["channel"]) <= channel_limit(r["channel"]), r["text"]
        if r["channel"] == "sms" or not profile_for(r["age_group"]).emoji:
            assert not EMOJI.search(r["text"]), r["text"]
        assert screen(r["text"], load_rules()) == [], r["text"]
        assert not re.search(r"\d{2,4}-\d{3,4}-\d{4}|@\w+\.\w+|https?://", r["text"]), r["text"]


def test_no_duplicates_or_near_duplicates() -> None:
    texts = [r["text"] for r in ROWS]
    pairs = [(a, b) for i, a in enumerate(texts) for b in texts[i + 1 :] if is_near_duplicate(a, b)]
    assert pairs == []


def test_datasheet_counts_match_the_file() -> None:
    sheet = resources.files("model.starter").joinpath("DATASHEET.md").read_text("utf-8")
    block = sheet.split("<!-- counts:start -->\n", 1)[1].split("<!-- counts:end -->", 1)[0]
    assert block.strip() == count_tables(ROWS).strip()
