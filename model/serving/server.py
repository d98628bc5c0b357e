"""The GPU host's HTTP API, shaped like OpenAI's (and vLLM's) so that vLLM can replace it without touching the bot.

`GET /health`, `GET /v1/models`, `POST /v1/completions` and `POST /v1/chat/completions` (`model` names the base
model or an adapter; `stream: true` answers in server-sent events), `POST /v1/embeddings` (the learned reward's
features, so that a bot on another host reranks as it would in process), and vLLM's
`POST /v1/load_lora_adapter` / `POST /v1/unload_lora_adapter`, which only load from the adapter registry. Errors are
OpenAI-shaped JSON: 400 for bad parameters (a prompt over `max_prompt_tokens` or a request over
`max_request_tokens` among them), 401 for a bad or missing key, 404 for an unknown model, 503 with `Retry-After`
when the bounded queue is full or the server is stopping. Requests for the same model that wait together are
written in one batch (model/writing/batching.py); a semaphore bounds how many may wait, a client that hangs up
leaves its batch, and `stop_writing` (called when the server is told to stop) takes every request out of it.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import struct
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

from model.errors import AdapterError
from model.serving.fine_tuning import FineTuningJobs
from model.serving.fine_tuning_api import jobs_router
from model.writing.batching import MAX_BATCH, WINDOW_MS, BatchingEngine, Ticket

MAX_N = 16
MAX_ROWS = 64  # prompts x n in one request
MAX_TOKENS_LIMIT = 256
# The bot's longest prompt is an instruct model's chat prompt with ten brand-voice examples (COPYBOT_VOICE_EXAMPLES'
# most) of 500 characters each (storage/corpus.py's MAX_COPY_CHARS) and every brief field at its longest: about 5,900
# characters, 4,765 tokens with Qwen3's tokenizer and about 6,000 with one that spends a token per character. Its
# usual prompts are a few hundred tokens; the limit must never refuse the longest, and 8192 does not.
MAX_PROMPT_TOKENS = 8192
# A request's work is every row's prompt and answer: the sum over prompts x n of (prompt tokens + max_tokens). The
# default lets all 64 rows carry a quarter of the prompt limit and the longest answer, or a few rows the longest
# prompts; the bot's largest request, 20 candidates (rerank writes 2 x n, n at most 10) of its longest prompt, is
# about 20 x (6,000 + 160) = 123k.
MAX_REQUEST_TOKENS = MAX_ROWS * (MAX_PROMPT_TOKENS // 4 + MAX_TOKENS_LIMIT)
# Text averages far fewer characters a token (English about 4, Korean about 1.3); only runs of spaces or dashes pack
# more (Qwen3's longest token is 128 spaces). A prompt with more characters than this many per allowed token is
# refused before the tokenizer reads it, so that a megabyte of prompt costs nothing.
CHARS_PER_TOKEN = 16


class APIError(Exception):
    """An error the API answers with: HTTP status, OpenAI error type, message and the offending parameter."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code
        self.headers = headers or {}


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class LoadAdapterRequest(BaseModel):
    """vLLM's body for /v1/load_lora_adapter (`lora_path` defaults to the registry folder of that name)."""

    lora_name: str
    lora_path: str | None = None


class UnloadAdapterRequest(BaseModel):
    """vLLM's body for /v1/unload_lora_adapter."""

    lora_name: str


