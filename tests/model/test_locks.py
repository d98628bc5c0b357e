"""Process locks: one refuses at once naming the holder, the other waits its turn; both are real flocks held by
real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from model.locks import LockHeld, ProcessLock

HOLD = """
import sys, time
from pathlib import Path
from model.locks import ProcessLock
with ProcessLock(Path(sys.argv[1]), "a test"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_acquire_refuses_while_another_process_holds_it_and_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "work.lock"
    holder = _holder(path, 30)
    try:
        with pytest.raises(LockHeld, match=rf"a retrain is already running \(pid {holder.pid}, started "):
            ProcessLock(path, "a retrain").acquire()
    finally:
        holder.kill()  # the OS releases a killed holder's lock
        holder.wait()
    with ProcessLock(path, "a retrain"):
        pass


def test_waiting_blocks_until_the_holder_is_done(tmp_path: Path) -> None:
    path = tmp_path / "build.lock"
    holder = _holder(path, 1.5)
    started = time.monotonic()
    with ProcessLock(path, "a build").waiting() as lock:
        waited = time.monotonic() - started
        assert holder.poll() is not None or waited > 0.5  # it got the lock only once the holder let go
        assert lock.path == path
    holder.wait()
    assert waited > 0.5


def test_a_turn_lock_goes_to_the_waiting_thread_before_its_holder_takes_it_again() -> None:
    import threading

    from model.locks import TurnLock

    lock, order = TurnLock(), []
    lock.__enter__()
    waiter = threading.Thread(target=lambda: [lock.__enter__(), order.append("waiter"), lock.__exit__()])
    waiter.start()
    deadline = time.monotonic() + 10
    while lock._next < 2 and time.monotonic() < deadline:  # the waiter has taken its ticket
        time.sleep(0.001)
    lock.__exit__()
    with lock:  # a plain Lock would most often be taken straight back here
        order.append("holder")
    waiter.join(10)
    assert order == ["waiter", "holder"]


def test_a_turn_lock_skips_the_turn_of_a_waiter_that_was_interrupted() -> None:
    from model.locks import TurnLock

    lock = TurnLock()
    lock.__enter__()
    waiting = lock._changed.wait

    def interrupted(*args: object, **kwargs: object) -> bool:
        raise KeyboardInterrupt

    lock._changed.wait = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        lock.__enter__()  # takes a ticket, is interrupted while it waits its turn
    lock._changed.wait = waiting  # type: ignore[method-assign]
    lock.__exit__()
    with lock:  # the interrupted turn is passed over: the next caller is not kept waiting for ever
        assert lock._serving == 2
