"""The model server's limits on a prompt's tokens and a request's work, over HTTP (issue 40): refusals in OpenAI's
error shape that name the limit, a megabyte of prompt refused at once while a normal request beside it is written,
and a chat request's messages measured as its chat template renders them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from model.serving.server import ServerConfig, create_server
from model.writing.engine import LocalEngine
from tests.conftest import REPO
from tests.http_server import serving
from tests.real_tokenizers import TOKENIZERS, tiny_model_folder

PROMPT = "<제품>린넨 셔츠<행사>여름 세일<20대><sns><polite><카피>"
KEY = "s3cret"
AUTH = {"Authorization": f"Bearer {KEY}"}
LIMITS = {"max_prompt_tokens": 64, "max_request_tokens": 2000}  # small, so that the tests' prompts reach them
MEGABYTE = "가" * 1_000_000


def _tokens(engine: LocalEngine, text: str) -> int:
    return len(engine.tokenizer(text, add_special_tokens=False)["input_ids"])


def _refusal(reply: httpx.Response, param: str, limit: str) -> dict[str, Any]:
    assert reply.status_code == 400, reply.text
    error: dict[str, Any] = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and limit in error["message"]
    return error


@pytest.fixture
def url(engine: LocalEngine) -> Iterator[str]:
    with serving(create_server(engine, ServerConfig(base_name="starter", api_key=KEY, **LIMITS))) as url:
        yield url


def test_a_prompt_over_the_token_limit_is_refused_naming_it(url: str, engine: LocalEngine) -> None:
    long = PROMPT * 5
    assert _tokens(engine, long) > 64 and len(long) <= 64 * 16  # over the token limit, not the characters' bound
    body = {"model": "starter", "prompt": long, "max_tokens": 4}
    error = _refusal(httpx.post(f"{url}/v1/completions", json=body, headers=AUTH), "prompt", "max_prompt_tokens=64")
    assert error["code"] == "context_length_exceeded" and f"{_tokens(engine, long)} tokens" in error["message"]
    listed = httpx.post(f"{url}/v1/completions", json={**body, "prompt": [PROMPT, long]}, headers=AUTH)
    assert "prompt 1 is" in _refusal(listed, "prompt", "max_prompt_tokens=64")["message"]  # which one is too long


def test_a_megabyte_prompt_is_refused_at_once_while_a_normal_request_is_written(engine: LocalEngine) -> None:
    normal = {"model": "starter", "prompt": PROMPT, "n": 2, "max_tokens": 16, "seed": 1}
    with serving(create_server(engine, ServerConfig(base_name="starter"))) as url, ThreadPoolExecutor(1) as pool:
        beside = pool.submit(httpx.post, f"{url}/v1/completions", json=normal, timeout=120)
        started = time.monotonic()
        huge = httpx.post(f"{url}/v1/completions", json={**normal, "prompt": MEGABYTE}, timeout=60)
        took = time.monotonic() - started
        # the default limits: 8192 tokens, so at most 131,072 characters are read
        assert "1,000,000 characters" in _refusal(huge, "prompt", "max_prompt_tokens=8192")["message"]
        assert took < 5, f"a megabyte of prompt took {took:.2f} s to refuse"  # well under a second on an idle machine
        written = beside.result()
        assert written.status_code == 200 and len(written.json()["choices"]) == 2


def test_a_request_over_the_work_limit_is_refused_naming_it(url: str, engine: LocalEngine) -> None:
    body = {"model": "starter", "prompt": [PROMPT] * 4, "n": 8, "max_tokens": 64}
    work = 8 * 4 * (_tokens(engine, PROMPT) + 64)
    assert work > 2000
    error = _refusal(httpx.post(f"{url}/v1/completions", json=body, headers=AUTH), "prompt", "max_request_tokens=2000")
    assert f"{work:,} tokens of work" in error["message"]
    # so many characters that the tokens need not be counted: refused by length alone
    wide = {**body, "prompt": ["가" * 1000] * 4, "n": 16, "max_tokens": 4}
    error = _refusal(httpx.post(f"{url}/v1/completions", json=wide, headers=AUTH), "prompt", "max_request_tokens=2000")
    assert "64,000 characters of prompt" in error["message"]
    within = {**body, "prompt": [PROMPT] * 2, "n": 2, "max_tokens": 8}
    reply = httpx.post(f"{url}/v1/completions", json=within, headers=AUTH, timeout=120)
    assert reply.status_code == 200 and len(reply.json()["choices"]) == 4
    assert reply.json()["usage"]["prompt_tokens"] == 2 * _tokens(engine, PROMPT)  # each prompt counted once, as before


@pytest.fixture(scope="module")
def qwen3_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tiny random Qwen3 with the real Qwen3 tokenizer and its chat template, under the small limits."""
    folder = tiny_model_folder(TOKENIZERS["qwen3"], REPO / ".cache", tmp_path_factory.mktemp("tiny-qwen3"))
    engine = LocalEngine(folder, version="qwen3-tiny")
    with serving(create_server(engine, ServerConfig(base_name="qwen3-tiny", **LIMITS))) as url:
        yield url


def test_chat_messages_over_the_limit_are_refused_naming_them(qwen3_url: str) -> None:
    body: dict[str, Any] = {"model": "qwen3-tiny", "max_tokens": 4, "seed": 1}
    say = [{"role": "user", "content": "여름 세일 카피 한 줄"}]
    assert httpx.post(f"{qwen3_url}/v1/chat/completions", json={**body, "messages": say}, timeout=60).status_code == 200
    long = [{"role": "system", "content": "짧게 써 주세요."}, {"role": "user", "content": "린넨 셔츠 여름 세일 " * 20}]
    reply = httpx.post(f"{qwen3_url}/v1/chat/completions", json={**body, "messages": long})
    error = _refusal(reply, "messages", "max_prompt_tokens=64")
    assert error["code"] == "context_length_exceeded" and "rendered from the messages" in error["message"]
    started = time.monotonic()
    huge = [{"role": "user", "content": MEGABYTE}]
    _refusal(httpx.post(f"{qwen3_url}/v1/chat/completions", json={**body, "messages": huge}), "messages", "1,024")
    assert time.monotonic() - started < 5
