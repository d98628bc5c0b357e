"""Generation as the application runs it: pick the backend, write candidates, and keep everything in the store."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.learning.trials import CHALLENGER, CHAMPION, Trials, split
from bot.settings import Settings
from model.errors import ModelSideError
from model.writing.brief import Brief
from model.writing.compliance import load_rules
from model.writing.frame import AdFrame
from model.writing.prompt import has_chat_template
from model.writing.rerank import Reranker
from model.writing.voice import BrandVoice
from model.writing.writer import Backend, CopyWriter, Generation
from storage import Store
from storage.base import Row

log = logging.getLogger(__name__)


def base_model_path(settings: Settings, *, progress: bool = False) -> str:
    """The base model to load: the starter folder (built first if needed), a fetched model's folder
    (`copybot model fetch`), or COPYBOT_BASE_MODEL as given (a folder, or a Hugging Face id)."""
    from model.errors import ModelUnavailableError
    from model.fetch import FETCHABLE, fetched_info

    if settings.uses_starter:
        from model.starter.build import ensure_starter

        return str(ensure_starter(settings.starter_dir, progress=progress))
    spec = FETCHABLE.get(settings.base_model)
    if spec is None:
        return settings.base_model
    folder = settings.models_dir / spec.name
    if fetched_info(folder, spec) is None:
        raise ModelUnavailableError(
            f"COPYBOT_BASE_MODEL={spec.name} is not fetched into {folder.parent} yet; run: "
            f"copybot model fetch {spec.name} {spec.accept_flag}",
            user_message="설정된 모델이 아직 설치되지 않았어요. 운영자에게 알려 주세요.",
        )
    return str(folder)


def model_client(settings: Settings, *, url: str | None = None, **options: Any) -> Any:
    """The HTTP client for COPYBOT_MODEL_URL (the caller checks that it is set), or for another host of the same
    key (COPYBOT_FEATURES_URL)."""
    from model.serving.client import ModelClient

    assert url or settings.model_url
    return ModelClient(url or settings.model_url or "", api_key=settings.model_api_key, **options)


def load_backend(
    settings: Settings, *, progress: bool = True, store: Store | None = None, batched: bool = False
) -> Backend:
    """The GPU host's API when COPYBOT_MODEL_URL is set; else the in-process engine on the configured base model,
    building the starter model first if needed. With a store, a trimmed output layer (a large vocabulary on CPU)
    also keeps every token of the team's corpus, its brand names among them. `batched`: calls from many threads
    share batches (model/writing/batching.py), as the bot's copy requests do; the GPU host batches on its own."""
    if settings.model_url:
        from model.serving.remote import RemoteBackend, load_tokenizer

        log.info("generating on the model host at %s", settings.model_url)
        source = settings.base_model if settings.uses_starter else base_model_path(settings)
        features = model_client(settings, url=settings.features_url) if settings.features_url else None
        return RemoteBackend(
            model_client(settings),
            tokenizer=load_tokenizer(source, uses_starter=settings.uses_starter),
            features_client=features,
        )
    from model.writing.engine import LocalEngine

    version = "starter" if settings.uses_starter else f"base:{settings.base_model}"
    texts = [r["text"] for r in store.corpus_rows()] if store is not None else []
    engine = LocalEngine(base_model_path(settings, progress=progress), version=version, vocabulary_texts=texts)
    if not batched:
        return engine
    from model.writing.batching import BatchingEngine

    return BatchingEngine(engine, window_ms=settings.batch_window_ms, max_batch=settings.max_batch)


def make_writer(settings: Settings, *, store: Store | None = None, batched: bool = False) -> CopyWriter:
    """A CopyWriter on the configured backend and compliance terms (read first: they fail fast and cheaply).

    With a store, the backend follows the store's active adapter version (see `ActiveAdapterBackend`)."""
    rules = load_rules(settings.compliance_terms)
    backend = load_backend(settings, store=store, batched=batched)
    if settings.voice_examples and not has_chat_template(getattr(backend, "tokenizer", None)):
        log.warning(
            "COPYBOT_VOICE_EXAMPLES=%d has no effect: %s has no chat template, and brand-voice examples are "
            "shown to instruct models only",
            settings.voice_examples,
            settings.base_model,
        )
    if store is not None:
        backend = ActiveAdapterBackend(
            backend, store, voice_examples=settings.voice_examples, base_model=settings.base_model
        )
    reranker = Reranker(reward_path(settings), settings.base_model) if settings.rerank else None
    return CopyWriter(backend, rules=rules, reranker=reranker, frame=AdFrame(settings.ad_sender, settings.ad_optout))


