"""`copybot model-server` as a real process: it starts on the starter model, answers, and stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_model_server_process_serves_the_starter_with_a_key(home_with_starter: Path) -> None:
    env = {**os.environ, "COPYBOT_MODEL_API_KEY": "k3y"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "model-server", "--port", "0"], env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url, deadline = None, time.monotonic() + 120
        while url is None:
            assert time.monotonic() < deadline and proc.poll() is None, "the server did not start"
            found = re.search(r"Uvicorn running on (http://\S+)", proc.stderr.readline() if proc.stderr else "")
            url = found.group(1) if found else None
        assert httpx.get(f"{url}/health").json()["serving"] == "starter"
        assert httpx.get(f"{url}/v1/models").status_code == 401
        models = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer k3y"}).json()
        assert [m["id"] for m in models["data"]] == ["starter"]
        reply = httpx.post(f"{url}/v1/completions", headers={"Authorization": "Bearer k3y"}, timeout=60,
                           json={"model": "starter", "prompt": "<제품>셔츠<30대><sns><polite><카피>", "n": 2,
                                 "max_tokens": 20})  # fmt: skip
        assert reply.status_code == 200 and len(reply.json()["choices"]) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal, so the exit status reads "killed by SIGTERM"
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Finished server process" in (proc.stderr.read() if proc.stderr else "")
