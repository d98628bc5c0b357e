"""`copybot simulate --resume`: a simulation killed mid-round goes on from its last measured round, as if
nothing had happened; and what cannot be resumed is refused with a message that says what to do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.learning.simulation_checkpoint import STATE_FILE, Checkpoint, CheckpointError, load, rewind, save
from storage import Store
from tests.cli import run

SIZES = ("--requests-per-round", "4", "--eval-briefs", "2", "--eval-seeds", "1", "--seed", "3")
# no_taste has a random stream of its own, so the test also shows that the rater's stream is put back
RATER = ("--rater", "bot.learning.raters:no_taste")


def _untimed(trial: dict | None) -> dict | None:
    return {k: v for k, v in trial.items() if not k.endswith("_at")} if trial else trial


def _requests(db: Path) -> int:
    store = Store.open(db)
    try:
        return store.counts()["requests"]
    finally:
        store.close()


def _kill_during_round_one(home_with_starter: Path, sim: Path) -> None:
    """Start a 1-round simulation and SIGKILL it once round 1 has stored some of its requests."""
    # a real process, unlike tests/cli.py's run: what is tested is a process killed with SIGKILL mid-round
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COPYBOT_", "SLACK_"))}
    env["COPYBOT_HOME"] = str(home_with_starter)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "simulate", "--rounds", "1", *SIZES, *RATER, "--home",
                             str(sim)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline:
            state = sim / STATE_FILE
            if state.is_file() and _requests(sim / "copybot.db") > 0:  # round 0 is measured, round 1 under way
                break
            assert proc.poll() is None, "the simulation ended before it could be interrupted"
            time.sleep(0.05)
        else:
            pytest.fail("round 1 never started")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_a_simulation_killed_mid_round_resumes_as_if_never_stopped(home_with_starter: Path, tmp_path: Path) -> None:
    straight = run(
        "simulate",
        "--rounds",
        "1",
        *SIZES,
        *RATER,
        "--json",
        "--home",
        str(tmp_path / "straight"),
        env_home=home_with_starter,
    )
    assert straight.returncode == 0, straight.stderr
    expected = json.loads(straight.stdout)["rounds"]

    sim = tmp_path / "broken"
    _kill_during_round_one(home_with_starter, sim)
    assert _requests(sim / "copybot.db") > 0  # round 1 had stored requests when it was killed

    resumed = run("simulate", "--resume", str(sim), "--json", env_home=home_with_starter)
    assert resumed.returncode == 0, resumed.stderr
    rounds = json.loads(resumed.stdout)["rounds"]
    assert [r["round"] for r in rounds] == [0, 1]
    for got, want in zip(rounds, expected, strict=True):
        for key in ("liked_share", "distinct_2", "model_version", "by_version", "decided"):
            assert got[key] == want[key], (got["round"], key)
        assert _untimed(got["trial"]) == _untimed(want["trial"])
        assert (got["retrain"] or {}).get("version") == (want["retrain"] or {}).get("version")
    assert _requests(sim / "copybot.db") == 4  # the killed round's requests were dropped, not kept beside the new
    assert sorted(p.name for p in sim.iterdir() if p.name.startswith("checkpoint-")) == ["checkpoint-1.db"]

    # its rater and sizes may not change, and a finished simulation's folder is not started again
    changed = run("simulate", "--resume", str(sim), "--seed", "4", env_home=home_with_starter)
    assert changed.returncode == 2 and "started with --seed 3; leave out --seed" in changed.stderr
    other = run("simulate", "--resume", str(sim), "--rater", "bot.learning.raters:premium", env_home=home_with_starter)
    assert other.returncode == 2 and "rater is bot.learning.raters:no_taste" in other.stderr
    again = run("simulate", "--rounds", "1", *RATER, "--home", str(sim), env_home=home_with_starter)
    assert again.returncode == 2 and f"--resume {sim}" in again.stderr


def test_rewind_puts_the_store_back_and_drops_adapters_it_does_not_know(tmp_path: Path) -> None:
    adapters = tmp_path / "adapters"
    for name in ("v0001", "v0002"):
        (adapters / name).mkdir(parents=True)
    store = Store.open(tmp_path / "copybot.db")
    store.add_model_version(version="v0001", base_model="starter", adapter_path=str(adapters / "v0001"))
    checkpoint = Checkpoint(rater="bot.learning.raters:premium", config={}, base_model="starter", rounds=[{"round": 0}])
    save(tmp_path, checkpoint, store)
    store.add_model_version(version="v0002", base_model="starter", adapter_path=str(adapters / "v0002"))
    store.close()

    rewind(tmp_path, load(tmp_path), tmp_path / "copybot.db", adapters)
    after = Store.open(tmp_path / "copybot.db")
    assert [v["version"] for v in after.model_versions()] == ["v0001"]
    assert sorted(p.name for p in adapters.iterdir()) == ["v0001"]

    # the next save replaces the store copy; the state file always names one that exists
    checkpoint.rounds.append({"round": 1})
    save(tmp_path, checkpoint, after)
    assert load(tmp_path).store_copy == "checkpoint-1.db" and not (tmp_path / "checkpoint-0.db").exists()


def test_what_cannot_be_resumed_says_why(tmp_path: Path, home: Path) -> None:
    with pytest.raises(CheckpointError, match="start a new one with --home"):
        load(tmp_path)
    (tmp_path / STATE_FILE).write_text(json.dumps({"format": 0}))
    with pytest.raises(CheckpointError, match="another copybot version"):
        load(tmp_path)
    config = {"rounds": 3, "requests_per_round": 4, "eval_briefs": 2, "eval_seeds": 1, "seed": 3}
    state = {"format": 1, "rater": "bot.learning.raters:premium", "config": config, "base_model": "starter",
             "rounds": [{}], "store_copy": "checkpoint-0.db"}  # fmt: skip
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="store after round 0, is missing"):
        load(tmp_path)

    (tmp_path / "checkpoint-0.db").write_bytes(b"")
    other_base = run("simulate", "--resume", str(tmp_path), env_home=home, extra_env={"COPYBOT_BASE_MODEL": "x/y"})
    assert other_base.returncode == 2 and "resume it with COPYBOT_BASE_MODEL=starter" in other_base.stderr
    both = run("simulate", "--resume", str(tmp_path), "--home", str(tmp_path), env_home=home)
    assert both.returncode == 2 and "leave out --home" in both.stderr

    empty = run("simulate", "--resume", str(tmp_path / "nothing"), env_home=home)
    assert empty.returncode == 2 and "holds no simulation.json" in empty.stderr
    no_rater = run("simulate", "--rounds", "1", env_home=home)
    assert no_rater.returncode == 2 and "--rater is required" in no_rater.stderr
