"""Read a campaign results file (CSV in UTF-8 or CP949, JSONL or XLSX) into outcome rows, validating every row.

Each row names a copy copybot wrote, by its candidate ID (shown under each candidate in Slack) or by its exact
text (a candidate's, or a person's ✏️ edit of it), and what it earned: sends (or impressions: the CTR's
denominator), clicks, CTR, conversions and the date it went out. Nothing is written here: `prepare_results`
returns the rows and every problem by line, and the caller imports all rows or none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage.corpus import SCORE_MEASURES, parse_date
from storage.corpus_files import read_rows
from storage.headers import Columns, ColumnUse, Vocabulary, column_uses, match_columns, names_a_field

# Aliases in order of preference: a specific name ("후보 ID") wins over a generic one ("ID", which an ad platform's
# export may use for its own rows); two columns with the same name are a question for --map, not a guess.
RESULT_ALIASES = {
    "candidate_id": ("후보id", "후보번호", "카피id", "candidateid", "candidate", "id"),
    "text": ("카피", "문구", "광고문구", "본문", "copy", "text"),
    "sends": ("발송", "발송수", "발송건수", "노출", "노출수", "sends", "sent", "impressions", "delivered"),
    "clicks": ("클릭", "클릭수", "clicks"),
    "ctr": SCORE_MEASURES["ctr"],
    "conversions": ("전환", "전환수", "구매", "구매수", "conversions", "orders"),
    "date": ("날짜", "일자", "발송일", "date"),
}
RESULT_FIELDS = tuple(RESULT_ALIASES)
# "id" alone names our candidate ID only as a whole header: as a word it is any system's ID (광고 ID, 캠페인 ID).
VOCABULARY = Vocabulary(aliases=RESULT_ALIASES, whole_only=frozenset({"id"}), short_names={"copy": "text"})
# A CTR written without a % sign is a percentage when the column says so ("CTR(%)") or when any value in it is
# above 1 (no click-through rate is above 100 %); otherwise a fraction (0.032 for 3.2 %).
CTR_TOLERANCE = (0.0005, 0.05)  # a given CTR may differ from clicks/sends by 0.05 points plus 5 % (rounding)
PLAUSIBLE_FRACTION = 0.3  # a CTR read as a fraction above this (30 %) was more likely meant as a percentage


@dataclass(frozen=True)
class Targets:
    """What result rows can name: every candidate's text, and who has each exact text (candidates and edits)."""

    text_of: Mapping[int, str]
    by_text: Mapping[str, list[tuple[int, str]]]  # normalised text -> [(candidate id, the text as written)]


@dataclass
class ResultsReport:
    """What a results import did (or, with --dry-run, would do)."""

    path: str
    detected: str
    columns: dict[str, str] = field(default_factory=dict)  # file column -> field
    header_line: int = 0  # the line of the file the header was found on (0: JSONL has none)
    column_uses: list[ColumnUse] = field(default_factory=list)  # every column, used or not
    completed: int = 0  # rows already recorded that this file completes (a date or a count they lacked)
    ctr_as_percent: bool = False
    warnings: list[str] = field(default_factory=list)
    rows_read: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)
    new: int = 0
    updated: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "detected": self.detected,
            "columns": self.columns,
            "header_line": self.header_line,
            "column_report": [c.as_dict(VOCABULARY) for c in self.column_uses],
            "completed": self.completed,
            "ctr_as_percent": self.ctr_as_percent,
            "warnings": self.warnings,
            "rows_read": self.rows_read,
            "bad": [{"line": n, "reason": r} for n, r in self.bad],
            "new": self.new,
            "updated": self.updated,
            "dry_run": self.dry_run,
            "imported": not self.bad and not self.dry_run,
        }


def same_text(text: str) -> str:
    """What 'exact text' means: the same characters, whitespace runs counted as one space."""
    return " ".join(str(text).split())


def result_columns(headers: list[str], overrides: Mapping[str, str]) -> dict[str, str]:
    """file column -> result field, from `--map COLUMN=FIELD` pairs, then the names `storage.headers` reads."""
    return _columns(headers, overrides).mapping


