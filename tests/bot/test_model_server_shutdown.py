"""`copybot model-server` told to stop (SIGTERM) while it writes (issue 40): the model's work stops at once, the
requests in flight answer 503 (retry) instead of holding the shutdown, and the process exits within its grace
period."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.bot.test_model_server_cli import _start

PROMPT = "<제품>린넨 셔츠<행사>여름 세일<20대><sns><polite><카피>"
# the longest the server allows: 16 rows of 256 tokens each, sampled wide so that rows rarely end early; four of
# these take about a minute on 2 CPU cores
LONG = {"model": "starter", "prompt": PROMPT, "n": 16, "max_tokens": 256, "temperature": 2.0, "top_p": 1.0}
GRACE_S = 5


def _post(url: str, body: dict[str, Any]) -> int | str:
    """The answer's status, or "closed" when the server closed the connection without one."""
    try:
        return httpx.post(f"{url}/v1/completions", json=body, timeout=120).status_code
    except httpx.TransportError:
        return "closed"


def test_sigterm_mid_generation_answers_the_requests_in_flight_and_exits_within_the_grace(
    home_with_starter: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COPYBOT_MODEL_API_KEY"}
    command = [sys.executable, "-m", "bot", "model-server", "--port", "0", "--shutdown-grace", str(GRACE_S)]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        url, _ = _start(proc)
        with ThreadPoolExecutor(4) as pool:
            calls = [pool.submit(_post, url, {**LONG, "seed": seed}) for seed in range(4)]
            time.sleep(3)
            assert not any(call.done() for call in calls), "the requests ended before the signal; make them longer"
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            status = proc.wait(timeout=GRACE_S + 60)
            took = time.monotonic() - sent
            answers = [call.result(timeout=5) for call in calls]  # none is left hanging
    finally:
        if proc.poll() is None:
            proc.kill()
    log = proc.stderr.read() if proc.stderr else ""
    assert status in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    assert took < GRACE_S + 3, f"the server took {took:.1f} s to stop"
    assert answers == [503] * 4, answers  # the model stopped writing them: retry elsewhere, or here once it is back
    # they ended on their own, before the grace period was up, and the app's shutdown ran
    assert "timeout graceful shutdown exceeded" not in log and "Finished server process" in log
