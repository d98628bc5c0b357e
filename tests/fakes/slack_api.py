"""A local fake of the Slack Web API: records every call and can answer with scripted errors."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

BOT_USER = "UBOT"
TEAM = "T0001"


@dataclass
class Call:
    """One request the fake received."""

    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeSlack:
    """Serve on 127.0.0.1, port 0. `url` is the Web API base URL to give slack_sdk."""

    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)  # file id -> the bytes uploaded to its URL
    socket_url: str = "ws://127.0.0.1:9/"
    unreachable: bool = False  # an outage: every connection is dropped unanswered (the client sees a network error)
    dropped: int = 0  # requests dropped while unreachable
    _failures: dict[str, list[str | None]] = field(default_factory=dict)
    _ts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if fake.unreachable:  # no status line at all: to the client, Slack is not there
                    with fake._lock:
                        fake.dropped += 1
                    self.close_connection = True
                    self.connection.close()
                    return
                if self.path.startswith("/upload/"):  # step 2 of files_upload_v2: the bytes, to the issued URL
                    fake._upload(self, data)
                else:
                    fake._handle(self, data.decode("utf-8"))

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/respond/{name}"

    def fail_next(self, method: str, kind: str, times: int = 1, *, after: int = 0) -> None:
        """Let `after` calls of `method` through, then fail the next `times`: 'ratelimited' (429), '500', or a
        Slack error name. For an outage of every method, set `unreachable`."""
        with self._lock:
            self._failures.setdefault(method, []).extend([None] * after + [kind] * times)

    def of(self, method: str) -> list[dict[str, Any]]:
        """Bodies of the successful-or-not calls to one Web API method, in order."""
        with self._lock:
            return [c.body for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until `method` was called at least `count` times; return the bodies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            bodies = self.of(method)
            if len(bodies) >= count:
                return bodies
            time.sleep(0.02)
        raise AssertionError(f"{method} called {len(self.of(method))} times, expected {count}: {self.methods()}")

    def methods(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    def _handle(self, handler: BaseHTTPRequestHandler, raw: str) -> None:
        path = handler.path
        ctype = handler.headers.get("Content-Type", "")
        body: dict[str, Any] = json.loads(raw) if "json" in ctype and raw else dict(parse_qsl(raw))
        method = path.split("/api/", 1)[1] if "/api/" in path else "response_url"
        with self._lock:
            self.calls.append(Call(method, path, body, dict(handler.headers)))
            failure = self._failures.get(method, []).pop(0) if self._failures.get(method) else None
        if failure == "ratelimited":
            return self._send(handler, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
        if failure == "500":
            return self._send(handler, 500, {"ok": False, "error": "internal_error"})
        if failure:
            return self._send(handler, 200, {"ok": False, "error": failure})
        return self._send(handler, 200, self._answer(method, body))

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "user_id": BOT_USER,
                "bot_id": "BBOT",
                "team_id": TEAM,
                "user": "copybot",
                "team": "Test",
            }
        if method == "chat.postMessage":
            with self._lock:
                self._ts += 1
                ts = f"1700000000.{self._ts:06d}"
            return {"ok": True, "channel": body.get("channel"), "ts": ts, "message": {"text": body.get("text")}}
        if method == "files.getUploadURLExternal":
            with self._lock:
                file_id = f"F{sum(1 for c in self.calls if c.method == method):04d}"  # this call is counted
            port = self.server.server_address[1]
            return {"ok": True, "upload_url": f"http://127.0.0.1:{port}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = json.loads(body.get("files") or "[]")
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_url}
        return {"ok": True}

    def _upload(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        file_id = handler.path.rsplit("/", 1)[1]
        with self._lock:
            self.calls.append(Call("upload", handler.path, {"file_id": file_id, "bytes": len(data)},
                                   dict(handler.headers)))  # fmt: skip
            self.uploads[file_id] = data
        reply = f"OK - {len(data)}".encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)
