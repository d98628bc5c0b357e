"""Generation as the application runs it: pick the backend, write candidates, and keep everything in the store."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.settings import Settings
from model.brief import Brief
from model.compliance import load_rules
from model.errors import ModelSideError
from model.writer import Backend, CopyWriter, Generation
from storage import Store

log = logging.getLogger(__name__)


def load_backend(settings: Settings, *, progress: bool = True) -> Backend:
    """The in-process engine on the configured base model, building the starter model first if needed."""
    from model.engine import LocalEngine

    if settings.uses_starter:
        from model.starter.build import ensure_starter

        path = ensure_starter(settings.starter_dir, progress=progress)
        return LocalEngine(path, version="starter")
    return LocalEngine(settings.base_model, version=f"base:{settings.base_model}")


def make_writer(settings: Settings) -> CopyWriter:
    """A CopyWriter on the configured backend and compliance terms (read first: they fail fast and cheaply)."""
    rules = load_rules(settings.compliance_terms)
    return CopyWriter(load_backend(settings), rules=rules)


@dataclass(frozen=True)
class StoredGeneration:
    """A stored request with its generation result and candidate ids (rank order)."""

    request_id: int
    generation: Generation
    candidate_ids: list[int]


def generate_and_store(
    store: Store,
    writer: CopyWriter,
    brief: Brief,
    *,
    source: str,
    user_id: str = "",
    seed: int | None = None,
) -> StoredGeneration:
    """Record the request, generate, and save the candidates; a failure is stored on the request and re-raised."""
    request_id = store.record_request(brief.as_dict(), source=source, user_id=user_id)
    store.mark_request_running(request_id)
    try:
        generation = writer.write(brief, seed=seed)
    except ModelSideError as exc:
        store.fail_request(request_id, error=str(exc))
        raise
    ids = store.save_candidates(
        request_id,
        [c.as_dict() for c in generation.candidates],
        model_version=generation.model_version,
        generate_ms=generation.elapsed_ms,
    )
    return StoredGeneration(request_id, generation, ids)
