"""HTTP client for the GPU host's API: our `copybot model-server` or vLLM's OpenAI server (same shapes).

Only calls that are safe to repeat are retried (reads, completions, which change nothing on the host, and loading an
adapter, which is idempotent here): on a refused connection, and on 429/503 after `Retry-After` (capped) or an
exponential backoff. Creating a fine-tuning job is never retried, since a retry could start a second job.
Every failure becomes a `ModelHostError` whose `str()` tells the operator what to check and whose `user_message`
tells the Slack user, in Korean, what to do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from model.errors import ModelUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")
USER_MESSAGES = {
    "unreachable": "모델 서버에 연결하지 못했어요. 잠시 후 다시 시도해 주시고, 계속되면 운영자에게 알려 주세요.",
    "auth": "모델 서버가 copybot의 접속을 거절했어요(인증 실패). 운영자에게 알려 주세요.",
    "timeout": "모델 서버의 응답이 너무 늦어요. 1분쯤 뒤에 다시 시도해 주세요.",
    "busy": "지금 요청이 많아 모델 서버가 바빠요. 1분쯤 뒤에 다시 시도해 주세요.",
    "not_found": "요청한 모델을 모델 서버에서 찾지 못했어요. 운영자에게 알려 주세요.",
    "bad_request": "모델 서버가 요청을 받아들이지 않았어요. 운영자에게 알려 주세요.",
    "server": "모델 서버에서 오류가 났어요. 잠시 후 다시 시도해 주시고, 계속되면 운영자에게 알려 주세요.",
}
MAX_RETRY_AFTER_S = 10.0  # a host asking for a longer wait gets the failure reported instead


class ModelHostError(ModelUnavailableError):
    """The GPU host could not do what was asked; `kind` is one of USER_MESSAGES' keys."""

    def __init__(self, kind: str, message: str, *, status: int | None = None, param: str | None = None) -> None:
        super().__init__(message, user_message=USER_MESSAGES[kind])
        self.kind, self.status, self.param = kind, status, param  # param: the request field the host refused


def _by_index(items: Any, count: int, value: Callable[[Any], T], what: str, of: str) -> list[T]:
    """An OpenAI list (choices, embeddings) in request order, matched by each item's `index`, not its position:
    one value for each of the `count` things asked for, or ModelHostError."""
    try:
        found = {int(item["index"]): value(item) for item in items}
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelHostError("server", f"the model host's {what} are not OpenAI-shaped ({str(items)[:200]})") from exc
    if sorted(found) != list(range(count)):
        raise ModelHostError("server", f"the model host returned {len(items)} {what} for {count} {of}")
    return [found[i] for i in range(count)]


def api_root(url: str) -> str:
    """COPYBOT_MODEL_URL may be given with or without the trailing /v1; paths here always start at the root."""
    root = url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _field(response: httpx.Response, key: str, call: str) -> Any:
    """`response.json()[key]`, or a ModelHostError that shows what came back instead (a proxy's HTML page, say)."""
    try:
        return response.json()[key]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelHostError("server", f"{call} answered with something that is not the OpenAI API ({key!r} missing): "
                             f"{response.text[:200]!r}; is COPYBOT_MODEL_URL the model server?") from exc  # fmt: skip


