"""Run an ASGI app with uvicorn in a thread on a free port, for tests that talk real HTTP to it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from model.writing.engine import LocalEngine


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Yield the base URL while the app serves on 127.0.0.1; shut it down (lifespan included) afterwards."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


class HeldEngine:
    """The real engine, except that writing first waits until the test lets it go (to fill the queue)."""

    def __init__(self, engine: LocalEngine) -> None:
        self.engine, self.release, self.entered = engine, threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def complete_batch(self, jobs: Any, **kwargs: Any) -> Any:
        self.entered.set()
        self.release.wait(30)
        return self.engine.complete_batch(jobs, **kwargs)

    def decoding(self, *args: Any) -> Any:  # a continuous batch is held before it starts
        self.entered.set()
        self.release.wait(30)
        return self.engine.decoding(*args)
