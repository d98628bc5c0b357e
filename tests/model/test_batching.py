"""Dynamic batching (issue 19): requests written side by side write what they would write alone.

Equality is exact here: the starter runs in float32 on the CPU, where a row's logits beside other rows differ from
its logits alone by at most float rounding (padding to a longer prompt, another matrix shape). Such noise could
in principle flip a draw that falls within about 1e-6 of a boundary between two tokens; none of these fixed seeds
does, and on a GPU in bfloat16 the noise is larger (docs/gpu-host.md).
"""

from __future__ import annotations

import threading
import time
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


class Recording:
    """The real engine; each batch it is asked to write is noted (its model and how many calls it holds)."""

    def __init__(self, engine: LocalEngine, hold: threading.Event | None = None) -> None:
        self.engine, self.hold, self.batches = engine, hold, []
        self.entered = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def complete_batch(self, jobs: list[Job], *, model: str | None = None, **kwargs: Any) -> list[list[str]]:
        self.batches.append((model, len(jobs)))
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(30)
        return self.engine.complete_batch(jobs, model=model, **kwargs)


def test_each_job_of_a_batch_writes_what_it_writes_alone(engine: LocalEngine) -> None:
    shirt, cream = _prompts(engine)
    jobs = [Job([shirt] * 3, max_tokens=30, temperature=0.9, seed=7),
            Job([cream] * 2, max_tokens=12, temperature=0.7, top_p=0.8, seed=11, stop=["오픈"]),
            Job([shirt, cream], max_tokens=20, temperature=0.0),
            Job([shirt] * 2, max_tokens=30, temperature=1.1, seed=7, avoid=["여름엔 린넨 셔츠"]),
            Job([cream] * 2, max_tokens=20, temperature=0.9, top_p=1.0, seed=5)]  # every token kept (OpenAI's default)  # fmt: skip
    together = engine.complete_batch(jobs)
    alone = [engine.complete_batch([job])[0] for job in jobs]
    assert together == alone
    for job, texts in zip(jobs, together, strict=True):
        assert len(texts) == len(job.prompts)
        lengths = [len(engine.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        assert max(lengths) <= job.max_tokens + 1  # its own limit (+1: a decoded boundary may re-split a token)
    unstopped = engine.complete([cream] * 2, max_tokens=12, temperature=0.7, top_p=0.8, seed=11)
    assert any("오픈" in t for t in unstopped) and not any("오픈" in t for t in together[1])  # cut at its own stop
    assert any("오픈" in t for t in together[2])  # which the others do not have
    assert together[2] == engine.complete([shirt, cream], max_tokens=20, temperature=0.0)


def test_a_job_whose_rows_are_done_is_answered_before_the_batch_ends(engine: LocalEngine) -> None:
    shirt, cream = _prompts(engine)
    steps: list[int] = []
    answered: dict[int, tuple[int, list[str]]] = {}

    def count() -> bool:  # asked once a step: the long job's rows count the steps
        steps.append(1)
        return False

    short = Job([cream] * 2, max_tokens=3, temperature=0.9, seed=2)
    long = Job([shirt] * 2, max_tokens=60, temperature=0.9, seed=3, cancelled=count)
    texts = engine.complete_batch([long, short], on_done=lambda i, t: answered.__setitem__(i, (len(steps), t)))
    assert answered[1] == (3, texts[1])  # the short one at its third step, with what the call returned for it
    assert answered[0][0] > 3 and answered[0][1] == texts[0] and len(steps) > 3
    assert texts == [engine.complete_batch([long])[0], engine.complete_batch([short])[0]]


def test_the_batcher_answers_a_finished_call_while_its_batch_goes_on(engine: LocalEngine) -> None:
    shirt, cream = _prompts(engine)
    recording = Recording(engine)
    batcher = BatchingEngine(recording, window_ms=200, continuous=False)
    seen: list[tuple[int, list[bool]]] = []
    original = recording.complete_batch

    def watching(jobs: list[Job], **kwargs: Any) -> list[list[str]]:
        answer = kwargs.pop("on_done")

        def noted(i: int, texts: list[str]) -> None:
            answer(i, texts)
            seen.append((i, [t.future.done() for t in tickets]))  # still inside the batch's generate call

        return original(jobs, on_done=noted, **kwargs)

    recording.complete_batch = watching  # type: ignore[method-assign]
    try:
        tickets = [batcher.submit([shirt] * 2, seed=3, max_tokens=60), batcher.submit([cream], seed=2, max_tokens=3)]
        results = [t.future.result(timeout=120) for t in tickets]
        assert seen[0] == (1, [False, True])  # the short call was answered while the long one was being written
        assert results == [engine.complete([shirt] * 2, seed=3, max_tokens=60),
                           engine.complete([cream], seed=2, max_tokens=3)]  # fmt: skip
    finally:
        batcher.close()


def test_a_job_cancelled_mid_batch_stops_and_the_others_finish_as_alone(engine: LocalEngine) -> None:
    shirt, cream = _prompts(engine)
    steps = []

    def cancelled() -> bool:
        steps.append(1)
        return len(steps) > 3  # withdrawn at the fourth step

    keep = Job([shirt] * 2, max_tokens=40, temperature=0.9, seed=5)
    drop = Job([cream] * 2, max_tokens=40, temperature=0.9, seed=5, cancelled=cancelled)
    kept, dropped = engine.complete_batch([keep, drop])
    assert kept == engine.complete_batch([keep])[0]
    full = engine.complete_batch([Job([cream] * 2, max_tokens=40, temperature=0.9, seed=5)])[0]
    assert all(len(d) < len(f) for d, f in zip(dropped, full, strict=True))


def test_calls_waiting_together_share_one_batch_and_write_as_alone(engine: LocalEngine) -> None:
    shirt, cream = _prompts(engine)
    recording = Recording(engine)
    batcher = BatchingEngine(recording, window_ms=200, continuous=False)
    try:
        calls = [([shirt] * 3, {"seed": 1}), ([cream] * 2, {"seed": 2, "max_tokens": 10}), ([shirt], {"seed": 3})]
        tickets = [batcher.submit(p, temperature=0.9, **kw) for p, kw in calls]
        results = [t.future.result(timeout=120) for t in tickets]
        assert recording.batches == [("starter", 3)]
        assert results == [engine.complete(p, temperature=0.9, **kw) for p, kw in calls]
        # callers on their own threads, as the bot's pool and the server call it
        out: dict[int, list[str]] = {}
        threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, batcher.complete(calls[i][0], temperature=0.9,
                                                                                            **calls[i][1])))
                   for i in range(3)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert [out[i] for i in range(3)] == results  # however the threads' calls fell into batches
    finally:
        batcher.close()


