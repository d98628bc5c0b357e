"""Real campaign results of sent candidates: what `copybot results import` writes and what stats, reports and
retraining read. Importing replaces a candidate's row for the same send date, so a corrected file can be
imported again."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from storage.base import Row, StoreBase
from storage.results_file import Targets, same_text

BEST_PERFORMERS = 5
WILSON_Z = 1.96


def wilson_lower(clicks: int, sends: int) -> float:
    """The lower end of the 95 % Wilson interval of a CTR: what ranks sent copies, so that 2 clicks out of 4
    sends do not outrank 300 out of 10,000."""
    if sends <= 0:
        return 0.0
    p, z2 = clicks / sends, WILSON_Z**2
    centre = p + z2 / (2 * sends)
    margin = WILSON_Z * math.sqrt(p * (1 - p) / sends + z2 / (4 * sends * sends))
    return max(0.0, (centre - margin) / (1 + z2 / sends))


def combined(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One copy's result rows (several dates or sends) as one result: counts are summed where every row has them
    (else unknown); the CTR is clicks over sends where every row has both, else the send-weighted mean of the rows'
    CTRs (a plain mean where a row has no sends). `counted` says whether clicks and sends stand behind the CTR."""
    rows = list(rows)

    def total(key: str) -> int | None:
        values: list[Any] = [r.get(key) for r in rows]
        if not values or any(v is None for v in values):
            return None
        return sum(int(v) for v in values)

    sends, clicks = total("sends"), total("clicks")
    ctr: float | None
    if sends and clicks is not None:
        ctr = clicks / sends
    else:
        rated = [(r["ctr"], r.get("sends") or 0) for r in rows if r.get("ctr") is not None]
        weight = sum(w for _, w in rated)
        if not rated:
            ctr = None
        elif weight and all(w for _, w in rated):
            ctr = sum(c * w for c, w in rated) / weight
        else:
            ctr = sum(c for c, _ in rated) / len(rated)
    counted = bool(sends) and clicks is not None
    return {"sends": sends, "clicks": clicks, "conversions": total("conversions"), "ctr": ctr, "counted": counted}


COUNTS = ("sends", "clicks", "ctr", "conversions")  # what a results row may give or lack


