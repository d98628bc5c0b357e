"""A bounded pool for generations, separate from Bolt's listener threads, so a slow model never delays an ack."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
DEFAULT_QUEUE = 16


class GenerationPool:
    """At most `workers` generations run and `queue` more wait; beyond that, `reserve` says no at once."""

    def __init__(self, workers: int = DEFAULT_WORKERS, queue: int = DEFAULT_QUEUE) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="copybot-gen")
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._lock = threading.Lock()
        self._futures: dict[int, Future[None]] = {}
        self._running: set[int] = set()
        self._accepting = True

    def reserve(self) -> bool:
        """Take a slot for one request without waiting; False when the pool is full or shutting down."""
        return self._accepting and self._slots.acquire(blocking=False)

    @property
    def accepting(self) -> bool:
        """False once shutdown has begun."""
        return self._accepting

    def release(self) -> None:
        """Give back a reserved slot that will not be submitted."""
        self._slots.release()

    def depth(self) -> int:
        """Requests queued or running."""
        with self._lock:
            return len(self._futures)

    def submit(self, request_id: int, job: Callable[[], None]) -> None:
        """Run `job` for a request on a worker; the slot is released when it ends."""

        def run() -> None:
            with self._lock:
                self._running.add(request_id)
            try:
                job()
            except Exception:  # the job reports its own failures; this only keeps the worker alive
                log.exception("generation job for request %s crashed", request_id)
            finally:
                with self._lock:
                    self._running.discard(request_id)
                    self._futures.pop(request_id, None)
                self._slots.release()

        with self._lock:
            self._futures[request_id] = self._executor.submit(run)

    def shutdown(self, timeout: float) -> list[int]:
        """Stop taking work, drop queued jobs, wait up to `timeout` for running ones.

        Returns the ids of requests that did not finish: queued ones that never started and running ones
        still going when the time ran out.
        """
        self._accepting = False
        with self._lock:
            pending = dict(self._futures)
        dropped = [rid for rid, fut in pending.items() if fut.cancel()]
        for _ in dropped:
            self._slots.release()
        running = [fut for rid, fut in pending.items() if rid not in dropped]
        wait(running, timeout=timeout)
        with self._lock:
            unfinished = dropped + sorted(self._running)
            for rid in dropped:
                self._futures.pop(rid, None)
        self._executor.shutdown(wait=False, cancel_futures=True)
        return unfinished
