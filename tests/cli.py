"""Run the `copybot` command line in this process, as `python -m bot` would run it in a fresh one.

A subprocess per call re-imports torch, transformers and kiwi (seconds each time); click's CliRunner calls the
same click group here instead. What a fresh process gave, the runner is made to give too:

- the environment: every COPYBOT_* and SLACK_* variable of this process is unset for the call, and only
  COPYBOT_HOME (env_home) and extra_env are set; os.environ is put back afterwards;
- stdout and stderr, separately, with log lines on stderr as `configure_logging` formats them;
- the exit status: click's own (0, 1, 2). An exception that escapes the command, which a process would print as
  a traceback and exit 1 with, is raised here instead, so the test fails on it and pytest shows the traceback;
- nothing left behind for the next call or the test: the root logger's handlers, level and filters, the warning
  filters, the SIGINT and SIGTERM handlers, the random number generators' states and the working directory are
  all as they were before the call.

Keep a real subprocess only where the process itself is the point (signals, kills, servers, a lock held by
another process, `python -m bot` itself), and say so where it is started.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from bot.cli.main import cli

SCRUBBED = ("COPYBOT_", "SLACK_")  # never inherited from the test process: only what a call names
PROG_NAME = "python -m bot"  # what click names the program in usage lines under `python -m bot`
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run(
    *args: str, env_home: Path | None = None, extra_env: Mapping[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """`copybot ARGS` with COPYBOT_HOME=env_home (unset when None) and extra_env as its only COPYBOT_/SLACK_
    variables, returned as subprocess.run returns a process's outcome. With check, a non-zero exit status raises
    CalledProcessError, as subprocess.run(check=True) does, with stderr in a note."""
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith(SCRUBBED)}
    if env_home is not None:
        env["COPYBOT_HOME"] = str(env_home)
    env.update(extra_env or {})
    with _as_if_a_new_process():
        result = CliRunner().invoke(cli, list(args), env=env, prog_name=PROG_NAME, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        result.exception.add_note(f"raised by `copybot {' '.join(args)}`; its stderr:\n{result.stderr}")
        raise result.exception  # a process would have printed this traceback and exited 1
    done = subprocess.CompletedProcess(["copybot", *args], result.exit_code, result.stdout, result.stderr)
    if check and done.returncode != 0:
        failed = subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
        failed.add_note(f"its stderr:\n{done.stderr}")
        raise failed
    return done


@contextmanager
def _as_if_a_new_process() -> Iterator[None]:
    with ExitStack() as stack:
        for keep in (_root_logger, _environment, _working_directory, _signal_handlers, _random_states):
            stack.enter_context(keep())
        stack.enter_context(warnings.catch_warnings())
        yield


@contextmanager
def _root_logger() -> Iterator[None]:
    """The root logger without handlers, so `configure_logging`'s basicConfig installs its stderr handler as in a
    fresh process (pytest's own handlers would make it do nothing), and every filter it adds goes with it."""
    root = logging.getLogger()
    handlers, filters, level = root.handlers[:], root.filters[:], root.level
    root.handlers.clear()
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.filters[:] = handlers, filters
        root.setLevel(level)


@contextmanager
def _environment() -> Iterator[None]:
    """CliRunner restores the variables it set; this restores any the command set itself, too."""
    before = dict(os.environ)
    try:
        yield
    finally:
        if dict(os.environ) != before:
            os.environ.clear()
            os.environ.update(before)


@contextmanager
def _working_directory() -> Iterator[None]:
    before = os.getcwd()
    try:
        yield
    finally:
        os.chdir(before)


@contextmanager
def _signal_handlers() -> Iterator[None]:
    before = {sig: signal.getsignal(sig) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in before.items():
            if signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)


@contextmanager
def _random_states() -> Iterator[None]:
    """Python's, NumPy's and torch's global generators, which training seeds, as they were (where imported)."""
    saved: list[tuple[Callable[[Any], object], Any]] = [(random.setstate, random.getstate())]
    if (numpy := sys.modules.get("numpy")) is not None:
        saved.append((numpy.random.set_state, numpy.random.get_state()))
    if (torch := sys.modules.get("torch")) is not None:
        saved.append((torch.random.set_rng_state, torch.random.get_rng_state()))
        if torch.cuda.is_initialized():
            saved.append((torch.cuda.set_rng_state_all, torch.cuda.get_rng_state_all()))
    try:
        yield
    finally:
        for restore, state in saved:
            restore(state)
