"""Real campaign results of sent candidates: what `copybot results import` writes and what stats, reports and
retraining read. Importing replaces a candidate's row for the same send date, so a corrected file can be
imported again."""

from __future__ import annotations

import math
from collections.abc import Iterable
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
        recorded replaces it. Returns (new, updated)."""
        new = updated = 0
        now = self.now()
        with self._atomic() as db:
            for row in rows:
                request = db.execute("select request_id from candidates where id = ?", [row["candidate_id"]]).fetchone()
                if request is None:  # deleted since the file was checked: the transaction rolls back
                    raise ValueError(f"candidate {row['candidate_id']} no longer exists")
                values = {**{k: row.get(k) for k in ("candidate_id", "text", "sends", "clicks", "ctr", "conversions",
                                                      "date", "line")},
                          "request_id": request[0], "source": source, "imported_at": now}  # fmt: skip
                found = db.execute("select id from outcomes where candidate_id = ? and date = ?",
                                   [row["candidate_id"], row["date"]]).fetchone()  # fmt: skip
                if found is None:
                    db.table("outcomes").insert(values)
                    new += 1
                else:
                    db.table("outcomes").update(found[0], values)
                    updated += 1
        return new, updated

    def outcomes(self) -> list[Row]:
        """Every outcome row, oldest import first."""
        with self._lock:
            return list(self.db.table("outcomes").rows_where(order_by="id"))

    def best_performers(self, start: str = "", end: str = "", limit: int = BEST_PERFORMERS) -> list[Row]:
        """Sent copies with the best CTR, each with its brief and all its results summed, ranked by the lower end of
        the CTR's confidence interval when sends are known (else by the CTR itself, after those). With [start, end)
        (UTC ISO), only copies with results imported in that span: each week's report shows the results that
        arrived that week, whenever the campaign ran."""
        where, args = "", []
        if start or end:
            where = ("where o.candidate_id in (select candidate_id from outcomes where imported_at >= ? and "
                     "imported_at < ?)")  # fmt: skip
            args = [start or "0000", end or "9999"]
        with self._lock:
            found = self.db.execute(
                "select o.candidate_id, o.text, sum(o.sends), sum(o.clicks), avg(o.ctr), sum(o.conversions), "
                "count(o.sends), count(o.clicks), count(*), max(o.date), r.product, r.age_group, r.channel "
                f"from outcomes o join requests r on r.id = o.request_id {where} "
                "group by o.candidate_id", args).fetchall()  # fmt: skip
        out = []
        for cid, text, sends, clicks, mean_ctr, conversions, n_sends, n_clicks, n, last, product, age, ch in found:
            counted = n_sends == n and n_clicks == n and sends
            ctr = clicks / sends if counted else mean_ctr
            if ctr is None:
                continue
            rank = (1, wilson_lower(clicks, sends)) if counted else (0, ctr)
            out.append((rank, {"candidate_id": cid, "text": text, "ctr": round(ctr, 6), "sends": sends,
                               "clicks": clicks, "conversions": conversions, "date": last, "product": product,
                               "age_group": age, "channel": ch}))  # fmt: skip
        out.sort(key=lambda pair: (-pair[0][0], -pair[0][1], pair[1]["candidate_id"]))
        return [row for _, row in out[:limit]]

    def outcome_counts(self) -> dict[str, int]:
        """Result rows, and the candidates they cover."""
        with self._lock:
            rows, copies = self.db.execute("select count(*), count(distinct candidate_id) from outcomes").fetchone()
        return {"result_rows": int(rows), "copies_with_results": int(copies)}
