"""Reranking wherever the model is served (issue 37): the model server's `POST /v1/embeddings` through the official
`openai` client (the shape, per adapter), and the remote backend reranking with it exactly as the in-process engine
does; a host without features (vLLM) says so and the bot writes no wasted pool."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from model.serving.client import ModelClient
from model.serving.remote import RemoteBackend
from model.serving.server import ServerConfig, create_server
from model.writing.brief import Brief
from model.writing.engine import LocalEngine
from model.writing.rerank import Option, Reranker, choose
from model.writing.reward_model import RewardModel, reward_prompt
from tests.fakes.vllm import FakeVLLM
from tests.http_server import serving

KEY = "s3cret"
BRIEF = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대", channel="sns")
TEXTS = [
    "여름엔 린넨이죠!",
    "가볍게 입어 보세요.",
    "시원함을 선물해요.",
    "오늘만 특별가예요.",
    "지금 만나 보세요 😊",
    "린넨 셔츠 20% 할인",
]


@pytest.fixture
def url(engine: LocalEngine, adapters_root: Path) -> Iterator[str]:
    config = ServerConfig(
        base_name="starter", api_key=KEY, adapters={"v0001": adapters_root / "v0001"}, adapters_root=adapters_root
    )
    with serving(create_server(engine, config)) as base:
        yield base


def _reward(width: int, path: Path) -> Reranker:
    """A reward with random weights over the hidden-state columns (what it likes does not matter here)."""
    rng = random.Random(3)
    RewardModel([rng.gauss(0, 1) for _ in range(width)], 0.1, [0.0] * width, [1.0] * width, "starter").save(path)
    return Reranker(path, "starter")


def test_embeddings_in_openais_shape_per_adapter(url: str, engine: LocalEngine) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=120)
    prompts = [reward_prompt(BRIEF, "polite")] * len(TEXTS)
    base = client.embeddings.create(model="starter", input=TEXTS, extra_body={"prompts": prompts})
    assert base.object == "list" and base.model == "starter" and [d.index for d in base.data] == list(range(6))
    assert base.usage.prompt_tokens > 0
    expected = engine.features(prompts, TEXTS)
    assert all(len(d.embedding) == len(expected[0]) for d in base.data)
    for got, want in zip(base.data, expected, strict=True):  # the openai client asks for base64 float32
        assert got.embedding == pytest.approx(want, rel=1e-5, abs=1e-5)
    adapted = client.embeddings.create(model="v0001", input=TEXTS[:2], extra_body={"prompts": prompts[:2]})
    assert adapted.data[0].embedding != pytest.approx(base.data[0].embedding, abs=1e-3)  # its own hidden states
    plain = client.embeddings.create(model="starter", input="여름엔 린넨이죠!", encoding_format="float")
    assert len(plain.data) == 1 and len(plain.data[0].embedding) == len(expected[0])
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="v0099", input=["x"])
    with pytest.raises(openai.BadRequestError, match="one per input"):
        client.embeddings.create(model="starter", input=["a", "b"], extra_body={"prompts": ["p"]})


def test_the_remote_backend_reranks_as_the_engine_does(url: str, engine: LocalEngine, tmp_path: Path) -> None:
    remote = RemoteBackend(ModelClient(f"{url}/v1", api_key=KEY))
    registers = ["polite"] * len(TEXTS)
    width = len(engine.features([reward_prompt(BRIEF, "polite")], TEXTS[:1])[0]) // 2
    reranker = _reward(width, tmp_path / "reward.json")
    here = reranker.scores(engine, BRIEF, TEXTS, registers)
    there = reranker.scores(remote, BRIEF, TEXTS, registers)
    assert here is not None and there == pytest.approx(here, rel=1e-4, abs=1e-4)
    pick = [choose([Option(t, 0, s) for t, s in zip(TEXTS, scores, strict=True)], 3) for scores in (here, there)]
    assert pick[0] == pick[1] and reranker.unavailable == ""


def test_a_host_without_features_is_said_once_and_costs_no_pool(
    engine: LocalEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vllm = RemoteBackend(ModelClient("http://gpu:8000/v1", transport=FakeVLLM().transport(), retries=0))
    width = len(engine.features([reward_prompt(BRIEF, "polite")], TEXTS[:1])[0]) // 2
    reranker = _reward(width, tmp_path / "reward.json")
    assert reranker.worth_a_pool()
    for _ in range(3):
        assert reranker.scores(vllm, BRIEF, TEXTS, ["polite"] * len(TEXTS)) is None
    assert "the model host gave no features" in reranker.unavailable
    assert sum("candidates are not reranked" in r.getMessage() for r in caplog.records) == 1
    assert not reranker.worth_a_pool()  # the bot writes n, not 2n, until it tries again


def test_copy_status_says_whether_candidates_are_reranked_and_why_not(engine: LocalEngine, tmp_path: Path) -> None:
    from dataclasses import dataclass

    from bot.slack.admin import rerank_text

    @dataclass
    class Deps:  # what rerank_text reads of BotDeps
        writer: object

    @dataclass
    class Writer:
        reranker: Reranker | None

    reranker = Reranker(tmp_path / "none.json", "starter")
    assert "아직 보상 모델이 없어요" in rerank_text(Deps(Writer(reranker)))  # type: ignore[arg-type]
    width = len(engine.features([reward_prompt(BRIEF, "polite")], TEXTS[:1])[0]) // 2
    reranker = _reward(width, tmp_path / "reward.json")
    assert rerank_text(Deps(Writer(reranker))).startswith("켜짐")  # type: ignore[arg-type]
    vllm = RemoteBackend(ModelClient("http://gpu:8000/v1", transport=FakeVLLM().transport(), retries=0))
    reranker.scores(vllm, BRIEF, TEXTS, ["polite"] * len(TEXTS))
    assert "꺼짐: 모델 서버가 특징값을 주지 않아요" in rerank_text(Deps(Writer(reranker)))  # type: ignore[arg-type]


def test_a_vllm_host_with_a_features_server_beside_it_reranks_as_in_process(
    url: str, engine: LocalEngine, tmp_path: Path
) -> None:
    vllm = ModelClient("http://gpu:8000/v1", transport=FakeVLLM().transport(), retries=0)
    backend = RemoteBackend(vllm, features_client=ModelClient(f"{url}/v1", api_key=KEY))  # COPYBOT_FEATURES_URL
    width = len(engine.features([reward_prompt(BRIEF, "polite")], TEXTS[:1])[0]) // 2
    reranker = _reward(width, tmp_path / "reward.json")
    registers = ["polite"] * len(TEXTS)
    here, there = reranker.scores(engine, BRIEF, TEXTS, registers), reranker.scores(backend, BRIEF, TEXTS, registers)
    assert here is not None and there == pytest.approx(here, rel=1e-4, abs=1e-4)
