"""The bot's in-process writer batches copy requests from its pool's workers and writes what it writes alone."""

from __future__ import annotations

import threading
from pathlib import Path

from bot.generation import ActiveAdapterBackend, make_writer, write_brief
from bot.settings import Settings
from bot.slack.pool import GenerationPool
from model.writing.batching import BatchingEngine
from model.writing.brief import Brief
from storage import Store


def test_copy_requests_on_the_pool_share_batches_and_write_as_alone(home_with_starter: Path, store: Store) -> None:
    settings = Settings.from_env({"COPYBOT_HOME": str(home_with_starter), "COPYBOT_BATCH_WINDOW_MS": "300",
                                  "COPYBOT_GENERATION_WORKERS": "4"})  # fmt: skip
    batched = make_writer(settings, store=store, batched=True)
    backend = batched.backend
    assert isinstance(backend, ActiveAdapterBackend) and isinstance(backend.engine, BatchingEngine)
    briefs = [Brief.create(product="린넨 셔츠", event="여름 세일", age="20대", n=3),
              Brief.create(product="수분 크림", event="", age="50대", n=2),
              Brief.create(product="캠핑 의자", event="주말 특가", age="30대", n=3, channel="sms")]  # fmt: skip
    pool = GenerationPool(settings.generation_workers)
    written: dict[int, list[str]] = {}
    done = threading.Barrier(len(briefs) + 1)

    def job(i: int) -> None:
        generation, _ = write_brief(store, batched, briefs[i], seed=10 + i)
        written[i] = [c.text for c in generation.candidates]
        done.wait(120)

    for i in range(len(briefs)):
        assert pool.reserve()
        pool.submit(i, lambda i=i: job(i))
    done.wait(300)
    pool.shutdown(10)
    assert backend.engine.batches[0] == len(briefs)  # the three requests' first rounds were written together
    alone = make_writer(settings, store=store)  # the engine called directly, one request at a time
    assert not isinstance(alone.backend.engine, BatchingEngine)  # type: ignore[attr-defined]
    for i, brief in enumerate(briefs):
        assert written[i] == [c.text for c in alone.write(brief, seed=10 + i).candidates]