class Sampling(BaseModel):
    """What completions and chat completions share: the model, how many choices, and how to sample them. Unknown
    fields are ignored, as OpenAI does."""

    model: str
    n: int = 1
    max_tokens: int = 64
    temperature: float = Field(default=0.8, ge=0, le=2)
    top_p: float = Field(default=0.95, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False


class CompletionRequest(Sampling):
    """OpenAI's /v1/completions body, as far as copybot uses it."""

    prompt: str | list[str]


class EmbeddingRequest(BaseModel):
    """OpenAI's /v1/embeddings body, plus copybot's `prompts`: the context each input is scored in (the reward
    pools the hidden states over the copy, after its prompt). Unknown fields (`dimensions`, `user`) are ignored."""

    model: str
    input: str | list[str]
    encoding_format: str = "float"
    prompts: list[str] | None = None


class ChatMessage(BaseModel):
    role: str
    content: str


class ChatCompletionRequest(Sampling):
    """OpenAI's /v1/chat/completions body: the messages are rendered with the base model's chat template."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = None  # the newer name of max_tokens; wins when both are given


@dataclass
class ServerConfig:
    """Limits and credentials of one server."""

    base_name: str
    api_key: str = ""
    max_tokens_limit: int = MAX_TOKENS_LIMIT
    max_prompt_tokens: int = MAX_PROMPT_TOKENS  # tokens in one prompt (a chat request: its rendered messages)
    max_request_tokens: int = MAX_REQUEST_TOKENS  # a request's work: prompts x n x (prompt tokens + max_tokens)
    max_waiting: int = 64  # requests allowed to wait for the model before new ones get 503
    batch_window_ms: float = WINDOW_MS  # how long an idle model waits for more requests (model/writing/batching.py)
    max_batch: int = MAX_BATCH  # rows (prompts x n) written in one batch
    adapters: dict[str, Path] = field(default_factory=dict)  # adapter name -> PEFT folder
    adapters_root: Path | None = None  # where load_lora_adapter may load from (the registry); None: nowhere


def _check(body: Sampling, prompts: list[str], config: ServerConfig) -> None:
    if not 1 <= body.n <= MAX_N:
        raise APIError(400, f"n must be between 1 and {MAX_N}; got {body.n}", param="n")
    if not 1 <= body.max_tokens <= config.max_tokens_limit:
        raise APIError(
            400,
            f"max_tokens must be between 1 and {config.max_tokens_limit}; got {body.max_tokens}",
            param="max_tokens",
        )
    if not prompts or len(prompts) * body.n > MAX_ROWS:
        raise APIError(400, f"give 1 to {MAX_ROWS} prompts x n in one request", param="prompt")
    _check_model(body.model, config)


_SMALLER = "send fewer prompts, a lower n or a lower max_tokens"  # what a request over max_request_tokens can do


def _check_size(body: Sampling, prompts: list[str], config: ServerConfig, param: str) -> None:
    """Refuse, by their length in characters alone, prompts that cannot be within the token limits (CHARS_PER_TOKEN):
    cheap, so that a megabyte of prompt is refused at once and never tokenized."""
    most = config.max_prompt_tokens * CHARS_PER_TOKEN
    for i, prompt in enumerate(prompts):
        if len(prompt) > most:
            message = (
                f"{_subject(param, i, len(prompts))} is {len(prompt):,} characters long; this server reads at most "
                f"{most:,} (max_prompt_tokens={config.max_prompt_tokens} tokens of at most {CHARS_PER_TOKEN} "
                "characters)"
            )
            raise APIError(400, message, param=param, code="context_length_exceeded")
    chars, most = body.n * sum(len(p) for p in prompts), config.max_request_tokens * CHARS_PER_TOKEN
    if chars > most:
        message = (
            f"this request carries {chars:,} characters of prompt (prompts x n); this server reads at most {most:,} "
            f"(max_request_tokens={config.max_request_tokens} tokens of at most {CHARS_PER_TOKEN} characters): "
            f"{_SMALLER}"
        )
        raise APIError(400, message, param=param)


def _prompt_tokens(tokenizer: Any, body: Sampling, prompts: list[str], config: ServerConfig, param: str) -> int:
    """The prompts' tokens, each prompt counted once (as `usage` counts them); a prompt over `max_prompt_tokens`, or
    a request whose work (prompts x n x (prompt tokens + max_tokens)) is over `max_request_tokens`, is refused. The
    tokenizer's work: called off the event loop."""
    counts = []
    for i, prompt in enumerate(prompts):
        counts.append(_count(tokenizer, prompt))
        if counts[-1] > config.max_prompt_tokens:
            message = (
                f"{_subject(param, i, len(prompts))} is {counts[-1]:,} tokens long; this server takes at most "
                f"max_prompt_tokens={config.max_prompt_tokens}"
            )
            raise APIError(400, message, param=param, code="context_length_exceeded")
    work = body.n * (sum(counts) + len(prompts) * body.max_tokens)
    if work > config.max_request_tokens:
        message = (
            f"this request asks for {work:,} tokens of work (prompts x n x (prompt tokens + max_tokens)); this server "
            f"takes at most max_request_tokens={config.max_request_tokens}: {_SMALLER}"
        )
        raise APIError(400, message, param=param)
    return sum(counts)


def _subject(param: str, index: int, count: int) -> str:
    """What an error about one prompt calls it."""
    if param == "messages":
        return "the prompt rendered from the messages"
    return "the prompt" if count == 1 else f"prompt {index}"


def _shutting_down() -> APIError:
    busy = {"Retry-After": "5"}
    return APIError(503, "The model server is shutting down; retry shortly.", kind="service_unavailable", headers=busy)


def _chat_prompt(body: ChatCompletionRequest, tokenizer: Any, config: ServerConfig) -> str:
    from model.writing.prompt import has_chat_template, render_chat

    if not has_chat_template(tokenizer):
        raise APIError(
            400,
            f"{config.base_name} is a base model without a chat template; send a prompt to /v1/completions instead",
            param="messages",
        )
    try:
        return render_chat([m.model_dump() for m in body.messages], tokenizer)
    except Exception as exc:  # the template's own checks (roles out of order, say) raise its errors
        raise APIError(400, f"the chat template refused the messages: {exc}", param="messages") from exc


async def _result(ticket: Ticket, request: Request, stopping: Callable[[], bool]) -> list[str]:
    """The ticket's texts; if the client hangs up first, the ticket is withdrawn (the other requests in its batch
    go on) and the request ends with 499, which nobody reads. Once the server is stopping, or its batcher closed,
    the ticket is withdrawn too and the request answers 503."""
    waiting = asyncio.wrap_future(ticket.future)
    while True:
        try:
            done, _ = await asyncio.wait({waiting}, timeout=0.25)
        except asyncio.CancelledError:  # uvicorn's graceful shutdown timed out: the request's rows leave the batch
            ticket.cancel()
            raise
        if done:
            try:
                return waiting.result()
            except asyncio.CancelledError:  # the ticket's own: the batcher was closed under it
                raise _shutting_down() from None
        if stopping():
            ticket.cancel()
            raise _shutting_down()
        if await request.is_disconnected():
            ticket.cancel()
            raise APIError(499, "the client closed the request", kind="client_closed_request")


def _adapter_folder(body: LoadAdapterRequest, config: ServerConfig) -> Path:
    """The registry folder named by the request; names and paths that would leave the registry are refused."""
    from model.errors import AdapterError
    from model.training.registry import AdapterRegistry

    if config.adapters_root is None:
        raise APIError(400, "this server has no adapter folder to load from", param="lora_path")
    registry = AdapterRegistry(config.adapters_root)
    try:
        folder = registry.path(body.lora_name)
        if body.lora_path is not None and Path(body.lora_path).resolve() != folder:
            raise APIError(400, f"lora_path must be the registry folder {folder}", param="lora_path")
        if not folder.is_dir():
            raise APIError(
                404,
                f"no adapter named {body.lora_name!r} in {config.adapters_root}",
                param="lora_name",
                kind="NotFoundError",
                code="adapter_not_found",
            )
        return registry.load(body.lora_name).path
    except AdapterError as exc:
        raise APIError(400, str(exc), param="lora_name") from exc


class KeyCheck:
    """Every route but /health needs `Authorization: Bearer <key>`. A plain ASGI middleware: Starlette's
    BaseHTTPMiddleware would hide a client's hang-up from the endpoints, and a hung-up request must leave its
    batch (`_result`)."""

    def __init__(self, app: Any, api_key: str) -> None:
        self.app, self.api_key = app, api_key

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] != "/health":
            headers = {k.lower(): v for k, v in scope["headers"]}
            given = headers.get(b"authorization", b"").decode("latin-1").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                refusal = JSONResponse(
                    error_body(
                        "Incorrect or missing API key; send Authorization: Bearer <key>",
                        "authentication_error",
                        code="invalid_api_key",
                    ),
                    401,
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_server(engine: Any, config: ServerConfig, jobs: FineTuningJobs | None = None) -> FastAPI:
    """The FastAPI app over one engine (a LocalEngine, or anything with its `complete_batch`, `resolve`,
    `add_adapter`, `remove_adapter`, `loaded_adapters` and `tokenizer`), created with `version=config.base_name` so
    that the server knows its base model's name; requests are batched over it unless it batches already."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:  # the worker stops at its next step; shutdown does not wait out a long one (a daemon thread)
            batcher.close(timeout=1)
        if jobs is not None:
            jobs.close()  # a running training process is stopped and its job marked failed, saying why

    app = FastAPI(title="copybot model server", lifespan=lifespan)
    app.state.stopping = False  # set by stop_writing
    if jobs is not None:
        app.include_router(jobs_router(jobs, APIError))
    else:

        @app.api_route("/v1/fine_tuning/jobs{rest:path}", methods=["GET", "POST"])
        def no_jobs(rest: str) -> None:
            raise APIError(
                404,
                "this model server does not run fine-tuning jobs (it was started with --no-jobs); "
                "send them to the host that trains",
                kind="NotFoundError",
            )

    owned = not isinstance(engine, BatchingEngine)  # a batcher made here is closed here; a given one is the giver's
    batcher = BatchingEngine(engine, window_ms=config.batch_window_ms, max_batch=config.max_batch) if owned else engine
    slots = threading.BoundedSemaphore(config.max_waiting)
    select_lock = threading.Lock()  # loading and unloading adapters, one at a time

    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.kind, exc.param, exc.code), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = first.get("loc", ())
        param = str(loc[1]) if len(loc) > 1 else None  # ("body", "prompt", "str") -> "prompt"
        return JSONResponse(
            error_body(f"{param}: {first.get('msg', 'invalid request')}", "invalid_request_error", param), 400
        )

    if config.api_key:
        app.add_middleware(KeyCheck, api_key=config.api_key)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": config.base_name,
            "serving": engine.version,
            "loaded": engine.loaded_adapters(),
        }

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        from model.adapter_info import temperature_scale

        base = {"id": config.base_name, "object": "model", "created": 0, "owned_by": "copybot", "parent": None}
        # `temperature_scale` (not in OpenAI's shape) tells a client that this server applies the version's
        # saved factor itself, so the client must not apply it again (vLLM lists no such field)
        adapters = [
            {**base, "id": name, "parent": config.base_name, "temperature_scale": temperature_scale(path)}
            for name, path in sorted(config.adapters.items())
        ]
        return {"object": "list", "data": [base, *adapters]}

    @app.post("/v1/load_lora_adapter")
    def load_adapter(body: LoadAdapterRequest) -> PlainTextResponse:
        if body.lora_name in config.adapters:
            raise APIError(400, f"The lora adapter '{body.lora_name}' has already been loaded.", param="lora_name")
        folder = _adapter_folder(body, config)
        with select_lock:
            config.adapters[body.lora_name] = folder
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' added successfully.")

    @app.post("/v1/unload_lora_adapter")
    def unload_adapter(body: UnloadAdapterRequest) -> PlainTextResponse:
        if body.lora_name not in config.adapters:
            raise APIError(
                404,
                f"The lora adapter '{body.lora_name}' cannot be found.",
                param="lora_name",
                kind="NotFoundError",
                code="adapter_not_found",
            )
        with select_lock:
            del config.adapters[body.lora_name]
            engine.remove_adapter(body.lora_name)
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' removed successfully.")

    def missing(model: str) -> bool:
        """Whether `model` is an adapter the engine does not hold now (it may have dropped the least recently
        used one)."""
        return model != config.base_name and model not in engine.loaded_adapters()

    def load(model: str) -> None:
        with select_lock:
            if missing(model):
                engine.add_adapter(config.adapters[model], model)

    def stopping() -> bool:
        return bool(app.state.stopping)

    async def generate(body: Sampling, prompts: list[str], request: Request) -> list[str]:
        """n texts per prompt, prompt by prompt, written in a batch beside other requests for the same model; 503
        when too many requests wait already, or once the server is stopping. A client that hangs up withdraws its
        request from the batch."""
        if stopping():
            raise _shutting_down()
        if not slots.acquire(blocking=False):
            raise APIError(
                503, "The server is busy; retry shortly.", kind="server_overloaded", headers={"Retry-After": "2"}
            )
        try:
            if missing(body.model):
                await asyncio.to_thread(load, body.model)  # reading a checkpoint takes a while: off the event loop
            if stopping():  # it stopped meanwhile
                raise _shutting_down()
            stop = [body.stop] if isinstance(body.stop, str) else body.stop
            ticket = batcher.submit(
                [p for p in prompts for _ in range(body.n)],
                model=body.model,
                max_tokens=body.max_tokens,
                temperature=body.temperature,
                top_p=body.top_p,
                seed=body.seed,
                stop=stop,
            )
            return await _result(ticket, request, stopping)
        except AdapterError as exc:  # dropped from memory by other adapters' requests between load and batch
            raise APIError(503, f"{exc}; retry", kind="server_overloaded", headers={"Retry-After": "1"}) from exc
        finally:
            slots.release()

    @app.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest, request: Request) -> dict[str, Any] | StreamingResponse:
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        _check(body, prompts, config)
        _check_size(body, prompts, config, "prompt")
        # counting tokens is the tokenizer's work: off the event loop, which serves the others
        used = await asyncio.to_thread(_prompt_tokens, engine.tokenizer, body, prompts, config, "prompt")
        texts = await generate(body, prompts, request)
        reply = await asyncio.to_thread(_response, engine.tokenizer, body, used, texts)
        return _stream(completion_chunks(reply)) if body.stream else reply

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> dict[str, Any] | StreamingResponse:
        if body.max_completion_tokens is not None:
            body.max_tokens = body.max_completion_tokens
        _check_size(body, ["".join(m.content for m in body.messages)], config, "messages")  # before the template
        prompt = await asyncio.to_thread(_chat_prompt, body, engine.tokenizer, config)  # the template, as above
        _check(body, [prompt], config)
        used = await asyncio.to_thread(_prompt_tokens, engine.tokenizer, body, [prompt], config, "messages")
        texts = await generate(body, [prompt], request)
        reply = chat_response(await asyncio.to_thread(_response, engine.tokenizer, body, used, texts))
        return _stream(chat_chunks(reply)) if body.stream else reply

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest) -> dict[str, Any]:
        """The reward's features of each input (model/writing/reward_model.py: pooled last hidden states over the copy,
        after its `prompts` entry when given), from the model `model` names: the base model, whose features the
        learned reward scores, or an adapter."""
        texts = [body.input] if isinstance(body.input, str) else body.input
        prompts = body.prompts if body.prompts is not None else [""] * len(texts)
        _check_embedding(body, texts, prompts, config)
        if stopping():
            raise APIError(
                503, "The server is stopping; retry shortly.", kind="server_overloaded", headers={"Retry-After": "5"}
            )
        if not slots.acquire(blocking=False):
            raise APIError(
                503, "The server is busy; retry shortly.", kind="server_overloaded", headers={"Retry-After": "2"}
            )
        try:
            if missing(body.model):
                await asyncio.to_thread(load, body.model)
            vectors = await asyncio.to_thread(engine.features, prompts, texts, model=body.model)
            used = await asyncio.to_thread(lambda: sum(_count(engine.tokenizer, t) for t in texts))
        except AdapterError as exc:
            raise APIError(503, f"{exc}; retry", kind="server_overloaded", headers={"Retry-After": "1"}) from exc
        finally:
            slots.release()
        data = [
            {"object": "embedding", "index": i, "embedding": _encoded(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        return {
            "object": "list",
            "data": data,
            "model": body.model,
            "usage": {"prompt_tokens": used, "total_tokens": used},
        }

    return app


def _check_model(model: str, config: ServerConfig) -> None:
    """404 in OpenAI's words for a model this server neither is nor holds as an adapter."""
    if model != config.base_name and model not in config.adapters:
        raise APIError(
            404, f"The model `{model}` does not exist.", kind="NotFoundError", param="model", code="model_not_found"
        )


