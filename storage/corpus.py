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
from storage.headers import Columns, ColumnUse, Vocabulary, column_uses, header_key, match_columns, names_a_field

MAX_COPY_CHARS = 500
SPLIT_SHARES = (("train", 80), ("validation", 10), ("test", 10))  # percent; the hash decides
HEADER_ALIASES = {
    "text": ("카피", "문구", "광고문구", "copy", "text"),
    "product": ("제품", "상품", "제품명", "상품명", "product"),
    "category": ("카테고리", "분류", "category"),
    "event": ("행사", "이벤트", "행사명", "캠페인", "event", "event_name", "campaign"),
    "age_group": ("연령", "타깃", "타겟", "연령대", "age", "age_group", "target"),
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
# Measures first, in the order above, so that a CTR column wins over a conversion rate and both over 성과.
VOCABULARY = Vocabulary(
    aliases={**HEADER_ALIASES, "score": (*(a for m in SCORE_MEASURES.values() for a in m), *HEADER_ALIASES["score"])},
    short_names={"copy": "text", "age": "age_group", "register": "register_label"},
)
# What a row without each field cannot do, for the import's and the retrain's explanations.
NEEDED_FOR = {
    "age_group": "training prompts and for ranking copies among their peers",
    "event": "the brief of a training prompt and pairing copies of one brief",
    "channel": "ranking scores (they are compared within a channel) and the channel's length limits",
}
FILLABLE = ("product", "category", "event", "age_group", "channel", "date", "register_label")
SUGGEST_SHARE = 0.6  # of an unused column's sampled values that must read as an age group, channel or date


def score_measure(column: str) -> str:
    """What a score column measures, from its name: ctr, conversion_rate, …, or "score" when the name is generic."""
    key = header_key(column)
    for measure, aliases in SCORE_MEASURES.items():
        if key in aliases or any(key.endswith(a) for a in aliases if len(a) > 2):
            return measure
    return GENERIC_SCORE


# Every pattern below runs in time linear in its input (a 5 MB cell is refused in seconds, not hours): each either
# starts only where a token starts (a look-behind of one character) or has bounded repeats, so no position is
# scanned again from many starting points. The e-mail pattern once took quadratic time on a long run of letters.
_PHONE = re.compile(r"(?<!\d)(?:0\d{1,2}|1\d{3})[-. ]?\d{3,4}[-. ]?\d{4}(?!\d)|(?<!\d)1\d{3}-\d{4}(?!\d)")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
_TAG = re.compile(r"<[^<>]{1,200}>")
_MD_LINK = re.compile(r"\[([^\[\]\n]{0,300})\]\([^()\s]{0,500}\)")
_MD_MARKS = re.compile(r"(\*\*|__|~~|`+)")
_MD_LINE = re.compile(r"^[ \t]{0,8}(?:#{1,6}[ \t]+|[-*+][ \t]+|>[ \t]+)", re.MULTILINE)
MAX_RAW_CHARS = 20 * MAX_COPY_CHARS  # longer raw text is refused before any cleaning: markup never adds this much
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
    header_line: int = 0  # the line of the file the header was found on (0: JSONL has none)
    columns: list[ColumnUse] = field(default_factory=list)
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
    missing: dict[str, int] = field(default_factory=dict)  # field -> valid rows of the file without it
    unnamed_cells: int = 0  # rows with a value under a column that has no name
    # rows already in the corpus that this file gives missing fields: (content hash, the values to fill in)
    completions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    completed: int = 0

    @property
    def new_rows(self) -> int:
        """Rows that are (or would be) added."""
        return sum(self.by_split.values())

    @property
    def valid_rows(self) -> int:
        """Rows read that are copies (after near-duplicates merged), new or already present."""
        return self.new_rows + self.already_present

    def completed_fields(self) -> Counter[str]:
        """How many present rows get each field filled in."""
        return Counter(f for _, values in self.completions for f in values if f != "score_measure")

    def unused_hint(self, fld: str) -> str:
        """The `--map` hint of an unused column that looks like `fld`, or ""."""
        return next((c.hint for c in self.columns if not c.field and c.suggest == fld and c.hint), "")

    def as_dict(self) -> dict[str, Any]:
        """The report as `--json` prints it and the store keeps it (without the values to fill in)."""
        return {
            "path": self.path,
            "detected": self.detected,
            "source": self.source,
            "header_line": self.header_line,
            "columns": [c.as_dict(VOCABULARY) for c in self.columns],
            "rows_read": self.rows_read,
            "bad": [{"line": n, "reason": r} for n, r in self.bad],
            "merged": [{"line": n, "into": first} for n, first in self.merged],
            "already_present": self.already_present,
            "new": self.new_rows,
            "by_split": dict(sorted(self.by_split.items())),
            "inserted": self.inserted,
            "completed": self.completed if not self.dry_run else len(self.completions),
            "completed_fields": dict(self.completed_fields()),
            "missing": {
                f: {"rows": n, "needed_for": NEEDED_FOR[f], "hint": self.unused_hint(f)}
                for f, n in self.missing.items()
                if n
            },
            "unnamed_cells": self.unnamed_cells,
            "masked_phones": self.masked_phones,
            "masked_emails": self.masked_emails,
            "register_disagreements": self.register_disagreements,
            "score_column": self.score_column,
            "score_measure": self.score_measure,
            "dry_run": self.dry_run,
        }


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
    """file column -> corpus field, by `storage.headers`' rules after explicit `--map column=field` pairs; with
    several score columns, the first measure in SCORE_MEASURES' order. Raises ValueError (a HeaderError) for a
    header that could be two fields, and when no column is the copy."""
    return _columns(headers, overrides).mapping


def _columns(headers: list[str], overrides: Mapping[str, str]) -> Columns:
    found = match_columns(headers, VOCABULARY, overrides)
    if "text" not in found.mapping.values():
        raise ValueError(f"no copy column among {headers}; name it 카피, 문구, copy or text, or use --map COLUMN=copy")
    return found


def _is_score(column: str) -> bool:
    naming = VOCABULARY.naming(column)
    return (VOCABULARY.exact(column) or ("",))[0] == "score" or naming.head == "score"


def score_columns(headers: list[str], mapping: dict[str, str]) -> tuple[str, list[str]]:
    """(the column used as the score, or "", other score-like columns that are not used)."""
    used = next((c for c, f in mapping.items() if f == "score"), "")
    return used, [c for c in headers if c != used and c not in mapping and _is_score(c)]


def _validate(row: dict[str, Any], mapping: dict[str, str], checks: Checks) -> tuple[dict[str, Any], int, int]:
    values = {fld: row.get(col) for col, fld in mapping.items()}
    raw = str(values.get("text") or "")
    if len(raw) > MAX_RAW_CHARS:
        raise ValueError(f"copy too long ({len(raw):,} characters, at most {MAX_COPY_CHARS})")
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
    existing: Callable[[list[str]], Mapping[str, Mapping[str, Any]]],
) -> tuple[list[dict[str, Any]], ImportReport]:
    """Read, clean and validate a file; return the new rows to insert and the report, whose `completions` are the
    missing fields this file gives rows already in the corpus (`existing`: the stored rows of the given hashes).
    Writes nothing."""
    table = read_rows(path, lambda cells: names_a_field(cells, VOCABULARY))
    report = ImportReport(path=str(path), detected=table.detected, source=source, header_line=table.header_line)
    found = _columns(table.columns, overrides or {})
    mapping = found.mapping
    report.score_column, report.unused_score_columns = score_columns(table.columns, mapping)
    report.score_measure = score_measure(report.score_column) if report.score_column else ""
    unused = [c for c in table.columns if c not in mapping]
    samples: dict[str, list[str]] = {c: [] for c in unused}
    kept: dict[str, tuple[int, dict[str, Any]]] = {}
    for line, row in table.rows:
        report.rows_read += 1
        if "__error__" in row:
            report.bad.append((line, row["__error__"]))
            continue
        report.unnamed_cells += bool(row.get("__unnamed__"))
        for column in unused:
            value = str(row.get(column) or "").strip()
            if value and len(samples[column]) < 200:
                samples[column].append(value)
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
    notes = {c: f"another score; the score comes from {report.score_column!r}" for c in report.unused_score_columns}
    measures = {report.score_column: report.score_measure} if report.score_column else {}
    report.columns = column_uses(
        table.columns, found, VOCABULARY, samples, lambda v: _looks_like(v, checks), notes=notes, measures=measures
    )
    new = _finish(kept, report, checks, existing, source)
    report.missing = {f: sum(1 for _, r in kept.values() if not r[f]) for f in NEEDED_FOR}
    return new, report


