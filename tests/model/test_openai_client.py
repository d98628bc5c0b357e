"""The model server through the official `openai` Python client, as LiteLLM, LangChain and scripts call it:
completions and chat completions, plain and streamed, and the errors those clients raise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from model.serving.server import ServerConfig, create_server
from model.writing.engine import LocalEngine
from tests.conftest import REPO
from tests.http_server import serving
from tests.real_tokenizers import TOKENIZERS, tiny_model_folder

PROMPT = "<제품>린넨 셔츠<행사>여름 세일<20대><sns><polite><카피>"
KEY = "s3cret"


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=120)


@pytest.fixture
def starter(engine: LocalEngine) -> Iterator[openai.OpenAI]:
    with serving(create_server(engine, ServerConfig(base_name="starter", api_key=KEY))) as url:
        yield _client(url)


@pytest.fixture(scope="module")
def qwen3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    """A tiny random Qwen3 with the real Qwen3 tokenizer and its chat template."""
    folder = tiny_model_folder(TOKENIZERS["qwen3"], REPO / ".cache", tmp_path_factory.mktemp("tiny-qwen3"))
    engine = LocalEngine(folder, version="qwen3-tiny")
    with serving(create_server(engine, ServerConfig(base_name="qwen3-tiny", api_key=KEY))) as url:
        yield _client(url)


def test_completions_with_n_and_the_same_text_streamed(starter: openai.OpenAI) -> None:
    args: dict[str, Any] = {"model": "starter", "prompt": PROMPT, "n": 3, "max_tokens": 24, "seed": 7, "stop": ["\n"]}
    whole = starter.completions.create(**args)
    texts = [c.text for c in sorted(whole.choices, key=lambda c: c.index)]
    assert len(texts) == 3 and all(t.strip() for t in texts)
    streamed: dict[int, str] = {}
    finished: dict[int, str | None] = {}
    for chunk in starter.completions.create(**args, stream=True):
        for choice in chunk.choices:
            streamed[choice.index] = streamed.get(choice.index, "") + choice.text
            finished[choice.index] = choice.finish_reason or finished.get(choice.index)
    assert [streamed[i] for i in range(3)] == texts  # the same seed writes the same copies, streamed or not
    assert all(finished[i] in ("stop", "length") for i in range(3))


def test_the_errors_clients_raise(starter: openai.OpenAI, engine: LocalEngine) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        starter.completions.create(model="v0099", prompt=PROMPT, max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="without a chat template"):
        starter.chat.completions.create(model="starter", messages=[{"role": "user", "content": "여름 세일 카피"}])
    with pytest.raises(openai.BadRequestError, match="n must be between"):
        starter.completions.create(model="starter", prompt=PROMPT, n=0)
    with serving(create_server(engine, ServerConfig(base_name="starter", api_key=KEY))) as url:
        wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()


def test_chat_completions_render_the_chat_template_and_stop_at_the_end_of_turn(qwen3: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "system", "content": "한국어 광고 카피를 씁니다."},
                           {"role": "user", "content": "린넨 셔츠 여름 세일, 20대"}]  # fmt: skip
    reply = qwen3.chat.completions.create(model="qwen3-tiny", messages=messages, n=2, max_tokens=12, seed=3)
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-") and len(reply.choices) == 2
    for choice in reply.choices:
        assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
        assert "<|im_end|>" not in (choice.message.content or "")  # generation stops at the turn's end
    assert reply.usage is not None and reply.usage.prompt_tokens > 10  # the template's turns, not the bare text

    content: dict[int, str] = {0: "", 1: ""}
    roles, reasons = set(), {}
    for chunk in qwen3.chat.completions.create(model="qwen3-tiny", messages=messages, n=2, max_tokens=12, seed=3,
                                               stream=True):  # fmt: skip
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            if choice.delta.role:
                roles.add(choice.delta.role)
            content[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                reasons[choice.index] = choice.finish_reason
    assert roles == {"assistant"} and set(reasons) == {0, 1}
    assert [content[0], content[1]] == [c.message.content for c in reply.choices]


def test_chat_uses_max_completion_tokens_and_refuses_an_empty_conversation(qwen3: openai.OpenAI) -> None:
    reply = qwen3.chat.completions.create(model="qwen3-tiny", messages=[{"role": "user", "content": "안녕"}],
                                          max_completion_tokens=2, temperature=0)  # fmt: skip
    assert reply.usage is not None and reply.usage.completion_tokens <= 2
    with pytest.raises(openai.BadRequestError, match="messages"):
        qwen3.chat.completions.create(model="qwen3-tiny", messages=[])
