"""A local WebSocket server that speaks Slack's Socket Mode envelopes: it sends hello and envelopes, and
collects the acks the client sends back."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

from websockets.sync.server import ServerConnection, serve


class FakeSocketMode:
    """Serve ws://127.0.0.1:PORT/; `send` queues an envelope for the connected client; `acks` collects replies."""

    def __init__(self) -> None:
        self.outbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.acks: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self._server = serve(self._session, "127.0.0.1", 0)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/"

    def _session(self, ws: ServerConnection) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1, "debug_info": {"host": "fake"}}))
        self.connected.set()
        while True:
            try:
                envelope = self.outbox.get(timeout=0.05)
                ws.send(json.dumps(envelope))
            except queue.Empty:
                pass
            try:
                message = ws.recv(timeout=0.05)
            except TimeoutError:
                continue
            except Exception:
                return
            self.acks.append(json.loads(message))

    def send(self, envelope: dict[str, Any]) -> None:
        self.outbox.put(envelope)

    def wait_ack(self, envelope_id: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ack in list(self.acks):
                if ack.get("envelope_id") == envelope_id:
                    return ack
            time.sleep(0.02)
        raise AssertionError(f"no ack for {envelope_id}; got {self.acks}")

    def stop(self) -> None:
        self._server.shutdown()
