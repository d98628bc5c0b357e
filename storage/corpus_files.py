"""Read a marketing team's copy file: CSV (UTF-8, UTF-8 with BOM, or CP949/EUC-KR), JSONL, or XLSX.

Each reader yields (line number, row) so that every problem can be reported against the line a person sees
in their spreadsheet or editor.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from storage.errors import StoreError

# Korean Excel saves CSV as CP949 (a superset of EUC-KR); try UTF-8 first because it fails loudly on CP949 bytes.
CSV_ENCODINGS = ("utf-8-sig", "cp949")

Rows = Iterator[tuple[int, dict[str, Any]]]


class CorpusFileError(StoreError):
    """The file cannot be read at all (format, encoding, or structure)."""


def read_rows(path: str | Path) -> tuple[str, list[str], Rows]:
    """(detected format or encoding, column names, rows) for a .csv, .tsv, .jsonl or .xlsx file."""
    path = Path(path)
    if not path.is_file():
        raise CorpusFileError(f"{path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_csv(path)
    if suffix in (".jsonl", ".ndjson"):
        rows = list(_read_jsonl(path))  # JSON objects may differ in keys: the columns are their union
        names = list(dict.fromkeys(k for _, row in rows for k in row if k != "__error__"))
        return "jsonl", names, iter(rows)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    raise CorpusFileError(f"{path.name}: unsupported file type {suffix!r}; use .csv, .jsonl or .xlsx")


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    for encoding in CSV_ENCODINGS:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise CorpusFileError(f"{path.name} is neither UTF-8 nor CP949/EUC-KR; save it as 'CSV UTF-8' and try again")


def _read_csv(path: Path) -> tuple[str, list[str], Rows]:
    text, encoding = _decode(path.read_bytes(), path)
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
    if not reader.fieldnames:
        raise CorpusFileError(f"{path.name} has no header row")

    def rows() -> Rows:
        for row in reader:
            if any((v or "").strip() for k, v in row.items() if k is not None):
                yield reader.line_num, {k.strip(): v for k, v in row.items() if k is not None}

    names = [name.strip() for name in reader.fieldnames]
    return f"csv ({'utf-8' if encoding == 'utf-8-sig' else encoding})", names, rows()


def _read_jsonl(path: Path) -> Rows:
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, {"__error__": f"not valid JSON ({exc.msg})"}
                continue
            yield number, row if isinstance(row, dict) else {"__error__": "not a JSON object"}


def _read_xlsx(path: Path) -> tuple[str, list[str], Rows]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise CorpusFileError(f"{path.name} is not a readable Excel file ({exc})") from exc
    sheet = book.worksheets[0]
    lines = sheet.iter_rows()
    header = next(lines, None)
    if not header or all(c.value is None for c in header):
        raise CorpusFileError(f"{path.name}: the first sheet has no header row")
    names = [str(h.value).strip() if h.value is not None else "" for h in header]

    def rows() -> Rows:
        for number, cells in enumerate(lines, start=2):
            row = {n: _cell(c) for n, c in zip(names, cells, strict=False) if n}
            if any(v not in (None, "") for v in row.values()):
                yield number, row
        book.close()

    return "xlsx", [n for n in names if n], rows()


def _cell(cell: Any) -> Any:
    """A cell's value as the file shows it: a date as YYYY-MM-DD, a percent-formatted number as "3.2%" (Excel
    stores 3.2 % as 0.032, and a header such as "CTR(%)" must not read it as 0.032 %)."""
    value = getattr(cell, "value", None)
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and "%" in str(getattr(cell, "number_format", ""))
    ):
        return f"{value * 100:.10g}%"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
