"""The in-process engine: a base causal LM plus an optional PEFT adapter, generating a batch in one call."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from model.brief import Brief
from model.diversity import SiblingBigramPenalty
from model.errors import AdapterError, ModelUnavailableError
from model.prompt import build_prompt
from model.registry import temperature_scale

log = logging.getLogger(__name__)

DIVERSITY_PENALTY = 2.0  # logit penalty on repeating a sibling candidate's bigram (model/diversity.py)
MAX_TEMPERATURE = 2.0  # the OpenAI API's ceiling; a calibrated adapter never samples hotter


def pick_device() -> str:
    """'cuda' when a GPU is visible, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class LocalEngine:
    """Loads a model once and serves batched completions from it; safe to share between threads."""

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
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

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
        # The adapter's calibrated temperature factor (model/candidate.py); 1.0 for the base model.
        self.temperature_scale = 1.0
        if adapter_path is not None:
            model = self._attach_adapter(model, Path(adapter_path))
            self.temperature_scale = temperature_scale(adapter_path)
        self.tokenizer.padding_side = "left"  # decoder-only batches must be padded on the left
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model.to(self.device).eval()
        self.version = version or (Path(adapter_path).name if adapter_path else f"base:{Path(str(model_path)).name}")
        # what `use_adapter(None, …)` returns to; named by the caller when it starts on the bare base
        self.base_version = self.version if adapter_path is None else f"base:{Path(str(model_path)).name}"
        # Sampling settings that the OpenAI completions API does not carry; they belong to the model host.
        self.top_k = top_k
        self.repetition_penalty = repetition_penalty
        self.diversity_penalty = diversity_penalty  # see model/diversity.py
        self.max_time_s = max_time_s  # a stuck or overloaded generate call stops here with what it has
        self._lock = threading.Lock()

    @staticmethod
    def _attach_adapter(model: Any, adapter_path: Path) -> Any:
        from peft import PeftModel

        if not (adapter_path / "adapter_config.json").is_file():
            raise AdapterError(f"adapter folder {adapter_path} has no adapter_config.json; it is not a PEFT adapter")
        try:
            return PeftModel.from_pretrained(model, str(adapter_path))
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise AdapterError(f"adapter at {adapter_path} could not be loaded: {exc}") from exc

    def use_adapter(self, adapter_path: str | Path | None, version: str) -> None:
        """Hot-swap the adapter (None: the bare base model) without reloading the base or restarting."""
        with self._lock:
            base = self.model.unload() if hasattr(self.model, "unload") else self.model  # strip the LoRA layers
            model = self._attach_adapter(base, Path(adapter_path)) if adapter_path is not None else base
            self.model = model.to(self.device).eval()
            self.version = version
            self.temperature_scale = temperature_scale(adapter_path) if adapter_path is not None else 1.0
        log.info("now serving %s%s", version,
                 f" (temperature x{self.temperature_scale:g})" if self.temperature_scale != 1 else "")  # fmt: skip

    def prompt_for(self, brief: Brief, register: str) -> str:
        """The prompt this engine's model expects for one candidate."""
        return build_prompt(brief, register, self.tokenizer)

    def complete(
        self,
        prompts: list[str],
        *,
        max_tokens: int = 96,
        temperature: float = 0.9,
        top_p: float = 0.95,
        seed: int | None = None,
        stop: list[str] | None = None,
    ) -> list[str]:
        """One completion per prompt, all prompts in one batched `generate` call."""
        import torch
        from transformers import LogitsProcessorList

        with self._lock, torch.inference_mode():
            temperature = min(MAX_TEMPERATURE, temperature * self.temperature_scale)
            if seed is not None:
                torch.manual_seed(seed)
            batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            processors = LogitsProcessorList()
            if temperature > 0 and self.diversity_penalty > 0 and len(prompts) > 1:
                processors.append(SiblingBigramPenalty(batch["input_ids"].shape[1] - 1, self.diversity_penalty))
            output = self.model.generate(
                **batch,
                logits_processor=processors,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_p=top_p if temperature > 0 else None,
                top_k=self.top_k or None,
                repetition_penalty=self.repetition_penalty,
                max_time=self.max_time_s,
                max_new_tokens=max_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [_cut_at_stop(t, stop) for t in texts]


def _cut_at_stop(text: str, stop: list[str] | None) -> str:
    for marker in stop or []:
        index = text.find(marker)
        if index >= 0:
            text = text[:index]
    return text