def _columns(headers: list[str], overrides: Mapping[str, str]) -> Columns:
    found = match_columns(headers, VOCABULARY, overrides)
    fields = set(found.mapping.values())
    if not fields & {"candidate_id", "text"}:
        raise ValueError(
            f"no column names the copy among {headers}: add a candidate ID column (후보 ID) or the "
            "exact copy (카피), or use --map COLUMN=candidate_id"
        )
    if not fields & {"clicks", "ctr", "conversions"}:
        raise ValueError(
            f"no result column among {headers}: add clicks and sends (클릭수, 발송수), a CTR (클릭률) "
            "or conversions (전환수), or use --map COLUMN=FIELD"
        )
    return found


def _looks_like(values: list[str]) -> str:
    """ "date" when most of an unused column's values are dates, else ""."""
    fits = 0
    for value in values:
        try:
            parse_date(value)
            fits += 1
        except ValueError:
            continue
    return "date" if values and fits >= 0.6 * len(values) else ""


def _count(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    text = str(value).strip().replace(",", "")  # 12,000: a thousands separator
    try:
        number = float(text)
    except ValueError as exc:
        raise ValueError(f"{name} {text!r} is not a number") from exc
    if not math.isfinite(number) or number < 0 or number != int(number):
        raise ValueError(f"{name} {text!r} must be a whole number, 0 or more")
    return int(number)


def _rate(value: Any, percent: bool) -> float | None:
    if value in (None, ""):
        return None
    text = str(value).strip()  # a comma is no decimal point here ("1,5%" would read as 15 %): a bad row instead
    marked = text.endswith("%")
    try:
        number = float(text.rstrip("%").strip())
    except ValueError as exc:
        raise ValueError(f"CTR {text!r} is not a number; write it as 3.2% or 0.032") from exc
    rate = number / 100 if marked or percent else number
    if not math.isfinite(rate) or not 0 <= rate <= 1:
        raise ValueError(f"CTR {text!r} is outside 0-100 %")
    return rate


def _ctr_is_percent(column: str, values: list[Any]) -> bool:
    if "%" in column:
        return True
    numbers = []
    for v in values:
        try:
            numbers.append(float(str(v).strip().rstrip("%").replace(",", "")))
        except ValueError:
            continue
    return any(n > 1 for n in numbers)


def _candidate(values: Mapping[str, Any], targets: Targets) -> tuple[int, str]:
    """(candidate id, the text that was sent) named by the row."""
    raw_id = values.get("candidate_id")
    if raw_id not in (None, ""):
        digits = re.fullmatch(r"#?\s*(\d+)(?:\.0)?", str(raw_id).strip())
        if not digits:
            raise ValueError(f"candidate ID {raw_id!r} is not a number (copybot shows it under each candidate)")
        cid = int(digits.group(1))
        if cid not in targets.text_of:
            raise ValueError(f"there is no candidate {cid}; check the ID shown under the candidate in Slack")
        text = same_text(values.get("text") or "")
        if not text:
            return cid, targets.text_of[cid]
        sent = next((t for c, t in targets.by_text.get(text, []) if c == cid), None)
        if sent is None:  # a typo in the ID would put the results on another copy
            raise ValueError(
                f"the copy is not candidate {cid}'s (nor an edit of it); fix the ID or the copy, "
                "or leave the copy empty"
            )
        return cid, sent
    text = same_text(values.get("text") or "")
    if not text:
        raise ValueError("no candidate ID and no copy: give one of them")
    found = targets.by_text.get(text, [])
    ids = sorted({c for c, _ in found})
    if not ids:
        raise ValueError("no candidate or edit has exactly this copy; give its candidate ID instead")
    if len(ids) > 1:
        raise ValueError(
            f"{len(ids)} candidates have exactly this copy (IDs {', '.join(map(str, ids))}); give the candidate ID"
        )
    return ids[0], found[0][1]


def _result(values: Mapping[str, Any], ctr_percent: bool) -> dict[str, Any]:
    sends, clicks = _count(values.get("sends"), "sends"), _count(values.get("clicks"), "clicks")
    conversions = _count(values.get("conversions"), "conversions")
    ctr = _rate(values.get("ctr"), ctr_percent)
    for count, name in ((clicks, "clicks"), (conversions, "conversions")):
        if count is not None and sends is not None and count > sends:
            raise ValueError(f"{name} ({count:,}) exceed sends ({sends:,})")
    if sends == 0 and ctr is None and not conversions:
        raise ValueError("sends is 0: there is no rate to learn from; give the real number of sends")
    if clicks is not None and sends:
        computed = clicks / sends
        slack, relative = CTR_TOLERANCE
        if ctr is not None and abs(ctr - computed) > slack + relative * computed:
            raise ValueError(f"CTR {ctr:.2%} disagrees with clicks/sends = {computed:.2%}; fix one, or leave CTR empty")
        ctr = computed
    if ctr is None and conversions is None:
        raise ValueError("no result on this row: give clicks and sends, a CTR, or conversions")
    when = values.get("date")
    return {
        "sends": sends,
        "clicks": clicks,
        "ctr": ctr,
        "conversions": conversions,
        "date": parse_date(when) if when not in (None, "") else "",
    }


def prepare_results(
    path: str | Path,
    targets: Targets,
    overrides: Mapping[str, str] | None = None,
    recorded: Mapping[int, Mapping[str, str]] | None = None,
    source: str = "",
) -> tuple[list[dict[str, Any]], ResultsReport]:
    """Read and validate a results file; return the outcome rows (candidate_id, text, counts, ctr as a fraction,
    date, line) and the report. A candidate named twice for one date is a bad row (which one is right?), and so is
    a row with a date for a candidate whose results were recorded without one, or the other way round
    (`recorded`: each candidate's recorded send dates, "" for none, with the file each came from): it would be
    counted twice. The exception is the same file (`source`) imported again with its date column read this time:
    its dated row completes the undated one."""
    recorded = recorded or {}
    table = read_rows(path, lambda cells: names_a_field(cells, VOCABULARY))
    report = ResultsReport(path=str(path), detected=table.detected, header_line=table.header_line)
    found = _columns(table.columns, overrides or {})
    mapping = found.mapping
    report.columns = mapping
    lines = list(table.rows)
    unused = [c for c in table.columns if c not in mapping]
    samples = {c: [str(r[c]).strip() for _, r in lines[:200] if str(r.get(c) or "").strip()] for c in unused}
    report.column_uses = column_uses(table.columns, found, VOCABULARY, samples, _looks_like)
    ctr_column = next((c for c, f in mapping.items() if f == "ctr"), "")
    report.ctr_as_percent = bool(ctr_column) and _ctr_is_percent(ctr_column, [r.get(ctr_column) for _, r in lines])
    out: list[dict[str, Any]] = []
    seen: dict[tuple[int, str], int] = {}
    for line, row in lines:
        report.rows_read += 1
        if "__error__" in row:
            report.bad.append((line, row["__error__"]))
            continue
        values = {fld: row.get(col) for col, fld in mapping.items()}
        try:
            cid, text = _candidate(values, targets)
            result = _result(values, report.ctr_as_percent)
        except ValueError as exc:
            report.bad.append((line, str(exc)))
            continue
        key = (cid, result["date"])
        dates = recorded.get(cid, {})
        completes = bool(source) and result["date"] != "" and dates.get("") == source
        if dates and (result["date"] == "") != ("" in dates) and not completes:
            had = "without a date" if "" in dates else f"dated {', '.join(sorted(dates))}"
            report.bad.append(
                (
                    line,
                    f"candidate {cid}'s results were recorded {had}; give this row the same kind of "
                    "date, or remove the earlier import (copybot results remove --source FILE)",
                )
            )
            continue
        if key in seen:
            when = f" on {result['date']}" if result["date"] else " without a date"
            report.bad.append((line, f"candidate {cid}{when} is already on line {seen[key]}; keep one row"))
            continue
        seen[key] = line
        out.append({"candidate_id": cid, "text": text, **result, "line": line})
    high = [r["ctr"] for r in out if r["ctr"] is not None and r["clicks"] is None and r["ctr"] > PLAUSIBLE_FRACTION]
    if ctr_column and not report.ctr_as_percent and high:
        report.warnings.append(
            f"CTR read as a fraction, so {max(high):.0%} is the highest: if the column holds "
            f"percentages, name it '{ctr_column}(%)' or write the values with %"
        )
    return out, report
