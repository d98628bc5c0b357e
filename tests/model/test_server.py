"""The model server over the real starter model, run in-process by uvicorn on port 0 and called over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from model.serving.server import ServerConfig, create_server
from model.writing.batching import BatchingEngine
from model.writing.engine import LocalEngine
from tests.http_server import HeldEngine, serving

PROMPT = "<제품>린넨 셔츠<행사>여름 세일<20대><sns><polite><카피>"


def _serve(app: Any) -> Iterator[str]:
    with serving(app) as url:
        yield url


@pytest.fixture
def url(engine: LocalEngine) -> Iterator[str]:
    yield from _serve(create_server(engine, ServerConfig(base_name="starter", api_key="s3cret")))


AUTH = {"Authorization": "Bearer s3cret"}


def test_health_and_models(url: str) -> None:
    assert httpx.get(f"{url}/health").json() == {"status": "ok", "model": "starter", "serving": "starter",
                                                 "loaded": []}  # fmt: skip
    models = httpx.get(f"{url}/v1/models", headers=AUTH).json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["starter"]


def test_n_candidates_in_one_openai_shaped_response(url: str) -> None:
    body = {"model": "starter", "prompt": PROMPT, "n": 3, "max_tokens": 40, "temperature": 0.8, "seed": 7,
            "stop": ["\n"]}  # fmt: skip
    reply = httpx.post(f"{url}/v1/completions", json=body, headers=AUTH, timeout=60)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["object"] == "text_completion" and data["model"] == "starter" and data["id"].startswith("cmpl-")
    assert [c["index"] for c in data["choices"]] == [0, 1, 2]
    assert all(c["text"].strip() and c["finish_reason"] in ("stop", "length") for c in data["choices"])
    usage = data["usage"]
    assert usage["prompt_tokens"] > 0 and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    again = httpx.post(f"{url}/v1/completions", json=body, headers=AUTH, timeout=60).json()
    assert [c["text"] for c in again["choices"]] == [c["text"] for c in data["choices"]]  # same seed, same copies


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"n": 0}, 400, "n"),
        ({"n": 17}, 400, "n"),
        ({"max_tokens": 5000}, 400, "max_tokens"),
        ({"temperature": 3}, 400, "temperature"),
        ({"model": "v9999"}, 404, "model"),
        ({"prompt": None}, 400, "prompt"),
    ],
)
def test_bad_requests_get_openai_shaped_errors(url: str, change: dict, status: int, param: str) -> None:
    body = {"model": "starter", "prompt": PROMPT, "max_tokens": 8, **change}
    reply = httpx.post(f"{url}/v1/completions", json=body, headers=AUTH)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert error["param"] == param and error["message"] and error["type"]
    if status == 404:
        assert error["code"] == "model_not_found" and "v9999" in error["message"]


def test_a_missing_or_wrong_key_is_refused(url: str) -> None:
    body = {"model": "starter", "prompt": PROMPT, "max_tokens": 4}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-but-longer"}):
        reply = httpx.post(f"{url}/v1/completions", json=body, headers=headers)
        assert reply.status_code == 401 and reply.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{url}/v1/models").status_code == 401
    assert httpx.get(f"{url}/health").status_code == 200  # load balancers probe without a key


def test_concurrent_requests_all_complete(url: str) -> None:
    body = {"model": "starter", "prompt": PROMPT, "n": 2, "max_tokens": 16, "seed": 1}
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: httpx.post(f"{url}/v1/completions", json=body, headers=AUTH, timeout=120),
                                range(4)))  # fmt: skip
    assert [r.status_code for r in replies] == [200] * 4
    assert all(len(r.json()["choices"]) == 2 for r in replies)


def test_a_full_queue_answers_503_with_retry_after(engine: LocalEngine) -> None:
    held = HeldEngine(engine)
    for url in _serve(create_server(held, ServerConfig(base_name="starter", max_waiting=1))):
        body = {"model": "starter", "prompt": PROMPT, "max_tokens": 4}
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx.post, f"{url}/v1/completions", json=body, timeout=60)
            assert held.entered.wait(20)
            busy = httpx.post(f"{url}/v1/completions", json=body)
            assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
            assert busy.json()["error"]["type"] == "server_overloaded"
            held.release.set()
            assert first.result().status_code == 200


def test_requests_that_wait_together_are_written_in_one_batch(engine: LocalEngine) -> None:
    batcher = BatchingEngine(engine, window_ms=300)  # wide, so that four HTTP requests surely meet
    for url in _serve(create_server(batcher, ServerConfig(base_name="starter"))):
        bodies = [{"model": "starter", "prompt": PROMPT, "n": 2, "max_tokens": 16, "temperature": 0.9, "seed": s}
                  for s in range(4)]  # fmt: skip
        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(lambda b, u=url: httpx.post(f"{u}/v1/completions", json=b, timeout=120), bodies))
        assert list(batcher.batches) == [4]
        for body, reply in zip(bodies, replies, strict=True):
            alone = engine.complete([PROMPT] * 2, max_tokens=16, temperature=0.9, seed=body["seed"])
            assert [c["text"] for c in reply.json()["choices"]] == alone
    # the server stopped; the batcher it was given is its giver's, and still writes
    assert batcher.complete([PROMPT], max_tokens=2, seed=1) == engine.complete([PROMPT], max_tokens=2, seed=1)
    batcher.close()


def test_a_client_that_hangs_up_leaves_the_queue(engine: LocalEngine) -> None:
    held = HeldEngine(engine)
    batcher = BatchingEngine(held, window_ms=0)
    for url in _serve(create_server(batcher, ServerConfig(base_name="starter"))):
        body = {"model": "starter", "prompt": PROMPT, "max_tokens": 4}
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx.post, f"{url}/v1/completions", json=body, timeout=60)
            assert held.entered.wait(20)  # the first request's batch is being written, and held
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(f"{url}/v1/completions", json=body, timeout=0.5)  # waits behind it, then hangs up
            deadline = time.monotonic() + 10
            while batcher.waiting() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert batcher.waiting() == 0  # withdrawn before any batch took it
            held.release.set()
            assert first.result().status_code == 200
        assert list(batcher.batches) == [1]


def test_an_adapter_is_loaded_switched_to_and_unloaded(starter_dir: Path, adapters_root: Path) -> None:
    engine = LocalEngine(starter_dir, version="starter")
    config = ServerConfig(base_name="starter", adapters_root=adapters_root)
    for url in _serve(create_server(engine, config)):
        body = {"prompt": PROMPT, "n": 2, "max_tokens": 24, "temperature": 0, "seed": 3}
        assert httpx.post(f"{url}/v1/completions", json={**body, "model": "v0001"}).status_code == 404
        loaded = httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "v0001"})
        assert loaded.status_code == 200 and loaded.text == "Success: LoRA adapter 'v0001' added successfully."
        assert [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]] == ["starter", "v0001"]
        again = httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "v0001"})
        assert again.status_code == 400 and "already been loaded" in again.json()["error"]["message"]

        base = httpx.post(f"{url}/v1/completions", json={**body, "model": "starter"}, timeout=60).json()
        tuned = httpx.post(f"{url}/v1/completions", json={**body, "model": "v0001"}, timeout=60).json()
        assert httpx.get(f"{url}/health").json()["loaded"] == ["v0001"]
        assert [c["text"] for c in tuned["choices"]] != [c["text"] for c in base["choices"]]
        back = httpx.post(f"{url}/v1/completions", json={**body, "model": "starter"}, timeout=60).json()
        assert [c["text"] for c in back["choices"]] == [c["text"] for c in base["choices"]]  # the swap is clean

        httpx.post(f"{url}/v1/completions", json={**body, "model": "v0001"}, timeout=60)
        gone = httpx.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "v0001"})
        assert gone.status_code == 200 and httpx.get(f"{url}/health").json()["loaded"] == []
        assert httpx.post(f"{url}/v1/completions", json={**body, "model": "v0001"}).status_code == 404
        missing = httpx.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "v0001"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "adapter_not_found"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"lora_name": "../v0001"}, 400),
        ({"lora_name": "v0001/.."}, 400),
        ({"lora_name": "v0001", "lora_path": "/etc"}, 400),
        ({"lora_name": "v0002"}, 404),
    ],
)
def test_adapter_names_and_paths_cannot_leave_the_registry(
    engine: LocalEngine, adapters_root: Path, body: dict, status: int
) -> None:
    for url in _serve(create_server(engine, ServerConfig(base_name="starter", adapters_root=adapters_root))):
        reply = httpx.post(f"{url}/v1/load_lora_adapter", json=body)
        assert reply.status_code == status and reply.json()["error"]["param"] in ("lora_name", "lora_path")
        assert [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]] == ["starter"]


def test_a_server_without_jobs_says_where_jobs_go(url: str) -> None:
    reply = httpx.post(f"{url}/v1/fine_tuning/jobs", json={}, headers=AUTH)
    assert reply.status_code == 404 and "--no-jobs" in reply.json()["error"]["message"]
