"""Model-side fixtures: the real starter engine and a registry with one real LoRA adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.writing.engine import LocalEngine


@pytest.fixture(scope="module")
def engine(starter_dir: Path) -> LocalEngine:
    return LocalEngine(starter_dir, version="starter")


@pytest.fixture(scope="module")
def adapters_root(tmp_path_factory: pytest.TempPathFactory, starter_dir: Path) -> Path:
    """A registry holding one real (randomly initialised, so visibly different) LoRA adapter, v0001."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from model.training.registry import AdapterRegistry

    root = tmp_path_factory.mktemp("adapters")
    lora = LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(starter_dir)), lora)
    AdapterRegistry(root).save("v0001", lambda folder: model.save_pretrained(str(folder)), {"parent": ""})
    return root
