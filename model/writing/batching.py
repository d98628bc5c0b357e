"""Dynamic batching: requests that arrive together share one `generate` call (issue 19).

A model writes 16 rows in one step almost as fast as one on a GPU (and much faster than 16 steps on a CPU, where
each step's Python overhead dominates a small model), but callers arrive one by one from their own threads: Slack
copy requests on the bot's pool, HTTP requests on the model server. `BatchingEngine` puts each call in a queue; one
worker thread takes the oldest waiting call and writes every waiting call for the same adapter in one
`LocalEngine.complete_batch`, up to `max_batch` rows. When the model was idle it first waits for company, until no
call has arrived for `window_ms`. Calls that arrive while a batch is being written wait for the next one, so a
rush is written in a few large batches instead of a long line. A call is answered as soon as its own rows are
finished, not when the batch's longest row is. Each call keeps its own sampling, seed, stop strings, length and
sibling penalty (model/writing/sampling.py); a call cancelled while it waits never runs, and one cancelled while
its batch runs stops its rows there, leaving the others to finish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any

from model.writing.sampling import Job

log = logging.getLogger(__name__)

WINDOW_MS = 5.0  # an idle model starts once no call has arrived for this long (callers who send together)
MAX_BATCH = 256  # rows (prompts x n) in one batch, vLLM's default max_num_seqs; a larger single call runs alone
WAIT_CAP = 10  # windows a call may wait for company while others keep arriving


@dataclass(eq=False)
class Ticket:
    """A call waiting for or being written by the batcher: `future` gives its texts; `cancel()` withdraws it."""

    job: Job
    adapter: str | None
    future: Future[list[str]] = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Withdraw the call: it leaves the queue, or its rows stop at the next step of the running batch."""
        self._cancelled.set()
        self.future.cancel()  # a waiting caller is released at once; a running future cannot be cancelled

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


