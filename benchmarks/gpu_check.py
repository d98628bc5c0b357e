"""GPU check of the model server with a model of real size: a randomly initialised Qwen2.5-1.5B-shaped network
(a GPU host may reach no hub), served in bf16 by our FastAPI server and called over HTTP by the bot's client.

Reports latency (p50/p95), requests and generated tokens per second for 5 candidates of 60 tokens at concurrency
1, 4, 16 and 64, how long sixteen requests sent at the same moment take against one alone (issue 19), and the time
to hot-swap a LoRA adapter (r 16, all linear layers). Run it through benchmarks/gpu_check.sh, which installs what
is missing and bounds the run; `--tiny` runs the same path with a toy config on CPU (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.concurrency import burst, closed_loop, p95

N, TOKENS = 5, 60
QWEN25_15B = {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
              "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768,
              "tie_word_embeddings": True, "rope_theta": 1000000.0}  # fmt: skip
TINY = {**QWEN25_15B, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2}  # fmt: skip


def build_base(folder: Path, shape: dict[str, Any]) -> None:
    """Save a random Qwen2 model and a tokenizer (trained in seconds on the bundled corpus) as a loadable folder."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from model.starter.build import StarterRecipe, train_tokenizer
    from model.starter.corpus import load_corpus

    tokenizer = train_tokenizer([r["text"] for r in load_corpus()], StarterRecipe())
    config = Qwen2Config(**shape, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build_adapter(base: Path, registry_root: Path) -> None:
    """A random (non-zero) LoRA adapter, r 16 on all linear layers, saved in the registry as v0001."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from model.training.registry import AdapterRegistry

    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)), lora)
    AdapterRegistry(registry_root).save("v0001", lambda f: model.save_pretrained(str(f)), {"parent": ""})


def measure(url: str, prompt: str, concurrency: int, requests: int, model: str = "base") -> dict[str, float]:
    """Latency percentiles and generated tokens per second for `requests` calls at `concurrency`."""
    body = {"model": model, "prompt": [prompt] * N, "max_tokens": TOKENS, "temperature": 0.8, "top_p": 0.95}
    latencies, wall = closed_loop(lambda i: _post(url, {**body, "seed": i}), concurrency, requests)
    # a random model almost never samples its end token, so each candidate runs to max_tokens; counting them so
    # also avoids re-tokenising text that the small tokenizer cannot spell for most of the vocabulary
    tokens = requests * N * TOKENS
    return {"concurrency": concurrency, "requests": requests, "p50_s": round(statistics.median(latencies), 3),
            "p95_s": round(p95(latencies), 3), "tokens_per_s": round(tokens / wall, 1),
            "requests_per_s": round(requests / wall, 2)}  # fmt: skip


def sixteen_at_once(url: str, prompt: str) -> dict[str, float]:
    """Issue 19's "done means": the last of sixteen requests sent at the same moment against one alone."""
    body = {"model": "base", "prompt": [prompt] * N, "max_tokens": TOKENS, "temperature": 0.8, "top_p": 0.95}
    alone, together = (
        burst(lambda i: _post(url, {**body, "seed": i}), size, tries) for size, tries in ((1, 5), (16, 3))
    )
    return {"one_alone_s": round(alone, 3), "sixteen_at_once_last_s": round(together, 3),
            "ratio": round(together / alone, 2)}  # fmt: skip


def _post(url: str, body: dict[str, Any]) -> None:
    httpx.post(f"{url}/v1/completions", json=body, timeout=600).raise_for_status()


def one_token(url: str, prompt: str, model: str) -> float:
    """Seconds for a 1-token request to `model`: little but the switch, if one is needed, and one forward pass."""
    started = time.perf_counter()
    body = {"model": model, "prompt": [prompt] * N, "max_tokens": 1, "temperature": 0}
    httpx.post(f"{url}/v1/completions", json=body, timeout=120).raise_for_status()
    return time.perf_counter() - started


def swap_seconds(url: str, prompt: str) -> dict[str, float]:
    """Load v0001 on the host; then the median extra time of 1-token requests that switch between the base and the
    adapter over those that stay on one model is the hot-swap."""
    started = time.perf_counter()
    httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "v0001"}, timeout=60).raise_for_status()
    load = time.perf_counter() - started
    switching, staying = [], []
    for _ in range(5):
        for model in ("v0001", "base"):
            switching.append(one_token(url, prompt, model))
            staying.append(one_token(url, prompt, model))
    extra = statistics.median(switching) - statistics.median(staying)
    return {"load_call_s": round(load, 3), "swap_s": round(extra, 3),
            "one_token_request_s": round(statistics.median(staying), 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a toy config, for a CPU smoke test of this script")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16, 64])
    args = parser.parse_args()
    import torch

    from model.serving.server import ServerConfig, create_server
    from model.writing.brief import Brief
    from model.writing.engine import LocalEngine
    from model.writing.prompt import plain_prompt
    from tests.http_server import serving

    if not args.tiny and not torch.cuda.is_available():
        raise SystemExit("no CUDA device is visible; run this on the GPU host (or pass --tiny for a CPU smoke test)")
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                              "shape": "tiny" if args.tiny else "Qwen2.5-1.5B", "torch": torch.__version__}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="copybot-gpu-check-") as scratch:
        base, registry = Path(scratch) / "base", Path(scratch) / "adapters"
        started = time.perf_counter()
        build_base(base, TINY if args.tiny else QWEN25_15B)
        build_adapter(base, registry)
        report["build_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        engine = LocalEngine(base, version="base")
        report["load_s"] = round(time.perf_counter() - started, 1)
        report["parameters_m"] = round(sum(p.numel() for p in engine.model.parameters()) / 1e6, 1)
        prompt = plain_prompt(Brief.create(product="린넨 셔츠", event="여름 세일", age="20대", n=N), "polite")
        with serving(
            create_server(engine, ServerConfig(base_name="base", adapters_root=registry, max_waiting=64))
        ) as url:
            measure(url, prompt, 1, 2)  # warm-up (CUDA kernels, allocator)
            report["latency"] = [measure(url, prompt, c, max(8, 2 * c)) for c in args.levels]
            report["burst_16"] = sixteen_at_once(url, prompt)
            report["hot_swap"] = swap_seconds(url, prompt)
    print(json.dumps(report, indent=2))
    if os.environ.get("OUT"):
        (Path(os.environ["OUT"]) / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print("\n| concurrency | p50 | p95 | tokens/s | requests/s |\n|---|---|---|---|---|")
    for row in report["latency"]:
        print(f"| {row['concurrency']} | {row['p50_s']} s | {row['p95_s']} s | {row['tokens_per_s']} | "
              f"{row['requests_per_s']} |")  # fmt: skip
    burst16 = report["burst_16"]
    print(f"\n16 requests sent at once: the last answered after {burst16['sixteen_at_once_last_s']} s; one alone "
          f"{burst16['one_alone_s']} s ({burst16['ratio']}x)")  # fmt: skip
    print(f"hot swap: {report['hot_swap']}")


if __name__ == "__main__":
    main()