def test_different_adapters_never_share_a_batch(engine: LocalEngine, adapters_root: Path) -> None:
    shirt, _ = _prompts(engine)
    engine.add_adapter(adapters_root / "v0001", "v0001")
    recording = Recording(engine)
    batcher = BatchingEngine(recording, window_ms=200, continuous=False)
    try:
        models = ["starter", "v0001", None, "v0001"]  # None: the default, the bare base here
        tickets = [batcher.submit([shirt] * 2, model=m, temperature=0.9, seed=4, max_tokens=20) for m in models]
        results = [t.future.result(timeout=120) for t in tickets]
        assert sorted(recording.batches) == [("starter", 2), ("v0001", 2)]
        base = engine.complete([shirt] * 2, model="starter", temperature=0.9, seed=4, max_tokens=20)
        tuned = engine.complete([shirt] * 2, model="v0001", temperature=0.9, seed=4, max_tokens=20)
        assert results == [base, tuned, base, tuned] and base != tuned
    finally:
        batcher.close()
        engine.remove_adapter("v0001")


def test_a_call_withdrawn_while_it_waits_is_never_written(engine: LocalEngine) -> None:
    shirt, cream = _prompts(engine)
    hold = threading.Event()
    recording = Recording(engine, hold)
    batcher = BatchingEngine(recording, window_ms=0, continuous=False)
    try:
        first = batcher.submit([shirt], seed=1, max_tokens=8)
        assert recording.entered.wait(30)  # the first batch is being written (held)
        withdrawn = batcher.submit([cream], seed=2, max_tokens=8)
        third = batcher.submit([shirt], seed=3, max_tokens=8)
        assert batcher.waiting() == 2
        withdrawn.cancel()
        assert batcher.waiting() == 1
        hold.set()
        assert first.future.result(timeout=60) and third.future.result(timeout=60)
        with pytest.raises(CancelledError):
            withdrawn.future.result(timeout=1)
        assert [n for _, n in recording.batches] == [1, 1]  # the withdrawn call was never written
    finally:
        hold.set()
        batcher.close()


def test_a_failed_batch_tells_its_callers_and_the_batcher_goes_on(engine: LocalEngine) -> None:
    from model.errors import AdapterError

    shirt, _ = _prompts(engine)
    batcher = BatchingEngine(engine, window_ms=0)
    try:
        with pytest.raises(AdapterError, match="not loaded"):
            batcher.complete([shirt], model="v0099", max_tokens=4)
        assert batcher.complete([shirt], max_tokens=4, seed=1) == engine.complete([shirt], max_tokens=4, seed=1)
    finally:
        batcher.close()


def test_the_window_waits_for_company_only_while_calls_keep_arriving(engine: LocalEngine) -> None:
    shirt, _ = _prompts(engine)
    recording = Recording(engine)
    batcher = BatchingEngine(recording, window_ms=100, continuous=False)
    try:
        started = time.monotonic()
        batcher.complete([shirt], max_tokens=2, seed=1)
        alone = time.monotonic() - started
        assert recording.batches == [("starter", 1)] and alone >= 0.1  # waited one window, then wrote alone
    finally:
        batcher.close()
    with pytest.raises(ValueError, match="at least"):
        BatchingEngine(engine, max_batch=0)


def test_closing_stops_the_batch_being_written_and_cancels_the_waiting(engine: LocalEngine) -> None:
    shirt, cream = _prompts(engine)
    hold = threading.Event()
    recording = Recording(engine, hold)
    batcher = BatchingEngine(recording, window_ms=0, continuous=False)
    running = batcher.submit([shirt], seed=1, max_tokens=100)
    assert recording.entered.wait(30)
    waiting = batcher.submit([cream], seed=2, max_tokens=8)
    closer = threading.Thread(target=batcher.close)
    closer.start()
    hold.set()  # the held batch now runs, and stops at its first step: its call was withdrawn
    closer.join(60)
    assert not closer.is_alive() and not batcher._worker.is_alive()
    for ticket in (running, waiting):
        with pytest.raises(CancelledError):
            ticket.future.result(timeout=1)
    assert [n for _, n in recording.batches] == [1]
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit([shirt])