def _check_embedding(body: EmbeddingRequest, texts: list[str], prompts: list[str], config: ServerConfig) -> None:
    if not texts or len(texts) > MAX_ROWS:
        raise APIError(400, f"give 1 to {MAX_ROWS} inputs in one request", param="input")
    if len(prompts) != len(texts):
        raise APIError(
            400, f"prompts has {len(prompts)} entries for {len(texts)} inputs; give one per input", param="prompts"
        )
    if body.encoding_format not in ("float", "base64"):
        raise APIError(400, "encoding_format must be float or base64", param="encoding_format")
    most = config.max_prompt_tokens * CHARS_PER_TOKEN
    longest = max(len(p) + len(t) for p, t in zip(prompts, texts, strict=True))
    if longest > most:
        raise APIError(
            400,
            f"an input with its prompt is {longest:,} characters long; this server reads at most "
            f"{most:,} (max_prompt_tokens={config.max_prompt_tokens})",
            param="input",
        )
    _check_model(body.model, config)


def _encoded(vector: list[float], encoding: str) -> list[float] | str:
    """A vector as OpenAI sends it: a list of floats, or (what the `openai` client asks for) base64 of
    little-endian float32."""
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def stop_writing(app: FastAPI) -> None:
    """Stop the model's work for the server made by `create_server`, as it is told to stop: uvicorn waits for the
    requests in flight before it shuts the app down, and the model would go on writing them for as long as their
    batch runs. After this, every request being written or waiting is withdrawn from the batch within a quarter
    of a second (its rows stop at the batch's next step) and answers 503, as do new ones. It only sets a flag, so a
    signal handler may call it."""
    app.state.stopping = True


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _response(tokenizer: Any, body: Sampling, prompt_tokens: int, texts: list[str]) -> dict[str, Any]:
    used = [_count(tokenizer, t) for t in texts]
    choices = [
        {"index": i, "text": t, "logprobs": None, "finish_reason": "length" if n >= body.max_tokens else "stop"}
        for i, (t, n) in enumerate(zip(texts, used, strict=True))
    ]
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": sum(used),
            "total_tokens": prompt_tokens + sum(used),
        },
    }