class OutcomeRecords(StoreBase):
    """The store's records of campaign results: part of `Store`."""

    def result_targets(self) -> Targets:
        """Every candidate's text, and which candidates have each exact text: their own, an edit's, or their framed
        message's (a pasted SMS with its (광고) line names the copy inside it)."""
        with self._lock:
            candidates = self.db.execute("select id, text from candidates").fetchall()
            edits = self.db.execute("select candidate_id, edited_text from edits").fetchall()
            messages = self.db.execute("select id, message, text from candidates where message != ''").fetchall()
        by_text: dict[str, list[tuple[int, str]]] = {}
        for cid, text in [*candidates, *edits]:
            by_text.setdefault(same_text(text), []).append((int(cid), str(text)))
        for cid, message, text in messages:  # what went out is the copy the model wrote
            by_text.setdefault(same_text(message), []).append((int(cid), str(text)))
        return Targets(text_of={int(c): str(t) for c, t in candidates}, by_text=by_text)

    def record_outcomes(self, rows: Iterable[dict[str, Any]], *, source: str) -> tuple[int, int]:
        """Write validated outcome rows in one transaction (all or none); a row for a candidate and date already
        recorded replaces its values, except those the new row lacks, which are kept (a re-import never loses a
        count). Returns (new, updated); `completed_outcomes` tells how many updates only filled in what was
        missing."""
        new, updated, _ = self.import_outcomes(rows, source=source)
        return new, updated

    def import_outcomes(self, rows: Iterable[dict[str, Any]], *, source: str) -> tuple[int, int, int]:
        """`record_outcomes`, also counting the rows completed: an update that only fills in values the recorded
        row lacked, or a dated row of the same file that dates the undated row it had written (the file imported
        again with its date column read). Returns (new, updated, completed); completed rows count as updated."""
        new = updated = completed = 0
        now = self.now()
        with self._atomic() as db:
            for row in rows:
                request = db.execute("select request_id from candidates where id = ?", [row["candidate_id"]]).fetchone()
                if request is None:  # deleted since the file was checked: the transaction rolls back
                    raise ValueError(f"candidate {row['candidate_id']} no longer exists")
                values = {
                    k: row.get(k)
                    for k in ("candidate_id", "text", "sends", "clicks", "ctr", "conversions", "date", "line")
                }
                values.update(request_id=request[0], source=source, imported_at=now)
                where = "candidate_id = ? and (date = ? or (date = '' and source = ?))"
                found = list(
                    db.table("outcomes").rows_where(
                        where, [row["candidate_id"], row["date"], source], order_by="date desc", limit=1
                    )
                )
                if not found:
                    db.table("outcomes").insert(values)
                    new += 1
                    continue
                old = found[0]
                merged = {k: (old[k] if v is None and k in COUNTS else v) for k, v in values.items()}
                filled = [k for k in (*COUNTS, "date") if old[k] in (None, "") and merged[k] not in (None, "")]
                changed = [k for k in (*COUNTS, "text") if old[k] not in (None, "") and merged[k] != old[k]]
                db.table("outcomes").update(old["id"], merged)
                updated += 1
                completed += bool(filled) and not changed
        return new, updated, completed

    def outcomes(self) -> list[Row]:
        """Every outcome row, oldest import first."""
        with self._lock:
            return list(self.db.table("outcomes").rows_where(order_by="id"))

    def remove_outcomes(self, source: str, *, dry_run: bool = False) -> int:
        """Delete the result rows imported from the file named `source` (a wrong file, or rows a corrected file
        cannot replace because their date or copy changed); returns how many there were."""
        with self._atomic() as db:
            count = int(db.execute("select count(*) from outcomes where source = ?", [source]).fetchone()[0])
            if not dry_run:
                db.execute("delete from outcomes where source = ?", [source])
        return count

    def best_performers(self, start: str = "", end: str = "", limit: int = BEST_PERFORMERS) -> list[Row]:
        """Sent copies with the best CTR, each with its brief and all its results `combined`, ranked by the lower
        end of the CTR's confidence interval where clicks and sends stand behind it (else by the CTR itself, after
        those). With [start, end) (UTC ISO), only copies with results imported in that span: each week's report
        shows the results that arrived that week, whenever the campaign ran. Clicks and sends are given only where
        they stand behind the CTR shown."""
        where, args = "", []
        if start or end:
            where = (
                "where o.candidate_id in (select candidate_id from outcomes where imported_at >= ? and imported_at < ?)"
            )
            args = [start or "0000", end or "9999"]
        columns = (
            "candidate_id",
            "text",
            "sends",
            "clicks",
            "ctr",
            "conversions",
            "date",
            "product",
            "age_group",
            "channel",
        )
        with self._lock:
            found = self.db.execute(
                "select o.candidate_id, o.text, o.sends, o.clicks, o.ctr, o.conversions, o.date, r.product, "
                f"r.age_group, r.channel from outcomes o join requests r on r.id = o.request_id {where} "
                "order by o.id",
                args,
            ).fetchall()
        rows_of: dict[int, list[Row]] = {}
        for values in found:
            row = dict(zip(columns, values, strict=True))
            rows_of.setdefault(int(row["candidate_id"]), []).append(row)
        out = []
        for cid, rows in rows_of.items():
            result = combined(rows)
            if result["ctr"] is None:
                continue
            counted = result.pop("counted")
            rank = (1, wilson_lower(result["clicks"], result["sends"])) if counted else (0, result["ctr"])
            if not counted:
                result["clicks"] = None  # a click count that is not behind the CTR shown would contradict it
            last = rows[-1]
            out.append(
                (
                    rank,
                    {
                        "candidate_id": cid,
                        "text": last["text"],
                        **result,
                        "ctr": round(result["ctr"], 6),
                        "date": max(r["date"] for r in rows),
                        "product": last["product"],
                        "age_group": last["age_group"],
                        "channel": last["channel"],
                    },
                )
            )
        out.sort(key=lambda pair: (-pair[0][0], -pair[0][1], pair[1]["candidate_id"]))
        return [row for _, row in out[:limit]]

    def outcome_counts(self) -> dict[str, int]:
        """Result rows, and the candidates they cover."""
        with self._lock:
            rows, copies = self.db.execute("select count(*), count(distinct candidate_id) from outcomes").fetchone()
        return {"result_rows": int(rows), "copies_with_results": int(copies)}
