"""One adapter samples alike whoever serves it: a version's saved temperature factor is applied by copybot's own
model server, and by the bot itself for a host that does not know it (vLLM), never twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.generation import ActiveAdapterBackend
from model.adapter_info import INFO_FILE
from model.serving.client import ModelClient
from model.serving.remote import RemoteBackend
from model.serving.server import ServerConfig, create_server
from model.writing.engine import LocalEngine
from storage import Store
from tests.fakes.vllm import BASE, FakeVLLM
from tests.http_server import serving

PROMPT = "<제품>린넨 셔츠<행사>여름 세일<20대><sns><polite><카피>"


def _active(store: Store, version: str, scale: float, path: str = "/host/adapters/v0003") -> None:
    metrics = {"new": {"temperature_scale": scale}, "old": {}}
    store.add_model_version(version=version, base_model=BASE, adapter_path=path, parent_version="",
                            status="candidate", metrics=metrics)  # fmt: skip
    store.promote_model_version(version)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path / "copybot.db")
    yield store
    store.close()


def test_the_bot_applies_the_factor_for_a_host_that_does_not(store: Store) -> None:
    vllm = FakeVLLM()  # lists v0003 without any copybot field, as vLLM does
    _active(store, "v0003", 1.25)
    backend = ActiveAdapterBackend(RemoteBackend(ModelClient("http://gpu:8000/v1", transport=vllm.transport())), store)
    backend.complete([PROMPT], max_tokens=8, temperature=0.8, top_p=0.95)
    backend.engine.use_adapter(None, BASE)  # the bare base model has no factor
    backend.engine.complete([PROMPT], max_tokens=8, temperature=0.8, top_p=0.95)
    sent = [(body["model"], body["temperature"]) for _, path, body in vllm.requests if path == "/v1/completions"]
    assert sent == [("v0003", pytest.approx(1.0)), (BASE, 0.8)]


def test_copybot_s_own_server_applies_it_and_the_bot_sends_the_plain_temperature(
    store: Store, engine: LocalEngine, adapters_root: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "registry" / "v0001"
    folder.parent.mkdir()
    folder.symlink_to(adapters_root / "v0001", target_is_directory=True)
    info = json.loads((adapters_root / "v0001" / INFO_FILE).read_text("utf-8"))
    scale = float(info.get("decoding", {}).get("temperature_scale", 1.0))
    _active(store, "v0001", 1.25, path=str(folder))
    sent: list[float] = []

    class Recording(ModelClient):
        def complete(self, prompts: list[str], **kwargs: Any) -> list[str]:
            sent.append(kwargs["temperature"])
            return super().complete(prompts, **kwargs)

    config = ServerConfig(base_name="starter", adapters={"v0001": folder})
    with serving(create_server(engine, config)) as url:
        listed = {m["id"]: m for m in ModelClient(url).models()}
        assert listed["v0001"]["temperature_scale"] == scale and "temperature_scale" not in listed["starter"]
        backend = ActiveAdapterBackend(RemoteBackend(Recording(url)), store)
        assert backend.complete([PROMPT], max_tokens=4, temperature=0.8, top_p=0.95, seed=1)
    assert sent == [0.8]  # the server multiplies it by the factor it read from the adapter's own copybot.json