def error_fields(response: httpx.Response) -> tuple[str, str | None]:
    """(message, param) of an OpenAI-shaped error (nested under "error", or vLLM's older flat form); else the text
    and None."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase, None
    if isinstance(body, dict):
        inner: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else body
        param = inner.get("param") if isinstance(inner.get("param"), str) else None
        if isinstance(inner.get("message"), str):
            return str(inner["message"]), param
    return str(body)[:300], None


class ModelClient:
    """One host's API. `timeout_s` bounds each call's wait for an answer; `retries` applies to safe calls only."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout_s: float = 60.0, connect_timeout_s: float = 3.0,
                 retries: int = 2, backoff_s: float = 0.5, transport: httpx.BaseTransport | None = None) -> None:  # fmt: skip
        self.root = api_root(url)
        self.retries, self.backoff_s = retries, backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._http = httpx.Client(base_url=self.root, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    # ---- serving -------------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """`GET /health` (vLLM answers with an empty body)."""
        response = self._call("GET", "/health", safe=True)
        return response.json() if response.content else {"status": "ok"}

    def models(self) -> list[dict[str, Any]]:
        """`GET /v1/models`: the base model (parent null) and the loaded adapters."""
        data = _field(self._call("GET", "/v1/models", safe=True), "data", "GET /v1/models")
        if not isinstance(data, list) or not all(isinstance(m, dict) and "id" in m for m in data):
            raise ModelHostError("server", f"GET /v1/models on {self.root} did not list models: {str(data)[:200]}")
        return data

    def complete(self, prompts: list[str], *, model: str, max_tokens: int, temperature: float, top_p: float,
                 seed: int | None = None, stop: list[str] | None = None) -> list[str]:  # fmt: skip
        """One completion per prompt, in prompt order (choices are matched by `index`, not by position)."""
        body = {"model": model, "prompt": prompts, "n": 1, "max_tokens": max_tokens, "temperature": temperature,
                "top_p": top_p, "seed": seed, "stop": stop}  # fmt: skip
        choices = _field(self._call("POST", "/v1/completions", json=body, safe=True), "choices", "POST /v1/completions")
        return _by_index(choices, len(prompts), lambda c: str(c["text"]), "choices", "prompts")

    def embeddings(self, texts: list[str], *, model: str, prompts: list[str] | None = None) -> list[list[float]]:
        """`POST /v1/embeddings`: one vector per text, in text order; `prompts` (copybot's model server) gives each
        text the context the reward scores it in."""
        body: dict[str, Any] = {"model": model, "input": texts, "encoding_format": "float"}
        if prompts is not None:
            body["prompts"] = prompts
        data = _field(self._call("POST", "/v1/embeddings", json=body, safe=True), "data", "POST /v1/embeddings")
        return _by_index(data, len(texts), lambda d: [float(x) for x in d["embedding"]], "embeddings", "inputs")

    def load_adapter(self, name: str, path: str) -> None:
        """`POST /v1/load_lora_adapter`; an adapter that is already loaded counts as loaded."""
        try:
            self._call("POST", "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path}, safe=True)
        except ModelHostError as exc:
            if exc.status == 400 and "already been loaded" in str(exc):
                return
            raise

    def unload_adapter(self, name: str) -> None:
        """`POST /v1/unload_lora_adapter`."""
        self._call("POST", "/v1/unload_lora_adapter", json={"lora_name": name}, safe=True)

    # ---- fine-tuning jobs (our server only) -----------------------------------------------------------------
    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /v1/fine_tuning/jobs`; never retried (a retry could start the job twice)."""
        job: dict[str, Any] = self._call("POST", "/v1/fine_tuning/jobs", json=body, safe=False).json()
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._call("GET", f"/v1/fine_tuning/jobs/{job_id}", safe=True).json()
        return job

    def job_events(self, job_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self._call("GET", f"/v1/fine_tuning/jobs/{job_id}/events", safe=True).json()[
            "data"
        ]
        return events

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._call("POST", f"/v1/fine_tuning/jobs/{job_id}/cancel", safe=True).json()
        return job

    def follow_job(
        self, job: dict[str, Any], *, on_event: Callable[[str], None], poll_s: float = 5.0
    ) -> dict[str, Any]:
        """Poll a job until it ends, passing each of its events' messages to `on_event` once, oldest first; the job
        as it ended. Interrupted (Ctrl-C), it cancels the job, so that the GPU does not go on training for nobody."""
        from model.serving.fine_tuning import TERMINAL

        seen: set[str] = set()
        try:
            while True:
                for event in reversed(self.job_events(job["id"])):
                    if event["id"] not in seen:
                        seen.add(event["id"])
                        on_event(event["message"])
                if job["status"] in TERMINAL:
                    return job
                time.sleep(poll_s)
                job = self.job(job["id"])
        except KeyboardInterrupt:
            self.cancel_job(job["id"])
            raise

    # ---- transport -----------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, json: Any = None, safe: bool) -> httpx.Response:
        attempts = self.retries + 1 if safe else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._http.request(method, path, json=json)
            except httpx.ConnectError as exc:
                if last:
                    raise ModelHostError("unreachable", f"cannot reach the model host at {self.root} ({exc}); check "
                                         "COPYBOT_MODEL_URL and that the model server is running") from exc  # fmt: skip
                self._sleep(attempt, None, f"{method} {path}: {exc}")
                continue
            except httpx.TimeoutException as exc:
                # Completions are not retried on a timeout: the user has already waited the whole timeout once.
                raise ModelHostError("timeout", f"the model host at {self.root} did not answer {method} {path} in "
                                     f"time ({type(exc).__name__}); it may be overloaded or the GPU stuck") from exc  # fmt: skip
            if response.status_code in (429, 503) and not last:
                self._sleep(attempt, response.headers.get("retry-after"), f"{method} {path}: {response.status_code}")
                continue
            return self._checked(response, method, path)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _sleep(self, attempt: int, retry_after: str | None, why: str) -> None:
        try:
            wait = float(retry_after) if retry_after is not None else self.backoff_s * 2**attempt
        except ValueError:
            wait = self.backoff_s * 2**attempt
        wait = min(wait, MAX_RETRY_AFTER_S)
        log.warning("model host: %s; retrying in %.1f s", why, wait)
        time.sleep(wait)

    def _checked(self, response: httpx.Response, method: str, path: str) -> httpx.Response:
        status = response.status_code
        if status < 400:
            return response
        message, param = error_fields(response)
        detail = f"{method} {path} -> HTTP {status}: {message}"
        if status == 401:
            raise ModelHostError("auth", f"the model host refused the API key ({detail}); set COPYBOT_MODEL_API_KEY "
                                 "to the key the host was started with", status=status)  # fmt: skip
        if status in (429, 503):
            raise ModelHostError("busy", f"the model host is full ({detail}) after {self.retries + 1} tries; add "
                                 "capacity or lower the load", status=status)  # fmt: skip
        if status == 404:
            raise ModelHostError("not_found", detail, status=status, param=param)
        kind = "bad_request" if status < 500 else "server"
        raise ModelHostError(kind, detail, status=status, param=param)
