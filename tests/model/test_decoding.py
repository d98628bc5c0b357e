"""Continuous batching (issue 19): requests join a running batch between its steps and leave it when done, and
each writes what it writes alone. Exact on the CPU in float32, as in test_batching.py (its note says why)."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

import pytest

from model.writing.batching import BatchingEngine
from model.writing.brief import Brief
from model.writing.engine import LocalEngine
from model.writing.sampling import Job


def _prompts(engine: LocalEngine) -> tuple[str, str]:
    shirt = engine.prompt_for(Brief.create(product="린넨 셔츠", event="여름 세일", age="20대"), "polite")
    cream = engine.prompt_for(Brief.create(product="수분 크림", event="", age="50대", channel="sms"), "formal")
    return shirt, cream


def _alone(engine: LocalEngine, job: Job, model: str | None = None) -> list[str]:
    return engine.complete_batch([job], model=model)[0]


def test_requests_that_join_between_steps_write_what_they_write_alone(engine: LocalEngine) -> None:
    shirt, cream = _prompts(engine)
    first = Job([shirt] * 3, max_tokens=40, temperature=0.9, seed=1)
    later = [Job([cream] * 2, max_tokens=12, temperature=0.7, top_p=0.8, seed=2, stop=["오픈"]),
             Job([shirt, cream], max_tokens=20, temperature=0.0),
             Job([cream] * 2, max_tokens=30, temperature=1.0, top_p=1.0, seed=3, avoid=["수분 가득 크림"])]  # fmt: skip
    answers: dict[Hashable, list[str]] = {}
    decoding = engine.decoding(None, answers.__setitem__, lambda key: None)
    assert decoding is not None
    decoding.admit([("first", first)])
    for _ in range(3):
        decoding.step()
    decoding.admit([(i, job) for i, job in enumerate(later)])  # three tokens behind the first
    rows = [decoding.rows]
    while decoding.active:
        decoding.step()
        rows.append(decoding.rows)
    assert answers["first"] == _alone(engine, first)
    assert [answers[i] for i in range(3)] == [_alone(engine, job) for job in later]
    assert rows[0] == 9 and rows[-1] == 0 and len(set(rows)) > 2  # requests left one by one as they finished


def test_a_withdrawn_request_leaves_and_the_others_finish_as_alone(engine: LocalEngine) -> None:
    shirt, cream = _prompts(engine)
    checks: list[int] = []

    def withdrawn() -> bool:
        checks.append(1)
        return len(checks) > 3

    keep = Job([shirt] * 2, max_tokens=40, temperature=0.9, seed=5)
    drop = Job([cream] * 2, max_tokens=40, temperature=0.9, seed=5, cancelled=withdrawn)
    answers: dict[Hashable, list[str]] = {}
    gone: list[Hashable] = []
    decoding = engine.decoding(None, answers.__setitem__, gone.append)
    assert decoding is not None
    decoding.admit([("keep", keep), ("drop", drop)])
    while decoding.active:
        decoding.step()
    assert gone == ["drop"] and set(answers) == {"keep"}
    assert answers["keep"] == _alone(engine, keep)


def test_finished_requests_take_their_rows_and_the_padding_with_them(engine: LocalEngine) -> None:
    _, cream = _prompts(engine)
    long_prompt = engine.prompt_for(Brief.create(product="린넨 셔츠와 반바지 세트", event="여름 정기 세일", age="20대"),
                                    "polite")  # fmt: skip
    answers: dict[Hashable, list[str]] = {}
    decoding = engine.decoding(None, answers.__setitem__, lambda key: None)
    assert decoding is not None
    decoding.admit([("long", Job([long_prompt], max_tokens=2, temperature=0.9, seed=1))])
    decoding.admit([("short", Job([cream] * 2, max_tokens=30, temperature=0.9, seed=2))])
    assert not bool(decoding.mask[1:].all())  # the short prompt is padded to the long one
    decoding.step()  # the long request has its two tokens, and leaves
    assert "long" in answers and decoding.rows == 2
    assert bool(decoding.mask.all())  # the columns that were padding for every row left with it
    assert decoding.cache.layers[0].keys.shape[2] == decoding.mask.shape[1]
    while decoding.active:
        decoding.step()
    assert answers["short"] == _alone(engine, Job([cream] * 2, max_tokens=30, temperature=0.9, seed=2))


def test_a_newcomer_longer_than_the_batch_pads_the_batch_and_both_write_as_alone(engine: LocalEngine) -> None:
    _, cream = _prompts(engine)
    long_prompt = engine.prompt_for(Brief.create(product="린넨 셔츠와 반바지 세트", event="여름 정기 세일", age="20대"),
                                    "polite")  # fmt: skip
    short = Job([cream] * 2, max_tokens=40, temperature=0.9, seed=7)
    long = Job([long_prompt] * 2, max_tokens=30, temperature=0.8, seed=8)
    answers: dict[Hashable, list[str]] = {}
    decoding = engine.decoding(None, answers.__setitem__, lambda key: None)
    assert decoding is not None
    decoding.admit([("short", short)])
    decoding.step()
    width = decoding.mask.shape[1]
    decoding.admit([("long", long)])
    assert decoding.mask.shape[1] > width and not bool(decoding.mask[:2, 0].any())  # the batch's rows were padded
    while decoding.active:
        decoding.step()
    assert answers == {"short": _alone(engine, short), "long": _alone(engine, long)}


def test_a_request_out_of_time_is_answered_with_what_it_has(engine: LocalEngine) -> None:
    shirt, _ = _prompts(engine)
    answers: dict[Hashable, list[str]] = {}
    before = engine.max_time_s
    try:
        engine.max_time_s = 0.0
        decoding = engine.decoding(None, answers.__setitem__, lambda key: None)
        assert decoding is not None
        decoding.admit([("late", Job([shirt] * 2, max_tokens=40, temperature=0.9, seed=1))])
    finally:
        engine.max_time_s = before
    assert not decoding.active and len(answers["late"]) == 2
    assert all(len(engine.tokenizer(t, add_special_tokens=False)["input_ids"]) <= 1 for t in answers["late"])


class Paused:
    """The real engine, whose continuous batches pause before their second step until the test lets them go."""

    def __init__(self, engine: LocalEngine) -> None:
        self.engine, self.paused, self.go = engine, threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def decoding(self, *args: Any) -> Any:
        decoding = self.engine.decoding(*args)
        step, steps = decoding.step, []

        def paused_step() -> None:
            steps.append(1)
            if len(steps) == 2:
                self.paused.set()
                assert self.go.wait(30)
            step()

        decoding.step = paused_step
        return decoding


@pytest.fixture
def held(engine: LocalEngine) -> Iterator[tuple[Paused, BatchingEngine]]:
    """A batcher over the real engine whose continuous batches pause before their second step."""
    paused = Paused(engine)
    batcher = BatchingEngine(paused, window_ms=0)
    yield paused, batcher
    paused.go.set()
    batcher.close()


@pytest.fixture
def tuned(engine: LocalEngine, adapters_root: Path) -> Iterator[str]:
    """v0001 loaded beside the base model for one test."""
    engine.add_adapter(adapters_root / "v0001", "v0001")
    yield "v0001"
    engine.remove_adapter("v0001")


def test_a_call_that_arrives_while_a_batch_runs_joins_it_at_the_next_step(
    engine: LocalEngine, held: tuple[Paused, BatchingEngine]
) -> None:
    shirt, cream = _prompts(engine)
    paused, batcher = held
    first = batcher.submit([shirt] * 2, temperature=0.9, seed=1, max_tokens=40)
    assert paused.paused.wait(30)
    second = batcher.submit([cream] * 2, temperature=0.9, seed=2, max_tokens=20)
    paused.go.set()
    assert first.future.result(timeout=120) == engine.complete([shirt] * 2, temperature=0.9, seed=1, max_tokens=40)
    assert second.future.result(timeout=120) == engine.complete([cream] * 2, temperature=0.9, seed=2, max_tokens=20)
    assert list(batcher.batches) == [1, 2]  # the second joined the first's batch


def test_a_call_for_another_adapter_lets_the_running_batch_drain_first(
    engine: LocalEngine, tuned: str, held: tuple[Paused, BatchingEngine]
) -> None:
    shirt, _ = _prompts(engine)
    paused, batcher = held
    options: dict[str, Any] = {"temperature": 0.9, "seed": 4, "max_tokens": 20}
    base = batcher.submit([shirt] * 2, model="starter", **options)
    assert paused.paused.wait(30)
    other = batcher.submit([shirt] * 2, model=tuned, **options)
    again = batcher.submit([shirt] * 2, model="starter", **options)  # may not overtake the waiting adapter
    paused.go.set()
    results = [t.future.result(timeout=120) for t in (base, other, again)]
    assert list(batcher.batches) == [1, 1, 1]
    alone = [engine.complete([shirt] * 2, model=m, **options) for m in ("starter", tuned, "starter")]
    assert results == alone and alone[0] != alone[1]


def test_newcomers_that_fail_to_join_fail_alone_and_the_batch_goes_on(
    engine: LocalEngine, held: tuple[Paused, BatchingEngine]
) -> None:
    shirt, _ = _prompts(engine)
    paused, batcher = held
    running = batcher.submit([shirt] * 2, temperature=0.9, seed=1, max_tokens=40)
    assert paused.paused.wait(30)
    empty = batcher.submit([], temperature=0.9, seed=2)  # nothing to read: its prefill fails
    paused.go.set()
    with pytest.raises((IndexError, ValueError)):  # the tokenizer's word on an empty list of prompts
        empty.future.result(timeout=60)
    assert running.future.result(timeout=120) == engine.complete([shirt] * 2, temperature=0.9, seed=1, max_tokens=40)
    assert batcher.complete([shirt], seed=3, max_tokens=4) == engine.complete([shirt], seed=3, max_tokens=4)


@pytest.mark.parametrize("change", ["unloaded", "loaded again from another folder"])
def test_an_adapter_changed_under_a_running_batch_fails_it_clearly(
    engine: LocalEngine, adapters_root: Path, tmp_path: Path, tuned: str, held: tuple[Paused, BatchingEngine],
    change: str,
) -> None:  # fmt: skip
    import shutil

    from model.errors import AdapterError

    shirt, _ = _prompts(engine)
    paused, batcher = held
    running = batcher.submit([shirt] * 2, model=tuned, temperature=0.9, seed=1, max_tokens=40)
    assert paused.paused.wait(30)
    # between two steps: the batch's cache was computed with the old weights, never to be continued with others
    if change == "unloaded":
        engine.remove_adapter(tuned)
    else:
        engine.add_adapter(shutil.copytree(adapters_root / tuned, tmp_path / tuned), tuned)
    paused.go.set()
    with pytest.raises(AdapterError, match="unloaded or replaced"):
        running.future.result(timeout=60)
    assert batcher.complete([shirt], seed=3, max_tokens=4) == engine.complete([shirt], seed=3, max_tokens=4)


def test_closing_stops_a_running_continuous_batch(engine: LocalEngine) -> None:
    shirt, cream = _prompts(engine)
    paused = Paused(engine)
    batcher = BatchingEngine(paused, window_ms=0)
    running = batcher.submit([shirt], seed=1, max_tokens=100)
    assert paused.paused.wait(30)
    closer = threading.Thread(target=batcher.close)
    closer.start()
    paused.go.set()  # the batch takes its step, finds its call withdrawn and ends
    closer.join(60)
    assert not closer.is_alive() and not batcher._worker.is_alive()
    with pytest.raises(CancelledError):
        running.future.result(timeout=1)
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit([cream])


def test_an_engine_that_writes_whole_batches_only_is_batched_as_before(engine: LocalEngine) -> None:
    # transformers' repetition penalty runs inside `generate`, so such an engine has no continuous batches
    shirt, _ = _prompts(engine)
    engine.repetition_penalty = 1.3
    batcher = BatchingEngine(engine, window_ms=0)
    try:
        assert engine.decoding(None, lambda key, texts: None, lambda key: None) is None
        options = {"temperature": 0.9, "seed": 6, "max_tokens": 20}
        assert batcher.complete([shirt] * 2, **options) == engine.complete([shirt] * 2, **options)  # type: ignore[arg-type]
        assert list(batcher.batches) == [1]
    finally:
        batcher.close()
        engine.repetition_penalty = 1.0


def test_only_models_whose_cache_rows_can_be_merged_and_that_add_no_processors_are_decodable() -> None:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, Qwen2Config, Qwen2ForCausalLM

    from model.writing.decoding import decodable

    small = {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8}  # fmt: skip
    qwen = Qwen2ForCausalLM(Qwen2Config(**small))
    assert decodable(qwen)
    qwen.generation_config.no_repeat_ngram_size = 3  # a processor generate would add and a decoding would not
    assert not decodable(qwen)
    gemma = Gemma3ForCausalLM(Gemma3TextConfig(**small, sliding_window=8))  # its local layers slide
    assert not decodable(gemma)
