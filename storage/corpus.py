"""Corpus import: map headers, clean and mask text, validate rows, merge near-duplicates, assign a stable split.

Language checks (age spellings, channel aliases, the register detector) live in `model/`, which `storage/`
may not import: the CLI passes them in as `Checks`.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from storage.corpus_files import read_rows

MAX_COPY_CHARS = 500
SPLIT_SHARES = (("train", 80), ("validation", 10), ("test", 10))  # percent; the hash decides
HEADER_ALIASES = {
    "text": ("카피", "문구", "광고문구", "copy", "text"),
    "product": ("제품", "상품", "제품명", "상품명", "product"),
    "category": ("카테고리", "분류", "category"),
    "event": ("행사", "이벤트", "행사명", "event", "event_name"),
    "age_group": ("연령", "타깃", "타겟", "연령대", "age", "age_group"),
    "channel": ("채널", "매체", "channel"),
    "score": ("성과", "반응", "점수", "score"),
    "date": ("날짜", "일자", "date"),
    "register_label": ("말투", "레지스터", "register"),
}
FIELDS = tuple(HEADER_ALIASES)
# Scores are kept with the name of what they measure, so that scores of different kinds are never compared. A
# column named for a measure is the score; with several, the first measure in this order (CTR is what copy moves
# most directly; `--map COLUMN=score` picks another). A generic name (성과, score) is the measure "score".
SCORE_MEASURES = {
    "ctr": ("ctr", "클릭률", "클릭율", "clickrate", "clickthroughrate"),
    "conversion_rate": ("전환율", "전환률", "cvr", "conversion", "conversionrate"),
    "response_rate": ("반응률", "반응율", "responserate"),
    "open_rate": ("오픈율", "오픈률", "열람률", "열람율", "개봉률", "openrate"),
}
GENERIC_SCORE = "score"
_UNIT = re.compile(r"[\(\[（][^)\]）]*[\)\]）]|%")


def header_key(column: str) -> str:
    """A header as aliases are matched: lower case, without a unit such as "(%)", spaces, '-' or '_'."""
    return re.sub(r"[\s_\-]+", "", _UNIT.sub("", unicodedata.normalize("NFKC", column)).lower())


def score_measure(column: str) -> str:
    """What a score column measures, from its name: ctr, conversion_rate, …, or "score" when the name is generic."""
    key = header_key(column)
    return next((m for m, aliases in SCORE_MEASURES.items() if key in aliases), GENERIC_SCORE)


_PHONE = re.compile(r"(?<!\d)(?:0\d{1,2}|1\d{3})[-. ]?\d{3,4}[-. ]?\d{4}(?!\d)|(?<!\d)1\d{3}-\d{4}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_TAG = re.compile(r"<[^<>]{1,200}>")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"(\*\*|__|~~|`+)")
_MD_LINE = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|>\s+)", re.MULTILINE)
_DATE = re.compile(r"^(\d{4})[-./]?(\d{1,2})[-./]?(\d{1,2})\.?$")


@dataclass(frozen=True)
class Checks:
    """Language checks from `model/`: each normaliser raises ValueError on a value it does not know."""

    normalize_age: Callable[[str], str]
    normalize_channel: Callable[[str], str]
    detect_registers: Callable[[list[str]], list[str]]


@dataclass
class ImportReport:
    """What an import did (or, with --dry-run, would do)."""

    path: str
    detected: str
    source: str
    rows_read: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)
    merged: list[tuple[int, int]] = field(default_factory=list)  # (line, line of the copy it merged into)
    already_present: int = 0
    inserted: int = 0
    masked_phones: int = 0
    masked_emails: int = 0
    register_disagreements: int = 0
    by_split: Counter[str] = field(default_factory=Counter)
    dry_run: bool = False
    score_column: str = ""  # the file's column read as the score, and what it measures
    score_measure: str = ""
    unused_score_columns: list[str] = field(default_factory=list)

    @property
    def new_rows(self) -> int:
        """Rows that are (or would be) added."""
        return sum(self.by_split.values())


def normalized_key(text: str) -> str:
    """What two copies must share to count as the same: NFKC, lower case, no whitespace or punctuation."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).lower())


def content_hash(text: str) -> str:
    """The corpus key of a copy: SHA-256 of its normalised form."""
    return hashlib.sha256(normalized_key(text).encode("utf-8")).hexdigest()


def split_for(key_hash: str) -> str:
    """train / validation / test from a hash alone, so a copy never changes split across re-imports.

    Every stratum (age group x event) gets the same expected shares, so the split is stratified in
    expectation; ranking within strata would drift when rows are added, and stability matters more here.
    The learning loop uses the same rule for feedback.
    """
    bucket = int(key_hash[:8], 16) % 100
    for name, share in SPLIT_SHARES:
        if bucket < share:
            return name
        bucket -= share
    return SPLIT_SHARES[-1][0]


def clean_text(raw: str) -> tuple[str, int, int]:
    """(cleaned copy, phones masked, e-mails masked): NFC, no HTML or Markdown, single spaces."""
    text = html.unescape(_TAG.sub(" ", unicodedata.normalize("NFC", raw)))
    text = _MD_LINE.sub("", _MD_MARKS.sub("", _MD_LINK.sub(r"\1", text)))
    text, emails = _EMAIL.subn("[이메일]", text)
    text, phones = _PHONE.subn("[전화번호]", text)
    return re.sub(r"\s+", " ", text).strip(), phones, emails


def parse_date(value: Any) -> str:
    text = str(value).strip()
    m = _DATE.match(text)
    if not m:
        raise ValueError(f"unreadable date {text!r}; use YYYY-MM-DD")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError as exc:
        raise ValueError(f"unreadable date {text!r}; use YYYY-MM-DD") from exc


