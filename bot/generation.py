"""Generation as the application runs it: pick the backend, write candidates, and keep everything in the store."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from bot.settings import Settings
from model.brief import Brief
from model.compliance import load_rules
from model.errors import ModelSideError
from model.writer import Backend, CopyWriter, Generation
from storage import Store

log = logging.getLogger(__name__)


def base_model_path(settings: Settings, *, progress: bool = False) -> str:
    """The base model to load: the starter folder (built first if needed) or COPYBOT_BASE_MODEL."""
    if settings.uses_starter:
        from model.starter.build import ensure_starter

        return str(ensure_starter(settings.starter_dir, progress=progress))
    return settings.base_model


def model_client(settings: Settings, **options: Any) -> Any:
    """The HTTP client for COPYBOT_MODEL_URL (the caller checks that it is set)."""
    from model.client import ModelClient

    assert settings.model_url
    return ModelClient(settings.model_url, api_key=settings.model_api_key, **options)


def load_backend(settings: Settings, *, progress: bool = True) -> Backend:
    """The GPU host's API when COPYBOT_MODEL_URL is set; else the in-process engine on the configured base model,
    building the starter model first if needed."""
    if settings.model_url:
        from model.remote import RemoteBackend, load_tokenizer

        log.info("generating on the model host at %s", settings.model_url)
        return RemoteBackend(model_client(settings), tokenizer=load_tokenizer(settings.base_model,
                                                                              uses_starter=settings.uses_starter))  # fmt: skip
    from model.engine import LocalEngine

    version = "starter" if settings.uses_starter else f"base:{settings.base_model}"
    return LocalEngine(base_model_path(settings, progress=progress), version=version)


def make_writer(settings: Settings, *, store: Store | None = None) -> CopyWriter:
    """A CopyWriter on the configured backend and compliance terms (read first: they fail fast and cheaply).

    With a store, the backend follows the store's active adapter version (see `ActiveAdapterBackend`)."""
    rules = load_rules(settings.compliance_terms)
    backend = load_backend(settings)
    if store is not None:
        backend = ActiveAdapterBackend(backend, store)
    return CopyWriter(backend, rules=rules)


class ActiveAdapterBackend:
    """Wraps the in-process engine and, before a batch, hot-swaps to the store's active adapter when it changed,
    so `copybot model promote` or a retrain in another process takes effect without a restart."""

    def __init__(self, engine: Any, store: Store, *, check_every_s: float = 5.0) -> None:
        self.engine = engine
        self.store = store
        self.check_every_s = check_every_s
        self._checked = float("-inf")

    @property
    def version(self) -> str:
        """The version now serving."""
        return str(self.engine.version)

    def prompt_for(self, brief: Brief, register: str) -> str:
        """The engine's prompt."""
        return str(self.engine.prompt_for(brief, register))

    def sync(self, *, force: bool = False) -> None:
        """Swap to the active version if it differs from the one loaded (checked at most every few seconds)."""
        if not force and time.monotonic() - self._checked < self.check_every_s:
            return
        self._checked = time.monotonic()
        active = self.store.active_model_version()
        path, version = (active["adapter_path"], active["version"]) if active else (None, self.engine.base_version)
        if version != self.engine.version:
            self.engine.use_adapter(path, version)

    def complete(self, prompts: list[str], **kwargs: Any) -> list[str]:
        """Sync, then generate."""
        self.sync()
        result: list[str] = self.engine.complete(prompts, **kwargs)
        return result


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