def chat_response(completion: dict[str, Any]) -> dict[str, Any]:
    """A completion's choices as the assistant's messages (OpenAI's chat.completion object)."""
    choices = [
        {
            "index": c["index"],
            "message": {"role": "assistant", "content": c["text"]},
            "logprobs": None,
            "finish_reason": c["finish_reason"],
        }
        for c in completion["choices"]
    ]
    return {
        **completion,
        "id": completion["id"].replace("cmpl-", "chatcmpl-", 1),
        "object": "chat.completion",
        "choices": choices,
    }


# Streaming: the choices of one request are generated in one batch and finish together, so each choice's text is
# sent in one chunk rather than token by token; the events are OpenAI's, so streaming clients read them as usual.
def completion_chunks(reply: dict[str, Any]) -> list[dict[str, Any]]:
    head = {k: reply[k] for k in ("id", "object", "created", "model")}
    return [{**head, "choices": [choice]} for choice in reply["choices"]]


def chat_chunks(reply: dict[str, Any]) -> list[dict[str, Any]]:
    head = {"id": reply["id"], "object": "chat.completion.chunk", "created": reply["created"], "model": reply["model"]}
    chunks = []
    for choice in reply["choices"]:
        index, content = choice["index"], choice["message"]["content"]
        for delta, finish in (
            ({"role": "assistant", "content": ""}, None),
            ({"content": content}, None),
            ({}, choice["finish_reason"]),
        ):
            chunks.append(
                {**head, "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            )
    return chunks


def _stream(chunks: list[dict[str, Any]]) -> StreamingResponse:
    """Server-sent events: one `data:` line per chunk, then `data: [DONE]`."""
    events = [f"data: {json.dumps(c, ensure_ascii=False)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
    return StreamingResponse(iter(events), media_type="text/event-stream")