def _parse_score(value: Any) -> float:
    text = str(value).strip().replace(",", "")
    try:
        return float(text[:-1]) if text.endswith("%") else float(text)
    except ValueError as exc:
        raise ValueError(f"unreadable score {text!r}; use a number such as 3.2 or 3.2%") from exc


def header_map(headers: list[str], overrides: Mapping[str, str]) -> dict[str, str]:
    """file column -> corpus field, from explicit `--map column=field` pairs, then the known aliases; the score
    is the column of the first measure in SCORE_MEASURES' order, else a generic score column."""
    unknown = [f for f in overrides.values() if f not in FIELDS]
    if unknown:
        raise ValueError(f"--map names unknown field(s) {unknown}; fields are {', '.join(FIELDS)}")
    mapping = {col: fld for col, fld in overrides.items() if col in headers}
    taken = set(mapping.values())
    if "score" not in taken:
        found = {score_measure(c): c for c in reversed(headers) if c not in mapping and _is_score(c)}
        for measure in (*SCORE_MEASURES, GENERIC_SCORE):
            if measure in found:
                mapping[found[measure]] = "score"
                taken.add("score")
                break
    for column in headers:
        if column in mapping:
            continue
        key = header_key(column)
        for fld, aliases in HEADER_ALIASES.items():
            if fld not in taken and fld != "score" and key in {header_key(a) for a in aliases}:
                mapping[column] = fld
                taken.add(fld)
                break
    if "text" not in mapping.values():
        raise ValueError(f"no copy column among {headers}; name it 카피, 문구, copy or text, or use --map COLUMN=text")
    return mapping


def _is_score(column: str) -> bool:
    key = header_key(column)
    return key in {header_key(a) for a in HEADER_ALIASES["score"]} or score_measure(column) != GENERIC_SCORE


def score_columns(headers: list[str], mapping: dict[str, str]) -> tuple[str, list[str]]:
    """(the column used as the score, or "", other score-like columns that are not used)."""
    used = next((c for c, f in mapping.items() if f == "score"), "")
    return used, [c for c in headers if c != used and c not in mapping and _is_score(c)]


def _validate(row: dict[str, Any], mapping: dict[str, str], checks: Checks) -> tuple[dict[str, Any], int, int]:
    values = {fld: row.get(col) for col, fld in mapping.items()}
    raw = str(values.get("text") or "")
    text, phones, emails = clean_text(raw)
    if not text:
        raise ValueError("empty copy")
    if len(text) > MAX_COPY_CHARS:
        raise ValueError(f"copy too long ({len(text)} characters, at most {MAX_COPY_CHARS})")
    out: dict[str, Any] = {"text": text}
    for fld in ("product", "category", "event", "register_label"):
        out[fld] = " ".join(str(values.get(fld) or "").split())
    age = str(values.get("age_group") or "").strip()
    out["age_group"] = checks.normalize_age(age) if age else ""
    channel = str(values.get("channel") or "").strip()
    out["channel"] = checks.normalize_channel(channel) if channel else ""
    score = values.get("score")
    out["score"] = _parse_score(score) if score not in (None, "") else None
    measure = next((score_measure(c) for c, f in mapping.items() if f == "score"), GENERIC_SCORE)
    out["score_measure"] = measure if out["score"] is not None else ""
    when = values.get("date")
    out["date"] = parse_date(when) if when not in (None, "") else ""
    return out, phones, emails


def prepare_import(
    path: str | Path,
    *,
    checks: Checks,
    source: str,
    overrides: Mapping[str, str] | None = None,
    existing: Callable[[list[str]], set[str]],
) -> tuple[list[dict[str, Any]], ImportReport]:
    """Read, clean and validate a file; return the new rows to insert and the report. Writes nothing."""
    detected, columns, rows = read_rows(path)
    report = ImportReport(path=str(path), detected=detected, source=source)
    mapping = header_map(columns, overrides or {})
    report.score_column, report.unused_score_columns = score_columns(columns, mapping)
    report.score_measure = score_measure(report.score_column) if report.score_column else ""
    kept: dict[str, tuple[int, dict[str, Any]]] = {}
    for line, row in rows:
        report.rows_read += 1
        if "__error__" in row:
            report.bad.append((line, row["__error__"]))
            continue
        try:
            clean, phones, emails = _validate(row, mapping, checks)
        except ValueError as exc:
            report.bad.append((line, str(exc)))
            continue
        report.masked_phones += phones
        report.masked_emails += emails
        key = content_hash(clean["text"])
        if key in kept:
            first_line, first = kept[key]
            report.merged.append((line, first_line))
            if first["score"] is None and clean["score"] is not None:
                first["score"], first["score_measure"] = clean["score"], clean["score_measure"]
            continue
        kept[key] = (line, {**clean, "content_hash": key})
    new = _finish(kept, report, checks, existing, source)
    return new, report


def _finish(
    kept: dict[str, tuple[int, dict[str, Any]]],
    report: ImportReport,
    checks: Checks,
    existing: Callable[[list[str]], set[str]],
    source: str,
) -> list[dict[str, Any]]:
    present = existing(list(kept))
    report.already_present = len(present)
    new = [row for key, (_, row) in kept.items() if key not in present]
    for row, register in zip(new, checks.detect_registers([r["text"] for r in new]), strict=True):
        row.update(register_detected=register, source=source, split=split_for(row["content_hash"]))
        if row["register_label"] and row["register_label"] != register:
            report.register_disagreements += 1
        report.by_split[row["split"]] += 1
    return new
