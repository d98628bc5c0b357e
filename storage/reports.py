"""The figures of a weekly report, read from the store for a span of time given in UTC ISO strings.

Time zones and week numbering are the caller's (bot/report): the store only compares the UTC strings it wrote.
Current reactions are replayed from the feedback log (storage/scores.py), so a removed 👍 does not count.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from storage.base import Row
from storage.outcomes import OutcomeRecords
from storage.scores import Score, scores

TOP_EDITS = 5


def _share(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide (shown as "–", never as 0%)."""
    return round(part / whole, 4) if whole else None


def _flag_codes(stored: str | None) -> set[str]:
    return {str(flag).split(":")[0] for flag in json.loads(stored)} if stored else set()


class ReportQueries(OutcomeRecords):
    """Aggregates for `bot/report`; each method reads one span [start, end). Built on the campaign results'
    records, whose best performers the report shows."""

    def week_figures(self, start: str, end: str) -> dict[str, Any]:
        """Volume, reaction and win rates (overall and by age group, event and channel), register and flag shares,
        the top winning copies and the human edits of requests created in [start, end), and the best real
        performers among the campaign results imported in that span."""
        with self._lock:
            requests = self.db.execute(
                "select id, user_id, age_group, event, channel, product from requests "
                "where created_at >= ? and created_at < ?", [start, end]).fetchall()  # fmt: skip
            candidates = self.db.execute(
                "select c.id, c.request_id, c.text, c.register_ok, c.flags from candidates c join requests r "
                "on r.id = c.request_id where r.created_at >= ? and r.created_at < ?", [start, end]).fetchall()  # fmt: skip
            events = self._events(start, end)
            edits = self.db.execute(
                "select e.original_text, e.edited_text, r.product, r.age_group from edits e "
                "join requests r on r.id = e.request_id where e.created_at >= ? and e.created_at < ? "
                "order by e.id desc", [start, end]).fetchall()  # fmt: skip
        # a 📣 "sent" mark is a fact about a copy, not a reaction to it: the rates count ratings only
        current = {c: s for c, s in scores(events).items() if s.up or s.down or s.win}
        request_of = {int(c[0]): int(c[1]) for c in candidates}
        won = {request_of[c] for c, s in current.items() if s.win and c in request_of}
        groups: dict[str, dict[str, list[int]]] = {"age_group": {}, "event": {}, "channel": {}}
        for rid, _user, age, event, channel, _product in requests:
            for key, value in (("age_group", age), ("event", event or "상시"), ("channel", channel)):
                tally = groups[key].setdefault(value, [0, 0])
                tally[0] += 1
                tally[1] += int(rid) in won
        by_request = {int(r[0]): r for r in requests}
        winners = sorted(cid for cid, s in current.items() if s.win and cid in request_of)
        text_of = {int(c[0]): c[2] for c in candidates}
        return {
            "requests": len(requests),
            "candidates": len(candidates),
            "requesters": len({r[1] for r in requests if r[1]}),
            "reacted_candidates": sum(1 for cid in current if cid in request_of),
            "reaction_rate": _share(sum(1 for cid in current if cid in request_of), len(candidates)),
            "win_rate": _share(len(won), len(requests)),
            "win_rate_by": {
                key: {value: {"requests": n, "won": w, "rate": _share(w, n)} for value, (n, w) in sorted(tally.items())}
                for key, tally in groups.items()
            },
            "register_match": _share(sum(int(c[3] or 0) for c in candidates), len(candidates)),
            "flagged": _share(sum(1 for c in candidates if c[4] and json.loads(c[4])), len(candidates)),
            # candidates carrying each kind of flag (the code before the colon of "code: 'term' — why")
            "flag_codes": dict(Counter(code for c in candidates for code in _flag_codes(c[4]))),
            # every copy picked as a winner, oldest first: the report ranks them (bot/report/build.py)
            "winning_copies": [
                _winner(cid, text_of[cid], current[cid], by_request[request_of[cid]]) for cid in winners
            ],
            "edits": [
                {"original": e[0], "edited": e[1], "product": e[2], "age_group": e[3]} for e in edits[:TOP_EDITS]
            ],
            "edit_count": len(edits),
            "best_performers": self.best_performers(start, end),
        }

    def weekly_series(self, bounds: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Requests and win rate for each [start, end) span, for the trend chart (two queries per span)."""
        return [{"start": start, **self._volume(start, end)} for start, end in bounds]

    def _volume(self, start: str, end: str) -> dict[str, Any]:
        with self._lock:
            total = self.db.execute("select count(*) from requests where created_at >= ? and created_at < ?",
                                    [start, end]).fetchone()[0]  # fmt: skip
            events = self._events(start, end, wins_only=True)
        request_of = {int(e["candidate_id"]): int(e["request_id"]) for e in events}
        won = {request_of[c] for c, s in scores(events).items() if s.win}
        return {"requests": int(total), "win_rate": _share(len(won), int(total))}

    def _events(self, start: str, end: str, *, wins_only: bool = False) -> list[Row]:
        """Feedback events on requests created in [start, end), in the shape `storage.scores` replays."""
        columns = ("id", "candidate_id", "request_id", "user_id", "action", "signal", "event_ts")
        only = "f.signal = 'win' and " if wins_only else ""
        rows = self.db.execute(
            f"select {', '.join('f.' + c for c in columns)} from feedback_events f join requests r "
            f"on r.id = f.request_id where {only}r.created_at >= ? and r.created_at < ?", [start, end])  # fmt: skip
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def training_run_between(self, start: str, end: str) -> Row | None:
        """The latest training run started in [start, end), with its JSON fields decoded."""
        return self._latest_run("started_at >= ? and started_at < ?", [start, end])

    def training_run(self, run_id: int) -> Row | None:
        """One training run by id, with its JSON fields decoded."""
        return self._latest_run("id = ?", [run_id])

    def latest_training_run(self) -> Row | None:
        """The most recent training run of any kind, with its JSON fields decoded."""
        return self._latest_run(None, [])

    def _latest_run(self, where: str | None, args: list[Any]) -> Row | None:
        with self._lock:
            rows = list(self.db.table("training_runs").rows_where(where, args, order_by="id desc", limit=1))
        if not rows:
            return None
        run = dict(rows[0])
        for key in ("dataset_summary", "hyperparameters", "metrics", "gate_reasons"):
            run[key] = json.loads(run[key]) if run.get(key) else None
        return run


def _winner(candidate_id: int, text: str, score: Score, request: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": candidate_id, "text": text, "up": score.up, "down": score.down, "win": score.win,
            "product": request[5], "age_group": request[2], "channel": request[4]}  # fmt: skip