def untuned_base(settings: Settings, store: Store) -> str:
    """What to tell an operator when copies would come from a real base model as it is (no adapter has been made
    active on it yet), else "". A pretrained base continues a prompt with spec sheets, lists and product-page
    fragments as often as with copy; the starter is trained on the corpus already."""
    if settings.uses_starter or store.active_model_version() is not None:
        return ""
    return (
        f"{settings.base_model} has no adapter yet, so these copies come from the untuned base model, which writes "
        "spec sheets and lists as often as copy; run `copybot model starter-adapter` to fine-tune it on the corpus"
    )


def reward_path(settings: Settings) -> Path:
    """Where the reward model in force lives: COPYBOT_HOME/reward.json (a retrain replaces or removes it)."""
    return settings.home / "reward.json"


class ActiveAdapterBackend:
    """Wraps the in-process engine (or the remote backend) and, before a batch, hot-swaps to the store's active
    adapter when it changed, so `copybot model promote` or a retrain in another process takes effect without a
    restart; during a live trial it also holds the challenger, so that a call naming it writes with it."""

    def __init__(
        self,
        engine: Any,
        store: Store,
        *,
        check_every_s: float = 5.0,
        voice_examples: int = 0,
        base_model: str | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        # the base the engine serves (COPYBOT_BASE_MODEL): a version trained on another base is not loaded on it
        self.base_model = base_model
        self._refused: str | None = None  # the other base's version last refused, said once in the log
        self.check_every_s = check_every_s
        self._checked = float("-inf")
        self.challenger: str | None = None  # the running trial's challenger, once loaded
        self.voice_examples = voice_examples
        self._voice: tuple[int, BrandVoice] | None = None  # (train-split size it was built from, the voice)

    @property
    def version(self) -> str:
        """The version now serving."""
        return str(self.engine.version)

    def prompt_for(self, brief: Brief, register: str) -> str:
        """The engine's prompt, with the brief's brand-voice examples when they are on (COPYBOT_VOICE_EXAMPLES):
        the same examples a retrain puts in its training prompts for that brief (model/writing/voice.py)."""
        if self.voice_examples and not brief.examples:
            fields = {
                "product": brief.product,
                "event": brief.event,
                "age_group": brief.age_group,
                "channel": brief.channel,
            }
            brief = dataclasses.replace(brief, examples=self.voice().examples_for(fields))
        return str(self.engine.prompt_for(brief, register))

    def voice(self) -> BrandVoice:
        """The brand voice of the corpus's train split, rebuilt when an import changed its size."""
        size = self.store.corpus_size("train")
        if self._voice is None or self._voice[0] != size:
            self._voice = (size, BrandVoice(self.store.corpus_rows("train"), self.voice_examples))
        return self._voice[1]

    def sync(self, *, force: bool = False) -> None:
        """Swap to the active version if it differs from the one loaded (checked at most every few seconds)."""
        if not force and time.monotonic() - self._checked < self.check_every_s:
            return
        self._checked = time.monotonic()
        active = self._of_this_base(self.store.active_model_version())
        path, version = (active["adapter_path"], active["version"]) if active else (None, self.engine.base_version)
        if version != self.engine.version:
            if active:
                self._note_scale(active)
            self.engine.use_adapter(path, version)
        trial = self.store.running_trial()
        challenger = trial["challenger_version"] if trial else None
        if challenger and challenger != self.challenger:
            row = self._of_this_base(next((r for r in self.store.model_versions() if r["version"] == challenger), None))
            if row is not None and row["adapter_path"]:
                self._note_scale(row)
                self.engine.add_adapter(row["adapter_path"], challenger)
            else:
                challenger = None
        self.challenger = challenger

    def _of_this_base(self, row: Row | None) -> Row | None:
        """`row`, a model version, when it was trained on the base this engine serves; None (and a warning, once)
        when it was trained on another: its weights do not fit this base, and every request would fail."""
        if row is None or self.base_model is None or row["base_model"] == self.base_model:
            return row
        if self._refused != row["version"]:
            self._refused = row["version"]
            version, other, here = row["version"], row["base_model"], self.base_model
            log.warning(
                f"version {version} was trained on {other}, not on the configured base {here} (COPYBOT_BASE_MODEL); "
                f"serving {here} alone: set COPYBOT_BASE_MODEL={other}, or promote a version of {here} "
                "(`copybot model list`)"
            )
        return None

    def _note_scale(self, row: Row) -> None:
        """A remote backend is told the version's temperature factor from the store (the in-process engine reads
        it from the adapter's own folder)."""
        if hasattr(self.engine, "set_temperature_scale"):
            metrics = json.loads(row.get("metrics") or "{}")
            self.engine.set_temperature_scale(
                row["version"], float(metrics.get("new", {}).get("temperature_scale", 1.0))
            )

    def __getattr__(self, name: str) -> Any:
        if name == "features" and hasattr(self.engine, "features"):  # the reranker's features: the in-process
            return self.engine.features  # engine's, or a remote host's /v1/embeddings
        raise AttributeError(name)

    def complete(self, prompts: list[str], **kwargs: Any) -> list[str]:
        """Sync, then generate."""
        self.sync()
        result: list[str] = self.engine.complete(prompts, **kwargs)
        return result


def write_brief(
    store: Store, writer: CopyWriter, brief: Brief, *, seed: int | None = None, ordinal: int = 0
) -> tuple[Generation, int | None]:
    """Write a brief as the bot serves it now: during a live trial, the champion and the challenger each write part
    of the candidates (the larger part alternating by `ordinal`, e.g. the request id). Returns the generation and
    the trial's id (None when no trial took part)."""
    backend = writer.backend
    if store.running_trial() is not None:
        Trials(store).check()  # reactions that have settled since the last one may make a look due
    trial = store.running_trial()
    if trial is None or not isinstance(backend, ActiveAdapterBackend):
        return writer.write(brief, seed=seed), None
    backend.sync(force=True)  # a trial's versions must be exactly the store's: champion and challenger
    if backend.challenger != trial["challenger_version"]:
        log.warning(
            "trial %s: challenger %s could not be loaded; writing with the champion alone",
            trial["id"],
            trial["challenger_version"],
        )
        return writer.write(brief, seed=seed), None
    names = {CHAMPION: backend.version, CHALLENGER: trial["challenger_version"]}
    versions = [names[side] for side in split(brief.n, ordinal)]
    return writer.write(brief, seed=seed, versions=versions), int(trial["id"])


@dataclass(frozen=True)
class StoredGeneration:
    """A stored request with its generation result and candidate ids (rank order)."""

    request_id: int
    generation: Generation
    candidate_ids: list[int]
    trial_id: int | None = None  # the live trial the request was written for, if any


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
    return write_and_store(store, writer, brief, request_id, seed=seed)


def write_and_store(
    store: Store,
    writer: CopyWriter,
    brief: Brief,
    request_id: int,
    *,
    seed: int | None = None,
    queue_ms: int | None = None,
) -> StoredGeneration:
    """Write a recorded request's candidates as the bot serves it now (`write_brief`) and save them, the request
    then done; any failure is stored on the request (a model's in its words, anything else as its repr) and
    re-raised. The one path from a request to its stored candidates, for the CLI and the Slack job alike."""
    store.mark_request_running(request_id, queue_ms=queue_ms)
    try:
        generation, trial_id = write_brief(store, writer, brief, seed=seed, ordinal=request_id)
    except Exception as exc:
        store.fail_request(request_id, error=str(exc) if isinstance(exc, ModelSideError) else repr(exc))
        raise
    ids = store.save_candidates(
        request_id,
        [c.as_dict() for c in generation.candidates],
        model_version=generation.model_version,
        generate_ms=generation.elapsed_ms,
        trial_id=trial_id,
    )
    return StoredGeneration(request_id, generation, ids, trial_id)
