"""Responses shaped exactly as vLLM's OpenAI-compatible server returns them (`vllm serve BASE --enable-lora`,
v0.8-0.11 era), replayed through httpx's MockTransport: vLLM itself needs a GPU and is the true external edge.

Differences from our server that the client must cope with: extra fields (`root`, `max_model_len`, `permission`,
`stop_reason`, `prompt_logprobs`, `system_fingerprint`), an empty `/health` body, plain-text adapter replies, and
errors either nested under "error" (newer) or flat with "object": "error" (older).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

BASE = "Qwen/Qwen2.5-1.5B-Instruct"

MODELS = {
    "object": "list",
    "data": [
        {"id": BASE, "object": "model", "created": 1732838400, "owned_by": "vllm", "root": BASE, "parent": None,
         "max_model_len": 32768, "permission": [{"id": "modelperm-5f3b", "object": "model_permission",
         "created": 1732838400, "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True,
         "allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False, "organization": "*",
         "group": None, "is_blocking": False}]},
        {"id": "v0003", "object": "model", "created": 1732838400, "owned_by": "vllm",
         "root": "/srv/copybot/adapters/v0003", "parent": BASE, "max_model_len": None, "permission": []},
    ],
}  # fmt: skip


def completion(model: str, texts: list[str]) -> dict[str, Any]:
    """A /v1/completions body; vLLM may list choices out of prompt order when requests finish out of order."""
    choices = [{"index": i, "text": t, "logprobs": None, "finish_reason": "stop", "stop_reason": None,
                "prompt_logprobs": None} for i, t in enumerate(texts)]  # fmt: skip
    return {"id": "cmpl-9c1f0e7a2b5d4c7e", "object": "text_completion", "created": 1732838461, "model": model,
            "choices": list(reversed(choices)), "usage": {"prompt_tokens": 61, "total_tokens": 118,
            "completion_tokens": 57, "prompt_tokens_details": None}, "system_fingerprint": None,
            "service_tier": None, "kv_transfer_params": None}  # fmt: skip


def nested_error(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def flat_error(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": kind, "param": None, "code": code}


@dataclass
class FakeVLLM:
    """Answers like vLLM; records every request; `fail` queues (status, body, headers) answers to give first."""

    loaded: set[str] = field(default_factory=lambda: {"v0003"})
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    fail: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    flat_errors: bool = False

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        if self.fail:
            status, payload, headers = self.fail.pop(0)
            return httpx.Response(status, json=payload, headers=headers)
        error = flat_error if self.flat_errors else nested_error
        path = request.url.path
        if path == "/health":
            return httpx.Response(200)
        if path == "/v1/models":
            data = [m for m in MODELS["data"] if m["id"] == BASE or m["id"] in self.loaded]
            data += [{**MODELS["data"][1], "id": n, "root": f"/srv/copybot/adapters/{n}"}
                     for n in sorted(self.loaded - {"v0003"})]  # fmt: skip
            return httpx.Response(200, json={"object": "list", "data": data})
        if path == "/v1/completions":
            if body["model"] not in {BASE, *self.loaded}:
                return httpx.Response(404, json=error(f"The model `{body['model']}` does not exist.", "NotFoundError",
                                                      404))  # fmt: skip
            prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
            return httpx.Response(
                200, json=completion(body["model"], [f"카피 {i}입니다." for i in range(len(prompts))])
            )
        if path == "/v1/load_lora_adapter":
            name = body["lora_name"]
            if name in self.loaded:
                return httpx.Response(400, json=error(f"The lora adapter '{name}' has already been loaded.",
                                                      "InvalidUserInput", 400))  # fmt: skip
            self.loaded.add(name)
            return httpx.Response(200, text=f"Success: LoRA adapter '{name}' added successfully.")
        if path == "/v1/unload_lora_adapter":
            self.loaded.discard(body["lora_name"])
            return httpx.Response(200, text=f"Success: LoRA adapter '{body['lora_name']}' removed successfully.")
        return httpx.Response(404, json={"detail": "Not Found"})
