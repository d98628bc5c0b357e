"""`copybot model-server` as a real process: it starts on the starter model, answers, and stops on SIGTERM; an
address other machines can reach needs a key or the operator's --trusted-network, and the log says what is open."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.cli.model_server import exposure_problem


def _start(proc: subprocess.Popen) -> tuple[str, list[str]]:
    """The server's URL once uvicorn runs, and the log lines before it."""
    lines, deadline = [], time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline and proc.poll() is None, f"the server did not start: {lines[-5:]}"
        line = proc.stderr.readline() if proc.stderr else ""
        lines.append(line)
        found = re.search(r"Uvicorn running on (http://\S+)", line)
        if found:
            return found.group(1), lines


def test_model_server_process_serves_the_starter_with_a_key(home_with_starter: Path) -> None:
    env = {**os.environ, "COPYBOT_MODEL_API_KEY": "k3y"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "model-server", "--port", "0"], env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url, lines = _start(proc)
        assert any("open to anyone who reaches it: /health" in line for line in lines)
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


@pytest.mark.parametrize(("host", "refused"), [("127.0.0.1", False), ("::1", False), ("[::1]", False),
                                               ("localhost", False), ("0.0.0.0", True), ("192.168.0.5", True),
                                               ("gpu-host", True)])  # fmt: skip
def test_only_loopback_serves_without_a_key_or_the_operators_word(host: str, refused: bool) -> None:
    assert (exposure_problem(host, "", trusted_network=False) is not None) == refused
    assert exposure_problem(host, "k3y", trusted_network=False) is None
    assert exposure_problem(host, "", trusted_network=True) is None


def test_an_open_address_without_a_key_is_refused_before_anything_loads(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COPYBOT_", "SLACK_"))}
    env["COPYBOT_HOME"] = str(home)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bot", "model-server", "--host", "0.0.0.0", "--port", "0"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "refusing to serve on 0.0.0.0 without COPYBOT_MODEL_API_KEY" in done.stderr
    assert "--trusted-network" in done.stderr and not (home / "models").exists()  # no model was built or loaded
    assert time.monotonic() - started < 30


def test_a_trusted_network_serves_without_a_key_and_the_log_lists_every_open_route(home_with_starter: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COPYBOT_MODEL_API_KEY"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "model-server", "--host", "0.0.0.0", "--port", "0",
                             "--trusted-network"], env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url, lines = _start(proc)
        [opened] = [line for line in lines if "open to anyone who reaches it" in line]
        assert "WARNING" in opened and "(no COPYBOT_MODEL_API_KEY)" in opened
        assert "/v1/completions" in opened and "/v1/fine_tuning/jobs" in opened and "/v1/load_lora_adapter" in opened
        port = url.rsplit(":", 1)[1]
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 200  # no key asked
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
