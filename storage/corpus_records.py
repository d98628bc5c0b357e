"""The corpus: the company's own copies (and the starter's), and the record of each file imported into it."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from storage.base import Row, StoreBase
from storage.corpus import NEEDED_FOR


class CorpusRecords(StoreBase):
    def stored_corpus_rows(self, hashes: list[str]) -> dict[str, Row]:
        """The corpus rows of those of `hashes` that are stored, by hash (what an import may complete)."""
        found: dict[str, Row] = {}
        with self._lock:
            for i in range(0, len(hashes), 500):  # stay under SQLite's bound-parameter limit
                chunk = hashes[i : i + 500]
                where = f"content_hash in ({', '.join('?' for _ in chunk)})"
                found.update((r["content_hash"], r) for r in self.db.table("corpus").rows_where(where, chunk))
        return found

    def import_corpus(
        self, rows: list[dict[str, Any]], completions: list[tuple[str, dict[str, Any]]], report: dict[str, Any]
    ) -> tuple[int, int]:
        """One file's import in one transaction: insert the new rows (skipping hashes already present), fill in
        the missing fields of rows already present, and keep the import's column report. Returns (inserted,
        completed). A field is only ever filled where it is empty: a re-import never overwrites a value."""
        now = self.now()
        with self._atomic() as db:
            before = db.table("corpus").count
            db.table("corpus").insert_all(({**r, "created_at": now} for r in rows), ignore=True, batch_size=500)
            inserted = db.table("corpus").count - before
            completed = 0
            for key, values in completions:
                sets = ", ".join(f"[{f}] = coalesce(nullif([{f}], ''), ?)" for f in values)
                cursor = db.execute(f"update corpus set {sets} where content_hash = ?", [*values.values(), key])
                completed += cursor.rowcount
            db.table("corpus_imports").insert(
                {
                    "source": report["source"],
                    "path": report["path"],
                    "imported_at": now,
                    "header_line": report["header_line"],
                    "report": json.dumps(report, ensure_ascii=False),
                }
            )
        return inserted, completed

    def corpus_imports(self) -> list[Row]:
        """Every corpus import's record, oldest first, with its report (`report`, a dict: columns, missing …)."""
        with self._lock:
            rows = list(self.db.table("corpus_imports").rows_where(order_by="id"))
        return [{**r, "report": json.loads(r["report"])} for r in rows]

    def add_corpus_rows(self, rows: list[dict[str, Any]]) -> int:
        """Insert prepared corpus rows in one transaction, skipping hashes already present; return the count."""
        now = self.now()
        with self._atomic() as db:
            before = db.table("corpus").count
            db.table("corpus").insert_all(({**r, "created_at": now} for r in rows), ignore=True, batch_size=500)
            return db.table("corpus").count - before

    def corpus_rows(self, split: str | None = None) -> list[Row]:
        """Corpus rows, of one split or all, in insertion order."""
        where, args = ("split = ?", [split]) if split else (None, [])
        with self._lock:
            return list(self.db.table("corpus").rows_where(where, args, order_by="id"))

    def corpus_size(self, split: str | None = None) -> int:
        """How many corpus rows there are (of one split, or all)."""
        where, args = ("where split = ?", [split]) if split else ("", [])
        with self._lock:
            return int(self.db.execute(f"select count(*) from corpus {where}", args).fetchone()[0])

    def corpus_stats(self) -> dict[str, Any]:
        """Counts per category, event, age group, register, channel, split and source; length percentiles;
        the share of rows with a score."""
        rows = self.corpus_rows()
        by: dict[str, dict[str, int]] = {}
        for column, name in (
            ("category", "category"),
            ("event", "event"),
            ("age_group", "age_group"),
            ("register_detected", "register"),
            ("channel", "channel"),
            ("split", "split"),
            ("source", "source"),
        ):
            counts: dict[str, int] = {}
            for row in rows:
                key = row[column] or "(none)"
                counts[key] = counts.get(key, 0) + 1
            by[name] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        lengths = sorted(len(r["text"]) for r in rows)
        return {
            "rows": len(rows),
            **by,
            "length": {f"p{p}": _percentile(lengths, p) for p in (10, 50, 90)} | {"max": lengths[-1] if lengths else 0},
            "scored_share": round(sum(r["score"] is not None for r in rows) / len(rows), 4) if rows else 0.0,
            "scored_by_measure": dict(Counter(r["score_measure"] for r in rows if r["score"] is not None)),
            "missing": self.corpus_gaps(rows),
        }

    def corpus_gaps(self, rows: list[Row] | None = None) -> dict[str, dict[str, Any]]:
        """What the corpus lacks, field by field, and which imported column could have filled it (`_gaps`)."""
        return _gaps(self.corpus_rows() if rows is None else rows, self.corpus_imports())


def _gaps(rows: list[Row], imports: list[Row]) -> dict[str, dict[str, Any]]:
    """For each field a copy needs (NEEDED_FOR) and the score: the rows without it, the scored rows without it,
    and for each source that left rows without it, the column of its latest import that looks like the field but
    was not used (column and hint "" when the file had none)."""
    latest = {r["source"]: r["report"] for r in imports}
    out: dict[str, dict[str, Any]] = {}
    for fld in (*NEEDED_FOR, "score"):
        lacking = [r for r in rows if (r[fld] is None if fld == "score" else not r[fld])]
        sources = []
        for source in dict.fromkeys(r["source"] for r in lacking):
            report = latest.get(source)
            if report is None:
                continue
            use = next((c for c in report["columns"] if not c["field"] and c["suggest"] == fld), None)
            sources.append(
                {
                    "source": source,
                    "path": report["path"],
                    "rows": sum(r["source"] == source for r in lacking),
                    "columns": [c["column"] for c in report["columns"]],
                    "column": use["column"] if use else "",
                    "hint": use["hint"] if use else "",
                }
            )
        out[fld] = {
            "rows": len(lacking),
            "scored": sum(r["score"] is not None for r in lacking),
            "needed_for": NEEDED_FOR.get(fld, "learning from the corpus's performance (--from-corpus)"),
            "sources": sources,
        }
    return out


def _percentile(ordered: list[int], p: int) -> int:
    if not ordered:
        return 0
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
