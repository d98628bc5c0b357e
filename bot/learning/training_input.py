"""What a retrain reads from the store, in the shapes model/training takes: each request's brief with its rated
candidates (reactions, edits, the used mark, summed campaign results), and a corpus that is never empty."""

from __future__ import annotations

from typing import Any

from bot.corpus_io import STARTER_MAPPING, language_checks, starter_corpus_path
from model.training.feedback import RatedCandidate, RatedRequest
from model.training.outcomes import Outcome
from model.writing.brief import SUBJECT, brief_fields
from storage import Store
from storage.corpus import prepare_import
from storage.outcomes import combined


def rated_requests(store: Store) -> list[RatedRequest]:
    """The store's feedback as the dataset builder's input."""
    out = []
    for row in store.rated_requests():
        candidates = tuple(_rated_candidate(c) for c in row["candidates"])
        brief = brief_fields(row, SUBJECT)
        out.append(RatedRequest(int(row["id"]), row["created_at"], brief, candidates))
    return out


def _rated_candidate(c: dict[str, Any]) -> RatedCandidate:
    """A candidate row of `Store.rated_requests` with its reactions, edits, used mark and summed results; when
    results name an edit of it, the text that went out is that edit (the latest result's)."""
    sent = [r["text"] for r in c["results"] if r["text"] != c["text"]]
    outcome = None
    if c["results"]:
        result = combined(c["results"])
        outcome = Outcome(result["sends"], result["clicks"], result["conversions"], result["ctr"])
    return RatedCandidate(c["text"], c["register"], c["up"], c["down"], c["win"], tuple(c["edits"]), used=c["used"],
                          outcome=outcome, sent_text=sent[-1] if sent else "")  # fmt: skip


def ensure_corpus(store: Store) -> None:
    """An empty corpus gets the starter corpus, through the same import path as a team's files."""
    if store.counts()["corpus"]:
        return
    rows, _ = prepare_import(
        starter_corpus_path(),
        checks=language_checks(),
        source="starter",
        overrides=STARTER_MAPPING,
        existing=store.stored_corpus_rows,
    )
    store.add_corpus_rows(rows)
