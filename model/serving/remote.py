"""The remote backend: the writer's `Backend` over a GPU host's API, with the in-process engine's `use_adapter`.

Prompts are built here, on the bot's host, exactly as the in-process engine builds them: the plain template for
the starter model, or the base model's chat template, for which only the tokenizer files are needed locally.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from model.serving.client import ModelClient, ModelHostError
from model.writing.brief import Brief
from model.writing.prompt import render_prompt
from model.writing.sampling import scaled_temperature

log = logging.getLogger(__name__)


class RemoteBackend:
    """Generates through `client`. The host's base model id is asked for on first use (the `/v1/models` entry
    without a parent), so the bot starts even while the host is down and needs no extra setting."""

    def __init__(
        self, client: ModelClient, *, tokenizer: Any = None, features_client: ModelClient | None = None
    ) -> None:
        self.client = client
        # where the reward's features come from: the same host, or a copybot model-server beside a vLLM host
        self.features_client = features_client or client
        self.tokenizer = tokenizer
        self._base: str | None = None
        self._selected: str | None = None  # an adapter version, or None for the base model
        self._lock = threading.Lock()
        self._scales: dict[str, float] = {}  # version -> its saved temperature factor (set_temperature_scale)
        self._host_scaled: dict[str, bool] = {}  # version -> whether the host applies the factor itself

    def set_temperature_scale(self, version: str, scale: float) -> None:
        """The temperature factor a retrain saved with `version` (copybot.json's decoding.temperature_scale): the
        same adapter must sample alike whoever serves it. A host that lists the version with a
        `temperature_scale` of its own (copybot model-server) applies it; for any other host (vLLM) this backend
        multiplies the temperature it sends."""
        self._scales[version] = scale

    def _listed(self) -> list[dict[str, Any]]:
        """The host's models, noting on the way which versions it applies a temperature factor to itself."""
        models = self.client.models()
        self._host_scaled.update({str(m["id"]): "temperature_scale" in m for m in models})
        return models

    def _scale_here(self, name: str) -> float:
        scale = self._scales.get(name, 1.0)
        if scale == 1.0:
            return 1.0
        if name not in self._host_scaled:
            self._listed()
        return 1.0 if self._host_scaled.get(name, False) else scale

    @property
    def base_version(self) -> str:
        """The host's id for the bare base model."""
        if self._base is None:
            models = self._listed()
            bases = [m["id"] for m in models if not m.get("parent")] or [m["id"] for m in models]
            if not bases:
                raise ModelHostError("server", f"the model host at {self.client.root} lists no models")
            self._base = str(bases[0])
        return self._base

    @property
    def version(self) -> str:
        """The host's model id the next request goes to (recorded on every candidate)."""
        return self._selected or self.base_version

    def prompt_for(self, brief: Brief, register: str) -> str:
        """The same prompt the in-process engine would build for this base model."""
        return render_prompt(brief, register, self.tokenizer)

    def complete(self, prompts: list[str], *, model: str | None = None, **kwargs: Any) -> list[str]:
        """Completions from `model` (an adapter version the host serves), or from the model now selected. The
        OpenAI completions API has no way to name copies to keep apart from, so `avoid` is not sent: each call's
        candidates are kept apart only as the host keeps a batch apart."""
        kwargs.pop("avoid", None)
        name = model or self.version
        scale = self._scale_here(name)
        if scale != 1.0 and "temperature" in kwargs:
            kwargs["temperature"] = scaled_temperature(kwargs["temperature"], scale)
        try:
            return self.client.complete(prompts, model=name, **kwargs)
        except ModelHostError as exc:
            if exc.kind == "not_found":
                exc.args = (
                    f"{exc}; the host does not serve {name!r}: check that the adapter was loaded (copybot model promote VERSION loads "
                    "it again)",
                )
            raise

    def features(self, prompts: list[str], texts: list[str]) -> list[list[float]]:
        """The learned reward's features of each copy, from the host's bare base model (`POST /v1/embeddings` with
        each copy's prompt): the same numbers the in-process engine computes, so the bot reranks alike wherever
        the model is served. Raises ModelHostError when the host gives none (vLLM serves no such features; see
        docs/gpu-host.md)."""
        if self.features_client is not self.client:  # its own base name, which a vLLM host may spell otherwise
            bases = [m["id"] for m in self.features_client.models() if not m.get("parent")]
            return self.features_client.embeddings(
                texts, model=str(bases[0]) if bases else self.base_version, prompts=prompts
            )
        return self.client.embeddings(texts, model=self.base_version, prompts=prompts)

    def add_adapter(self, adapter_path: str | Path, version: str) -> None:
        """Make sure the host serves `version` (loading it by its path there if not), without selecting it."""
        with self._lock:
            if version not in {m["id"] for m in self._listed()}:
                self.client.load_adapter(version, str(adapter_path))

    def use_adapter(self, adapter_path: str | Path | None, version: str) -> None:
        """Select an adapter by version (loading it on the host, by its path there, if the host lacks it), or the
        base model when `adapter_path` is None."""
        with self._lock:
            if adapter_path is None:
                self._selected = None
            else:
                loaded = {m["id"] for m in self._listed()}
                if version not in loaded:
                    self.client.load_adapter(version, str(adapter_path))
                self._selected = version
        log.info("the model host now serves %s to this bot", self.version)


def load_tokenizer(base_model: str, *, uses_starter: bool) -> Any:
    """The base model's tokenizer for its chat template, or None for the starter (it uses the plain template).

    Raises ModelUnavailableError with the fix when the files cannot be read on this host."""
    if uses_starter:
        return None
    from transformers import AutoTokenizer

    from model.errors import ModelUnavailableError

    try:
        return AutoTokenizer.from_pretrained(base_model)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(
            f"cannot load the tokenizer of COPYBOT_BASE_MODEL={base_model} on this host ({exc}); the bot builds "
            "prompts with it. Copy the model's tokenizer files to a local folder and set COPYBOT_BASE_MODEL to it, "
            "or let this host reach the Hugging Face Hub",
            user_message="모델 설정에 문제가 있어요. 운영자에게 알려 주세요.",
        ) from exc
