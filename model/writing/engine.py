"""The in-process engine: a base causal LM plus an optional PEFT adapter, generating a batch in one call."""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.adapter_info import temperature_scale
from model.errors import AdapterError, ModelUnavailableError
from model.locks import TurnLock
from model.writing.brief import Brief
from model.writing.decoding import decodable
from model.writing.diversity import SiblingBigramPenalty
from model.writing.prompt import end_of_copy_ids, render_prompt
from model.writing.sampling import (
    EarlyAnswers,
    Job,
    RowLimits,
    RowSampler,
    RowSampling,
    job_rows,
    row_spans,
    scaled_temperature,
)

if TYPE_CHECKING:
    from model.vocab import CompactGeneration
    from model.writing.decoding import Decoding

log = logging.getLogger(__name__)

DIVERSITY_PENALTY = 2.0  # logit penalty on repeating a sibling candidate's bigram (model/writing/diversity.py)
MAX_ADAPTERS = 8  # adapters held in memory at once; the least recently used beyond this is dropped


def pick_device() -> str:
    """'cuda' when a GPU is visible, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class LocalEngine:
    """Loads a base model once and serves batched completions from it, with any number of LoRA adapters loaded by
    version name (a live trial writes with two); safe to share between threads."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        adapter_path: str | Path | None = None,
        version: str | None = None,
        device: str | None = None,
        top_k: int = 0,
        repetition_penalty: float = 1.0,
        diversity_penalty: float = DIVERSITY_PENALTY,
        max_time_s: float = 60.0,
        vocabulary_texts: Sequence[str] = (),
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from model.vocab import CompactGeneration, should_trim, trim_output_layer

        self.device = device or pick_device()
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_path))
            model: Any = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=dtype)
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(
                f"cannot load the base model from {model_path}: {exc}; check COPYBOT_BASE_MODEL",
                user_message="모델을 불러오지 못했어요. 운영자에게 알려 주세요.",
            ) from exc
        self.vocabulary: dict[str, Any] | None = None  # what trimming kept (model/vocab.py), None when not trimmed
        self._space: CompactGeneration | None = None
        if should_trim(self.tokenizer, self.device):
            self.vocabulary = trim_output_layer(model, self.tokenizer, vocabulary_texts)
            self._space = CompactGeneration(model.get_output_embeddings())
            log.info("output layer trimmed to %s of %s tokens (CPU); outside: %s", self.vocabulary["kept"],
                     self.vocabulary["vocabulary"], self.vocabulary["outside"])  # fmt: skip
        self.tokenizer.padding_side = "left"  # decoder-only batches must be padded on the left
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.stop_ids = end_of_copy_ids(self.tokenizer)  # a chat model's end of turn as well as end of sequence
        self._model: Any = model.to(self.device).eval()  # a PeftModel once the first adapter is loaded
        # loaded adapter name -> its folder, least recently used first (moved in one step: read without the lock)
        self._adapters: OrderedDict[str, Path] = OrderedDict()
        # PEFT keys adapters by attribute name, so a version called "eval" would clash with Module.eval: each
        # loaded version gets a neutral key of its own.
        self._keys: dict[str, str] = {}
        self._loads = 0
        self._scales: dict[str, float] = {}  # name -> calibrated temperature factor (model/training/challenger.py)
        # what `use_adapter(None, …)` returns to; named by the caller when it starts on the bare base
        self.base_version = version if adapter_path is None and version else f"base:{Path(str(model_path)).name}"
        self.version = self.base_version
        self._default: str | None = None  # the adapter that serves when a call names none (None: the base)
        # Sampling settings that the OpenAI completions API does not carry; they belong to the model host.
        self.top_k = top_k
        # transformers' repetition penalty also counts a row's left padding (the pad token); off (1.0) by default,
        # and left off wherever a batched row must write what it writes alone
        self.repetition_penalty = repetition_penalty
        self.diversity_penalty = diversity_penalty  # see model/writing/diversity.py
        self.max_time_s = max_time_s  # a stuck or overloaded generate call stops here with what it has
        self._lock = TurnLock()  # taken in turn: a decoding takes it for every step
        self._selected: tuple[str | None, ...] = ()  # (the selected adapter,); () when unknown (after a load)
        # a decoding's cache grows row by row only on models whose cache layers are all plain (no sliding window)
        self._continuous = self._space is None and decodable(self._model)  # model/writing/decoding.py
        # the forward pass's name for the KV cache: "cache" since transformers 5.2x, "past_key_values" before
        self.cache_argument = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        if adapter_path is not None:
            self.use_adapter(adapter_path, version or Path(adapter_path).name)

    @property
    def model(self) -> Any:
        """The model as the default version sees it (evaluation reads log-probabilities from it). Between the steps
        of a continuous batch (model/writing/decoding.py) another adapter may be selected: an engine that serves
        batches is read through its own methods, which select what they need."""
        return self._model

    @property
    def temperature_scale(self) -> float:
        """The default version's factor on the sampling temperature (1.0 unless calibrated)."""
        return self._scales.get(self._default or "", 1.0)

    @temperature_scale.setter
    def temperature_scale(self, value: float) -> None:
        self._scales[self._default or ""] = value  # "" is the bare base model

    def loaded_adapters(self) -> list[str]:
        """Names of the adapters held in memory."""
        return list(self._adapters)

    def _load(self, adapter_path: Path, name: str) -> None:
        """Load a PEFT adapter under `name` (again if its folder changed), evicting the least recently used one
        beyond MAX_ADAPTERS. Called with the lock held."""
        from peft import PeftModel

        if not (adapter_path / "adapter_config.json").is_file():
            raise AdapterError(f"adapter folder {adapter_path} has no adapter_config.json; it is not a PEFT adapter")
        if self._adapters.get(name) == adapter_path:
            self._adapters.move_to_end(name)  # most recently used now
            self._scales[name] = temperature_scale(adapter_path)  # re-read: a hot swap takes the recorded factor
            return
        if name in self._adapters:
            self._drop(name)
        self._loads += 1
        key = f"copybot_adapter_{self._loads}"
        try:
            if isinstance(self._model, PeftModel):
                self._model.load_adapter(str(adapter_path), adapter_name=key)
            else:
                self._model = PeftModel.from_pretrained(self._model, str(adapter_path), adapter_name=key)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise AdapterError(f"adapter at {adapter_path} could not be loaded: {exc}") from exc
        self._model = self._model.to(self.device).eval()
        self._selected = ()  # loading may have changed the active adapter
        self._adapters[name] = adapter_path
        self._keys[name] = key
        self._scales[name] = temperature_scale(adapter_path)
        for old in [n for n in self._adapters if n not in (name, self._default)][
            : max(0, len(self._adapters) - MAX_ADAPTERS)
        ]:
            self._drop(old)

    def _drop(self, name: str) -> None:
        """Remove a loaded adapter; the last one gone, the LoRA layers are stripped and the bare base remains."""
        self._adapters.pop(name, None)
        self._scales.pop(name, None)
        key = self._keys.pop(name)
        self._selected = ()
        if self._adapters:
            self._model.delete_adapter(key)
        else:
            self._model = self._model.unload()

    def _select(self, name: str | None) -> float:
        """Make `name` (an adapter, or None for the base) the one the model computes with; its temperature factor.
        Switching walks every LoRA layer, so a selection already in place is left as it is."""
        if name is not None and name not in self._keys:
            raise AdapterError(f"model {name!r} is no longer loaded here; loaded: {list(self._adapters)}")
        if self._selected != (name,):
            if name is None:
                if self._adapters:
                    self._model.base_model.disable_adapter_layers()
            else:
                self._model.base_model.enable_adapter_layers()
                self._model.set_adapter(self._keys[name])
            self._selected = (name,)
        if name is not None:  # in use: the last to be dropped when more adapters are loaded
            self._adapters.move_to_end(name)
        return self._scales.get(name if name is not None else "", 1.0)

    def _resolve(self, model: str | None) -> str | None:
        """A call's model name as an adapter name (None: the base model)."""
        if model is None:
            return self._default
        if model in self._adapters:
            return model
        if model in (self.base_version, self.version):  # the base model, by either of its names
            return None
        raise AdapterError(f"model {model!r} is not loaded here; loaded: {[self.base_version, *self._adapters]}")

    def add_adapter(self, adapter_path: str | Path, version: str) -> None:
        """Load an adapter so that calls naming `version` use it, without changing what serves by default."""
        with self._lock:
            self._load(Path(adapter_path), version)
            self._select(self._default)

    def remove_adapter(self, version: str) -> None:
        """Drop a loaded adapter; if it served by default, the bare base model does now."""
        with self._lock:
            if version not in self._adapters:
                return
            if self._default == version:
                self._default, self.version = None, self.base_version
            self._drop(version)
            self._select(self._default)

    def use_adapter(self, adapter_path: str | Path | None, version: str) -> None:
        """Hot-swap the default adapter (None: the bare base model) without reloading the base or restarting."""
        with self._lock:
            if adapter_path is not None:
                self._load(Path(adapter_path), version)
            else:
                self._scales[""] = 1.0  # the bare base model is never calibrated
            self._default = version if adapter_path is not None else None
            self.version = version
            self._select(self._default)
        log.info("now serving %s%s", version,
                 f" (temperature x{self.temperature_scale:g})" if self.temperature_scale != 1 else "")  # fmt: skip

    def features(self, prompts: list[str], texts: list[str], *, model: str | None = None) -> list[list[float]]:
        """The reward model's features of each copy (model/writing/reward_model.py), from the bare base model (the
        reward's), or from the adapter `model` names (the base model's names mean the base)."""
        from model.writing.reward_model import copy_features

        with self._lock:
            name = None if model is None else self.resolve(model)
            try:
                self._select(name)
                return copy_features(self._model, self.tokenizer, prompts, texts)
            finally:
                self._select(self._default)

    def _base(self) -> Any:
        """The transformers model under any PEFT wrapping."""
        return self._model.get_base_model() if hasattr(self._model, "get_base_model") else self._model

    def _compact_ids(self, ids: Any) -> Any:
        """The prompts' ids among the kept tokens when the head is trimmed and every prompt token is kept, else
        None (then generation runs over the whole vocabulary, the outside tokens still never chosen)."""
        return None if self._space is None else self._space.to_kept(ids)

    def prompt_for(self, brief: Brief, register: str) -> str:
        """The prompt this engine's model expects for one candidate."""
        return render_prompt(brief, register, self.tokenizer)

    def complete(
        self,
        prompts: list[str],
        *,
        max_tokens: int = 96,
        temperature: float = 0.9,
        top_p: float = 0.95,
        seed: int | None = None,
        stop: list[str] | None = None,
        model: str | None = None,
        avoid: Sequence[str] = (),
    ) -> list[str]:
        """One completion per prompt, all prompts in one batched `generate` call, by `model` (a loaded adapter's
        version, the base model's, or None for the default); `avoid` holds copies already in the set being
        written, whose wording the sibling penalty keeps these apart from too (model/writing/diversity.py)."""
        job = Job(list(prompts), max_tokens, temperature, top_p, seed, stop, avoid)
        return self.complete_batch([job], model=model)[0]

    def resolve(self, model: str | None) -> str | None:
        """The adapter a call naming `model` writes with (None: the base model); AdapterError when not loaded.
        Read without the lock, which a running batch holds for seconds: a call racing a hot swap gets the default
        from before or after it."""
        return self._resolve(model)

    def complete_batch(self, jobs: Sequence[Job], *, model: str | None = None,
                       on_done: Callable[[int, list[str]], None] | None = None) -> list[list[str]]:  # fmt: skip
        """Each job's completions, written together by `model` (as in `complete`). A job's texts depend on its own
        prompts, settings and seed, not on the jobs beside it (model/writing/sampling.py). `on_done(i, texts)` hears
        job i's texts as soon as its rows are finished, before the batch's longer rows are. On a trimmed CPU head,
        jobs whose prompts all lie in the kept tokens and jobs whose prompts do not are written in two calls, so
        that neither moves the other out of its token space."""
        import torch

        with self._lock, torch.inference_mode():
            name = self._resolve(model)
            try:
                scale = self._select(name)
                encoded = self._encode(jobs)
                texts: dict[int, list[str]] = {}
                for group in self._by_space(encoded):
                    done = None if on_done is None else lambda j, t, group=group: on_done(group[j], t)
                    written = self._generate([jobs[i] for i in group], [encoded[i] for i in group], scale, done)
                    texts.update(zip(group, written, strict=True))
            finally:
                self._select(self._default)  # the model attribute always shows the default version
        return [texts[i] for i in range(len(jobs))]

    def _encode(self, jobs: Sequence[Job]) -> list[list[list[int]]]:
        """Each job's prompts as token ids, with the tokenizer's special tokens as the trainers tokenize prompts
        (model/writing/prompt.py), in one tokenizer call. Never padded by the tokenizer: padding is a setting on
        the tokenizer shared by every thread, and a prompt rendered or a reply counted meanwhile on another thread
        resets it, so the batch would come back unpadded (`_padded` pads it here instead)."""
        flat = self.tokenizer([p for job in jobs for p in job.prompts])["input_ids"]
        return [flat[span.start : span.stop] for span in row_spans(len(job.prompts) for job in jobs)]

    def _padded(self, rows: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        """The rows left-padded to the longest (decoder-only batches are padded on the left): ids and mask."""
        import torch

        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _by_space(self, encoded: Sequence[Sequence[Sequence[int]]]) -> list[list[int]]:
        """The jobs' indices in groups that share a token space: one group unless the head is trimmed."""
        import torch

        if self._space is None:
            return [list(range(len(encoded)))]
        fits: dict[bool, list[int]] = {}
        for i, rows in enumerate(encoded):
            fits.setdefault(all(self._space.to_kept(torch.tensor(row)) is not None for row in rows), []).append(i)
        return list(fits.values())

    def _generate(self, jobs: Sequence[Job], encoded: Sequence[Sequence[Sequence[int]]], scale: float,
                  on_done: Callable[[int, list[str]], None] | None = None) -> list[list[str]]:  # fmt: skip
        """One `generate` call for the jobs' rows (their prompts' ids in `encoded`), each row sampled, limited and
        stopped on its job's terms; each job's texts go to `on_done` once its rows are finished. Called with the
        lock held and the adapter selected."""
        from transformers import LogitsProcessorList, StoppingCriteriaList

        full, mask = self._padded([row for rows in encoded for row in rows])
        compact = self._compact_ids(full)
        ids = full if compact is None else compact
        space = self._space if compact is not None else None
        processors = LogitsProcessorList()
        spans = row_spans(len(job.prompts) for job in jobs)
        rows: list[RowSampling] = []
        streams: list[Any] = []
        for job, span in zip(jobs, spans, strict=True):
            temperature = scaled_temperature(job.temperature, scale)
            sampling, own = job_rows(job, temperature, self.top_k)
            rows += sampling
            streams += own
            penalty = self.sibling_penalty(job, temperature, start=ids.shape[1] - 1, rows=span, space=space)
            if penalty is not None:
                processors.append(penalty)
        processors.append(RowSampler(rows, streams))
        lengths = [job.max_tokens for job in jobs for _ in job.prompts]
        cancelled = [job.cancelled for job in jobs for _ in job.prompts]
        stops = self.stop_ids if space is None else space.kept_ids(self.stop_ids)
        pad = self.tokenizer.pad_token_id

        def texts_of(j: int, tokens: Any) -> list[str]:
            """Job j's texts from its rows' new tokens (in the generation's token space)."""
            return self.texts_of(jobs[j], tokens if space is None else space.from_kept(tokens))

        watchers: list[Any] = [RowLimits(ids.shape[1], lengths, cancelled)]
        if on_done is not None:
            watchers.append(EarlyAnswers(ids.shape[1], spans, lengths, stops, lambda j, t: on_done(j, texts_of(j, t))))
        with space.active(self._base()) if space is not None else contextlib.nullcontext():
            output = self._model.generate(
                input_ids=ids,
                attention_mask=mask,
                logits_processor=processors,
                stopping_criteria=StoppingCriteriaList(watchers),
                do_sample=False,  # RowSampler has chosen each row's token; greedy takes it
                repetition_penalty=self.repetition_penalty,
                max_time=self.max_time_s * len(jobs),  # each request brings its own time budget to the batch
                max_new_tokens=max(lengths),
                pad_token_id=pad if space is None else space.kept_ids([pad])[0],
                eos_token_id=stops or None,
            )
        new = output[:, ids.shape[1] :]
        return [texts_of(j, new[span.start : span.stop]) for j, span in enumerate(spans)]

    def sibling_penalty(self, job: Job, temperature: float, *, start: int = 0, rows: range | None = None,
                        space: CompactGeneration | None = None) -> SiblingBigramPenalty | None:  # fmt: skip
        """The sibling penalty over a job's rows (model/writing/diversity.py), or None where it has nothing to do:
        a greedy job, one candidate with nothing to avoid, or the penalty turned off."""
        if temperature <= 0 or self.diversity_penalty <= 0 or (len(job.prompts) < 2 and not job.avoid):
            return None
        prior = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in job.avoid]
        if space is not None:
            prior = [space.kept_ids(p) for p in prior]
        return SiblingBigramPenalty(start, self.diversity_penalty, prior, rows=rows)

    def texts_of(self, job: Job, tokens: Any) -> list[str]:
        """A job's texts from its rows' new token ids, each cut at the job's first stop string."""
        return [_cut_at_stop(t, job.stop) for t in self.tokenizer.batch_decode(tokens, skip_special_tokens=True)]

    def decoding(self, model: str | None, answer: Callable[[Any, list[str]], None],
                 dropped: Callable[[Any], None]) -> Decoding | None:  # fmt: skip
        """A continuous batch written by `model` (as in `complete`; model/writing/decoding.py), or None where this
        engine writes only whole batches: a trimmed CPU head (jobs may need two token spaces), a repetition
        penalty (transformers applies it inside `generate`), or a model that is not `decodable`."""
        from model.writing.decoding import Decoding

        if not self._continuous or self.repetition_penalty != 1.0:
            return None
        return Decoding(self, self._resolve(model), answer, dropped)

    def weights_of(self, adapter: str | None) -> str | None:
        """Which loaded weights `adapter` names now (None: the base model); another after it is loaded again."""
        return None if adapter is None else self._keys.get(adapter)

    @contextlib.contextmanager
    def stepping(self, adapter: str | None, weights: str | None) -> Iterator[tuple[Any, float]]:
        """Hold the engine for one step of a decoding, with `adapter` selected: (the model, its temperature
        factor). The selection is left in place after the step, so that the next step need not make it again;
        whatever else uses the engine selects what it needs itself. AdapterError when the adapter is no longer
        the `weights` the decoding started with (unloaded, or loaded again from another folder): its cache was
        computed with those."""
        import torch

        with self._lock, torch.inference_mode():
            if self.weights_of(adapter) != weights:
                raise AdapterError(f"model {adapter!r} was unloaded or replaced while a batch was being written")
            yield self._model, self._select(adapter)

    def new_cache(self) -> Any:
        """An empty KV cache for a decoding's newcomers."""
        from transformers import DynamicCache

        return DynamicCache()


def _cut_at_stop(text: str, stop: list[str] | None) -> str:
    for marker in stop or []:
        index = text.find(marker)
        if index >= 0:
            text = text[:index]
    return text