def _looks_like(values: list[str], checks: Checks) -> str:
    """The field most of a column's values read as: age_group, channel or date; "" for none. Plain numbers are
    never read as ages (a click count of 25 is no age)."""
    if not values:
        return ""

    def age(value: str) -> str:
        if value.isdigit():
            raise ValueError(value)
        return checks.normalize_age(value)

    tests: tuple[tuple[str, Callable[[str], object]], ...] = (
        ("age_group", age),
        ("channel", checks.normalize_channel),
        ("date", parse_date),
    )
    for fld, test in tests:
        fits = 0
        for value in values:
            try:
                test(value)
                fits += 1
            except ValueError:
                continue
        if fits >= SUGGEST_SHARE * len(values):
            return fld
    return ""


def _finish(
    kept: dict[str, tuple[int, dict[str, Any]]],
    report: ImportReport,
    checks: Checks,
    existing: Callable[[list[str]], Mapping[str, Mapping[str, Any]]],
    source: str,
) -> list[dict[str, Any]]:
    present = existing(list(kept))
    report.already_present = len(present)
    for key, stored in present.items():
        fill = {f: kept[key][1][f] for f in FILLABLE if not stored.get(f) and kept[key][1][f]}
        if stored.get("score") is None and kept[key][1]["score"] is not None:
            fill.update(score=kept[key][1]["score"], score_measure=kept[key][1]["score_measure"])
        if fill:
            report.completions.append((key, fill))
    new = [row for key, (_, row) in kept.items() if key not in present]
    for row, register in zip(new, checks.detect_registers([r["text"] for r in new]), strict=True):
        row.update(register_detected=register, source=source, split=split_for(row["content_hash"]))
        if row["register_label"] and row["register_label"] != register:
            report.register_disagreements += 1
        report.by_split[row["split"]] += 1
    return new