class BatchingEngine:
    """A `LocalEngine` whose `complete` calls from many threads are written in shared batches, by adapter. Every
    other attribute (use_adapter, features, tokenizer, version …) is the engine's own."""

    def __init__(self, engine: Any, *, window_ms: float = WINDOW_MS, max_batch: int = MAX_BATCH,
                 continuous: bool = True) -> None:  # fmt: skip
        if window_ms < 0 or max_batch < 1:
            raise ValueError("the batching window must be at least 0 ms and the batch at least 1 row")
        self.engine, self.window_s, self.max_batch = engine, window_ms / 1000, max_batch
        # calls join a running batch between its steps where the engine can (model/writing/decoding.py)
        self.continuous = continuous and hasattr(engine, "decoding")
        self._waiting: list[Ticket] = []
        self._running: list[Ticket] = []  # the batch being written
        self._changed = threading.Condition()
        self._closed = False
        self.batches: deque[int] = deque(maxlen=1000)  # calls per batch, the last 1000 (benchmarks and tests)
        self._worker = threading.Thread(target=self._run, name="copybot-batcher", daemon=True)
        self._worker.start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def submit(self, prompts: Sequence[str], *, model: str | None = None, **sampling: Any) -> Ticket:
        """Queue a call; its adapter is settled now (a hot swap after this does not change what writes it)."""
        ticket = Ticket(Job(list(prompts), **sampling), self.engine.resolve(model))
        ticket.job.cancelled = lambda: ticket.cancelled
        with self._changed:
            if self._closed:
                raise RuntimeError("the batching engine is closed")
            self._waiting.append(ticket)
            self._changed.notify()
        return ticket

    def complete(self, prompts: list[str], *, model: str | None = None, **sampling: Any) -> list[str]:
        """The engine's `complete`, written beside whatever other calls are waiting for the same adapter."""
        ticket = self.submit(prompts, model=model, **sampling)
        try:
            return ticket.future.result()
        except BaseException:
            ticket.cancel()  # a caller interrupted while it waits does not leave work behind
            raise

    def waiting(self) -> int:
        """Calls waiting for a batch, withdrawn ones not counted."""
        with self._changed:
            return sum(not t.cancelled for t in self._waiting)

    def close(self, timeout: float = 60) -> None:
        """Stop: calls still waiting are cancelled, the batch being written stops at its next step (its callers
        hear CancelledError), and the worker ends; waits up to `timeout` for it."""
        with self._changed:
            self._closed = True
            for ticket in self._waiting + self._running:
                ticket.cancel()
            self._waiting.clear()
            self._changed.notify()
        self._worker.join(timeout=timeout)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._write(batch)

    def _next_batch(self) -> list[Ticket] | None:
        """The oldest waiting call and every waiting call for its adapter, up to `max_batch` rows, once arrivals
        pause (see `_deadline`) or the rows fill a batch. None once closed."""
        with self._changed:
            while True:
                while not self._closed and not self._live():
                    self._changed.wait()
                while not self._closed and self._live() and self._rows(self._waiting[0].adapter) < self.max_batch:
                    left = self._deadline() - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
                if self._closed:
                    return None
                if self._live():  # else every call cancelled during the window: wait for the next
                    return self._take(self._waiting[0].adapter)

    def _deadline(self) -> float:
        """When the waiting calls go: once no call has arrived for `window_ms` (callers who send together arrive a
        few milliseconds apart), but no later than `WAIT_CAP` windows after the oldest arrived. Calls that queued
        behind a running batch have waited long enough: they go as soon as it ends, unless others are arriving."""
        return min(self._waiting[0].arrived + WAIT_CAP * self.window_s, self._waiting[-1].arrived + self.window_s)

    def _take(self, adapter: str | None, rows: int = 0) -> list[Ticket]:
        """The waiting calls for `adapter`, oldest first, that fit in `max_batch` rows beside the `rows` a running
        batch holds (a new batch takes at least one call), off the queue; the oldest that does not fit stops the
        taking, so that it goes first. Called with the condition held."""
        batch: list[Ticket] = []
        for ticket in [t for t in self._waiting if t.adapter == adapter]:
            if (batch or rows) and rows + len(ticket.job.prompts) > self.max_batch:
                break
            batch.append(ticket)
            rows += len(ticket.job.prompts)
        self._waiting = [t for t in self._waiting if t not in batch]
        return batch

    def _live(self) -> bool:
        """Drop cancelled calls from the queue; whether any call still waits. Called with the condition held."""
        self._waiting = [t for t in self._waiting if not t.cancelled]
        return bool(self._waiting)

    def _rows(self, adapter: str | None) -> int:
        return sum(len(t.job.prompts) for t in self._waiting if t.adapter == adapter)

    def _write(self, batch: list[Ticket]) -> None:
        running = [t for t in batch if t.future.set_running_or_notify_cancel()]
        if not running:
            return
        with self._changed:
            self._running = running
        self.batches.append(len(running))
        if self.continuous and self._decoded(running):
            return

        try:  # a call whose rows are done is answered then, without waiting for the others
            texts = self.engine.complete_batch([t.job for t in running], model=self._name(running[0].adapter),
                                               on_done=lambda i, texts: self._answer(running[i], texts))  # fmt: skip
        except Exception as exc:
            self._fail(running, exc)
            return
        finally:
            with self._changed:
                self._running = []
        for ticket, result in zip(running, texts, strict=True):
            self._answer(ticket, result)  # those not answered yet (a withdrawn one hears CancelledError)

    def _decoded(self, running: list[Ticket]) -> bool:
        """Write `running` as a continuous batch: between steps, calls waiting for the same adapter join it, as
        long as they fit in `max_batch` rows and no call for another adapter waits (then the batch drains, and the
        next batch is theirs). False, having done nothing, where the engine writes only whole batches."""
        try:
            decoding = self.engine.decoding(self._name(running[0].adapter), self._answer, self._withdrawn)
        except Exception as exc:  # an adapter dropped since the calls were queued
            self._fail(running, exc)
            return True
        if decoding is None:
            return False
        try:
            decoding.admit([(t, t.job) for t in running])
            while decoding.active:
                decoding.step()
                joining = self._joining(running[0].adapter, decoding.rows)
                if joining:
                    self.batches.append(len(decoding.requests) + len(joining))
                    try:
                        decoding.admit([(t, t.job) for t in joining])
                    except Exception as exc:  # the newcomers fail (their prompts, say); the batch goes on
                        self._fail(joining, exc)
        except Exception as exc:
            with self._changed:
                failed = list(self._running)
            self._fail(failed, exc)
        finally:
            with self._changed:
                self._running = []
        return True

    def _fail(self, tickets: list[Ticket], exc: Exception) -> None:
        """Every caller in a failed batch (or failed group of newcomers) hears why, and the worker goes on."""
        log.warning("a batch of %d calls failed: %s", len(tickets), exc)
        for ticket in tickets:
            if not ticket.future.done():
                ticket.future.set_exception(exc)
            self._leave(ticket)

    def _answer(self, ticket: Ticket, texts: list[str]) -> None:
        """A batch's answer to one of its calls, unless it has one; a call withdrawn meanwhile hears CancelledError."""
        if not ticket.future.done():
            if ticket.cancelled:
                ticket.future.set_exception(CancelledError())
            else:
                ticket.future.set_result(texts)
        self._leave(ticket)

    def _withdrawn(self, ticket: Ticket) -> None:
        """A call withdrawn from a continuous batch: its caller, if still waiting, hears so."""
        if not ticket.future.done():
            ticket.future.set_exception(CancelledError())
        self._leave(ticket)

    def _leave(self, ticket: Ticket) -> None:
        with self._changed:
            self._running = [t for t in self._running if t is not ticket]

    def _joining(self, adapter: str | None, rows: int) -> list[Ticket]:
        """The waiting calls for `adapter` that join the running batch now, oldest first, off the queue."""
        with self._changed:
            if self._closed or not self._live():
                return []
            if any(t.adapter != adapter for t in self._waiting):
                return []
            joining = [t for t in self._take(adapter, rows) if t.future.set_running_or_notify_cancel()]
            self._running += joining
            return joining

    def _name(self, adapter: str | None) -> str:
        """The model name that makes the engine write with `adapter` (None: the base model)."""
        return adapter if adapter is not None else self.engine.base_version
