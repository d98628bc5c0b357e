"""Read a marketing team's copy file: CSV (UTF-8, UTF-8 with BOM, or CP949/EUC-KR), JSONL, or XLSX.

Each reader yields (line number, row) so that every problem can be reported against the line a person sees
in their spreadsheet or editor.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from storage.errors import StoreError

# Korean Excel saves CSV as CP949 (a superset of EUC-KR); try UTF-8 first because it fails loudly on CP949 bytes.
CSV_ENCODINGS = ("utf-8-sig", "cp949")

Rows = Iterator[tuple[int, dict[str, Any]]]


class CorpusFileError(StoreError):
    """The file cannot be read at all (format, encoding, or structure)."""


@dataclass
class Table:
    """A file's rows under its header: the format, the line the header was found on, the column names in order,
    and the rows as (line number, {column: value})."""

    detected: str
    header_line: int
    columns: list[str]
    rows: Rows


HEADER_SEARCH = 20  # rows searched for the header below a title or blank rows


def read_rows(path: str | Path, is_header: Callable[[list[str]], bool] = bool) -> Table:
    """The rows of a .csv, .tsv, .jsonl or .xlsx file. In a CSV or XLSX file the header is the first of the first
    rows that `is_header` accepts and that has two or more cells (a report's title row has one), else the first it
    accepts, else the first row that is not blank: a title row or blank rows above it are skipped."""
    path = Path(path)
    if not path.is_file():
        raise CorpusFileError(f"{path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_csv(path, is_header)
    if suffix in (".jsonl", ".ndjson"):
        rows = list(_read_jsonl(path))  # JSON objects may differ in keys: the columns are their union
        names = list(dict.fromkeys(k for _, row in rows for k in row if k != "__error__"))
        return Table("jsonl", 0, names, iter(rows))
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, is_header)
    raise CorpusFileError(f"{path.name}: unsupported file type {suffix!r}; use .csv, .jsonl or .xlsx")


def _header_index(rows: list[list[str]], is_header: Callable[[list[str]], bool]) -> int | None:
    """The index of the header among the first rows, by the rule in `read_rows`; None when every row is blank."""
    filled = [(i, [c for c in row if c]) for i, row in enumerate(rows[:HEADER_SEARCH])]
    filled = [(i, cells) for i, cells in filled if cells]
    for accept in (lambda cells: len(cells) > 1 and is_header(cells), is_header, bool):
        found = next((i for i, cells in filled if accept(cells)), None)
        if found is not None:
            return found
    return None


def _columns(cells: list[str]) -> list[str]:
    """The header's names. A name that appears again is kept as "name #N" (N its column number), so that no column
    hides another: the import's header rules then refuse the pair if both could be one field, with the `--map` that
    settles it (storage/headers.py)."""
    names, seen = [], set()
    for number, cell in enumerate(cells, start=1):
        name = cell.strip()
        names.append(f"{name} #{number}" if name and name in seen else name)
        seen.add(name)
    return names


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    for encoding in CSV_ENCODINGS:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise CorpusFileError(f"{path.name} is neither UTF-8 nor CP949/EUC-KR; save it as 'CSV UTF-8' and try again")


def _read_csv(path: Path, is_header: Callable[[list[str]], bool]) -> Table:
    text, encoding = _decode(path.read_bytes(), path)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect=dialect)
    # (line the row ends on, cells) of the rows searched for the header; a row that cannot be read ends them, and
    # is reported as a bad row if the header came before it
    head: list[tuple[int, list[str] | csv.Error]] = []
    for line, cells in _rest(reader):
        head.append((line, cells))
        if len(head) >= HEADER_SEARCH or isinstance(cells, csv.Error):
            break
    readable = [cells for _, cells in head if not isinstance(cells, csv.Error)]
    found = _header_index(readable, is_header)
    if found is None:
        broken = next((f"; line {n} cannot be read as CSV ({c})" for n, c in head if isinstance(c, csv.Error)), "")
        raise CorpusFileError(f"{path.name} has no header row{broken}")
    names = _columns(readable[found])
    header_line = head[found - 1][0] + 1 if found else 1

    def rows() -> Rows:
        ended = isinstance(head[-1][1], csv.Error)
        for line, cells in (*head[found + 1 :], *([] if ended else _rest(reader))):
            if isinstance(cells, csv.Error):
                yield line, {"__error__": f"cannot be read as CSV ({cells}); the rows after it were not read"}
                return
            if not any(c.strip() for c in cells):
                continue
            if any(v.strip() for v in cells[len(names) :]):
                problem = f"{len(cells)} fields but the header has {len(names)}: put a value with a comma in quotes"
                yield line, {"__error__": problem}
                continue
            row: dict[str, Any] = {n: v for n, v in zip(names, cells, strict=False) if n}
            unnamed = sum(1 for n, v in zip(names, cells, strict=False) if not n and v.strip())
            yield line, {**row, "__unnamed__": unnamed} if unnamed else row

    return Table(
        f"csv ({'utf-8' if encoding == 'utf-8-sig' else encoding})", header_line, [n for n in names if n], rows()
    )


def _rest(reader: Any) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """The reader's remaining rows by the line each ends on; a row that cannot be read (a broken quote, a field
    over the csv module's limit) ends them, as the error, since what follows it cannot be split into rows."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, exc
            return
        yield reader.line_num, cells


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


def _read_xlsx(path: Path, is_header: Callable[[list[str]], bool]) -> Table:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise CorpusFileError(f"{path.name} is not a readable Excel file ({exc})") from exc
    sheet = book.worksheets[0]
    lines = sheet.iter_rows()
    head = []
    for cells in lines:
        head.append(cells)
        if len(head) >= HEADER_SEARCH:
            break
    found = _header_index([[_text(c) for c in cells] for cells in head], is_header)
    if found is None:
        raise CorpusFileError(f"{path.name}: the first sheet has no header row")
    names = _columns([_text(c) for c in head[found]])

    def rows() -> Rows:
        number = found + 1
        for cells in (*head[found + 1 :], *lines):
            number += 1
            row = {n: _cell(c) for n, c in zip(names, cells, strict=False) if n}
            unnamed = [c for n, c in zip(names, cells, strict=False) if not n and _cell(c) not in (None, "")]
            if any(v not in (None, "") for v in row.values()):
                yield number, {**row, **({"__unnamed__": len(unnamed)} if unnamed else {})}
        book.close()

    return Table("xlsx", found + 1, [n for n in names if n], rows())


def _text(cell: Any) -> str:
    value = getattr(cell, "value", None)
    return "" if value is None else str(value).strip()


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
