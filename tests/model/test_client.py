"""The remote backend: our model server over real HTTP, and vLLM's recorded response shapes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from model.serving.client import ModelClient, ModelHostError, api_root
from model.serving.remote import RemoteBackend
from model.serving.server import ServerConfig, create_server
from model.writing.brief import Brief
from model.writing.engine import LocalEngine
from model.writing.writer import CopyWriter
from tests.fakes.vllm import BASE, FakeVLLM, nested_error
from tests.http_server import HeldEngine, serving

BRIEF = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대", channel="sns", n=3)


@pytest.fixture
def url(engine: LocalEngine, adapters_root: Path) -> Iterator[str]:
    with serving(
        create_server(engine, ServerConfig(base_name="starter", api_key="k", adapters_root=adapters_root))
    ) as u:
        yield u


def test_the_writer_through_client_and_server_gives_what_the_in_process_engine_gives(
    url: str, engine: LocalEngine
) -> None:
    engine.use_adapter(None, "starter")  # the module's engine may still hold another test's adapter
    # one round each: a retry keeps its copies apart from the first round's with the sibling penalty, which the
    # OpenAI-shaped API cannot carry (model/serving/remote.py), so only the first round is the same by design
    remote = CopyWriter(RemoteBackend(ModelClient(f"{url}/v1/", api_key="k")), max_extra_rounds=0)
    over_http = remote.write(BRIEF, seed=5)
    in_process = CopyWriter(engine, max_extra_rounds=0).write(BRIEF, seed=5)
    assert over_http.model_version == "starter"  # the host's base model id, asked for on first use
    assert len(over_http.candidates) == len(in_process.candidates) > 0
    assert [c.text for c in over_http.candidates] == [c.text for c in in_process.candidates]


def test_an_adapter_is_loaded_on_the_host_by_its_path_and_selected(url: str, adapters_root: Path) -> None:
    client = ModelClient(url, api_key="k")
    backend = RemoteBackend(client)
    base = backend.complete(["<제품>셔츠<행사>상시<20대><sns><polite><카피>"], max_tokens=12, temperature=0,
                            top_p=1.0, seed=1, stop=None)  # fmt: skip
    backend.use_adapter(adapters_root / "v0001", "v0001")
    assert [m["id"] for m in client.models()] == ["starter", "v0001"] and backend.version == "v0001"
    tuned = backend.complete(["<제품>셔츠<행사>상시<20대><sns><polite><카피>"], max_tokens=12, temperature=0,
                             top_p=1.0, seed=1, stop=None)  # fmt: skip
    assert tuned != base
    backend.use_adapter(adapters_root / "v0001", "v0001")  # already loaded: selected without a second load
    backend.use_adapter(None, "starter")
    assert backend.version == "starter"


def test_a_wrong_key_says_which_setting_to_fix(url: str) -> None:
    with pytest.raises(ModelHostError) as caught:
        ModelClient(url, api_key="wrong").models()
    assert caught.value.kind == "auth" and caught.value.status == 401
    assert "COPYBOT_MODEL_API_KEY" in str(caught.value) and "인증" in caught.value.user_message


def test_an_unknown_model_is_not_found(url: str) -> None:
    backend = RemoteBackend(ModelClient(url, api_key="k"))
    backend.use_adapter(None, "starter")
    backend._selected = "v0099"  # as if the store named a version the host never loaded
    with pytest.raises(ModelHostError) as caught:
        backend.complete(["x"], max_tokens=4, temperature=0, top_p=1.0)
    assert caught.value.kind == "not_found" and "v0099" in str(caught.value)
    assert caught.value.param == "model"  # the refused field, as the host named it


def test_an_unreachable_host_is_retried_then_reported() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ModelHostError) as caught:
        ModelClient(f"http://127.0.0.1:{port}", retries=2, backoff_s=0.01).models()
    assert caught.value.kind == "unreachable" and "COPYBOT_MODEL_URL" in str(caught.value)
    assert "연결하지 못했어요" in caught.value.user_message


def test_a_slow_host_times_out_without_a_retry(engine: LocalEngine) -> None:
    held = HeldEngine(engine)
    with serving(create_server(held, ServerConfig(base_name="starter"))) as url:
        with pytest.raises(ModelHostError) as caught:
            ModelClient(url, timeout_s=0.5).complete(["x"], model="starter", max_tokens=2, temperature=0, top_p=1)
        held.release.set()
    assert caught.value.kind == "timeout" and "늦어요" in caught.value.user_message


def test_a_full_queue_is_retried_after_retry_after_and_reported_when_it_stays_full(engine: LocalEngine) -> None:
    held = HeldEngine(engine)
    with serving(create_server(held, ServerConfig(base_name="starter", max_waiting=1))) as url:
        first = threading.Thread(target=lambda: httpx.post(f"{url}/v1/completions", timeout=60,
                                 json={"model": "starter", "prompt": "x", "max_tokens": 2}))  # fmt: skip
        first.start()
        assert held.entered.wait(20)
        with pytest.raises(ModelHostError) as caught:
            ModelClient(url, retries=0).complete(["x"], model="starter", max_tokens=2, temperature=0, top_p=1)
        assert caught.value.kind == "busy" and caught.value.status == 503 and "바빠요" in caught.value.user_message
        # with a retry, the host's Retry-After (2 s) is honoured and the request goes through once a slot is free
        threading.Timer(0.5, held.release.set).start()
        texts = ModelClient(url, retries=1).complete(["x"], model="starter", max_tokens=2, temperature=0, top_p=1)
        assert len(texts) == 1
        first.join(30)


# ---- vLLM's shapes -----------------------------------------------------------------------------------------------


def test_the_client_reads_vllm_responses() -> None:
    vllm = FakeVLLM()
    backend = RemoteBackend(ModelClient("http://gpu:8000/v1", transport=vllm.transport()))
    assert backend.version == BASE  # the entry without a parent
    texts = backend.complete(["a", "b", "c"], max_tokens=8, temperature=0.8, top_p=0.95, seed=3, stop=["\n\n"])
    assert texts == ["카피 0입니다.", "카피 1입니다.", "카피 2입니다."]  # matched by index, not list position
    method, path, body = vllm.requests[-1]
    assert (method, path, body["model"], body["prompt"], body["n"]) == ("POST", "/v1/completions", BASE, ["a", "b", "c"], 1)  # fmt: skip
    assert backend.client.health() == {"status": "ok"}  # vLLM's /health has an empty body

    backend.use_adapter("/srv/copybot/adapters/v0003", "v0003")  # listed already: no load
    assert not [r for r in vllm.requests if r[1] == "/v1/load_lora_adapter"]
    backend.use_adapter("/srv/copybot/adapters/v0004", "v0004")
    loads = [r[2] for r in vllm.requests if r[1] == "/v1/load_lora_adapter"]
    assert loads == [{"lora_name": "v0004", "lora_path": "/srv/copybot/adapters/v0004"}]
    backend.client.load_adapter("v0004", "/srv/copybot/adapters/v0004")  # vLLM's 400 "already loaded" is fine
    assert backend.complete(["a"], max_tokens=8, temperature=0.8, top_p=0.95) == ["카피 0입니다."]
    assert vllm.requests[-1][2]["model"] == "v0004"
    # copies to keep apart from (a trial's other side) have no field in the completions API: not sent
    assert backend.complete(["a"], max_tokens=8, temperature=0.8, top_p=0.95, avoid=["카피"]) == ["카피 0입니다."]
    assert "avoid" not in vllm.requests[-1][2] and vllm.requests[-1][2]["prompt"] == ["a"]


@pytest.mark.parametrize("flat", [False, True])
def test_vllm_errors_in_either_shape_keep_their_message(flat: bool) -> None:
    vllm = FakeVLLM(flat_errors=flat)
    client = ModelClient("http://gpu:8000", transport=vllm.transport())
    with pytest.raises(ModelHostError) as caught:
        client.complete(["a"], model="v0042", max_tokens=8, temperature=0.8, top_p=0.95)
    assert caught.value.kind == "not_found" and "The model `v0042` does not exist." in str(caught.value)


def test_only_calls_that_are_safe_to_repeat_are_retried() -> None:
    busy = (503, nested_error("busy", "ServiceUnavailableError", 503), {"Retry-After": "0"})
    vllm = FakeVLLM(fail=[busy])
    client = ModelClient("http://gpu:8000", transport=vllm.transport(), retries=2)
    assert client.complete(["a"], model=BASE, max_tokens=8, temperature=0.8, top_p=0.95) == ["카피 0입니다."]
    assert [r[1] for r in vllm.requests] == ["/v1/completions", "/v1/completions"]

    vllm.requests.clear()
    vllm.fail = [busy]
    with pytest.raises(ModelHostError) as caught:
        client.create_job({"dataset": {}})
    assert caught.value.kind == "busy" and len(vllm.requests) == 1  # a job is never created twice

    attempts = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        raise httpx.ConnectError("connection refused", request=request)

    down = ModelClient("http://gpu:8000", transport=httpx.MockTransport(refuse), retries=2, backoff_s=0.01)
    with pytest.raises(ModelHostError, match="cannot reach the model host at http://gpu:8000"):
        down.models()
    assert len(attempts) == 3


@pytest.mark.parametrize(("given", "root"), [("http://h:8000/v1", "http://h:8000"), ("http://h:8000/", "http://h:8000"),
                                             ("https://h/api/v1/", "https://h/api")])  # fmt: skip
def test_the_model_url_may_end_in_v1(given: str, root: str) -> None:
    assert api_root(given) == root


def test_following_a_job_passes_each_event_once_and_a_ctrl_c_cancels_it() -> None:
    """The job poller a retrain on the GPU host runs, against a host that answers the job routes (newest event
    first, as OpenAI's API and our server list them)."""
    from fastapi import FastAPI

    app, state = FastAPI(), {"polls": 0, "cancelled": 0}

    @app.get("/v1/fine_tuning/jobs/j1")
    def job() -> dict[str, str]:
        state["polls"] += 1
        return {"id": "j1", "status": "succeeded" if state["polls"] >= 2 else "running"}

    @app.get("/v1/fine_tuning/jobs/j1/events")
    def events() -> dict[str, list[dict[str, str]]]:
        shown = min(state["polls"] + 1, 3)
        return {"data": [{"id": f"e{i}", "message": f"step {i}"} for i in reversed(range(shown))]}

    @app.post("/v1/fine_tuning/jobs/j1/cancel")
    def cancel() -> dict[str, str]:
        state["cancelled"] += 1
        return {"id": "j1", "status": "cancelled"}

    with serving(app) as url:
        client = ModelClient(url)
        seen: list[str] = []
        done = client.follow_job({"id": "j1", "status": "running"}, on_event=seen.append, poll_s=0.01)
        assert done["status"] == "succeeded" and seen == ["step 0", "step 1", "step 2"] and not state["cancelled"]

        def interrupted(message: str) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            client.follow_job({"id": "j1", "status": "running"}, on_event=interrupted, poll_s=0.01)
        assert state["cancelled"] == 1  # the GPU does not go on training for nobody
