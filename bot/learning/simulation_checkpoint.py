"""A simulation's checkpoint, which `copybot simulate --resume HOME` continues from.

A simulation on a real base model takes hours on 2 cores and can outlive the process that started it. After each
measured round the simulation keeps, in its scratch home, the curve so far, its random streams (its own and a
rater's that has one) and a copy of the store. Resuming puts all three back and drops what an interrupted round
left behind (its requests and reactions, a trial it started, an adapter folder it trained), so the rounds that
follow are the ones an uninterrupted run would have had.

Saving is ordered so that an interruption at any moment leaves a usable checkpoint: the store copy of round k is
written under its own name first, then `simulation.json` is replaced in one rename to point at it, and only then
is round k-1's copy deleted.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from storage import Store

STATE_FILE = "simulation.json"
FORMAT = 1


class CheckpointError(ValueError):
    """No usable checkpoint in the folder; the message says what to do instead."""


@dataclass
class Checkpoint:
    """What a simulation needs to go on: how it was started, the rounds measured, and where its streams were."""

    rater: str  # the module:function spec it was started with
    config: dict[str, Any]  # SimulationConfig's fields
    base_model: str
    rounds: list[dict[str, Any]] = field(default_factory=list)  # RoundResult's fields, round 0 first
    rng: Any = None  # random.Random.getstate() of the simulation's stream, as JSON
    rater_state: Any = None  # the rater's getstate(), for a rater with a stream of its own
    store_copy: str = ""  # the file name, in the home, of the store as it was after the last round

    @property
    def next_round(self) -> int:
        return len(self.rounds)


def stream_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def restore_stream(rng: random.Random, state: list[Any]) -> None:
    rng.setstate((state[0], tuple(state[1]), state[2]))


def save(home: Path, checkpoint: Checkpoint, store: Store) -> None:
    """Record the checkpoint after round `checkpoint.next_round - 1`, with a copy of `store` as it is now."""
    name = f"checkpoint-{checkpoint.next_round - 1}.db"
    (home / name).unlink(missing_ok=True)  # a copy a save interrupted before its rename left unfinished
    store.backup_to(home / name)
    previous = checkpoint.store_copy
    checkpoint.store_copy = name
    partial = home / f"{STATE_FILE}.part"
    partial.write_text(json.dumps({"format": FORMAT, **asdict(checkpoint)}, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, home / STATE_FILE)
    if previous and previous != name:
        (home / previous).unlink(missing_ok=True)


def load(home: Path) -> Checkpoint:
    """The checkpoint in `home`; errors say why it cannot be resumed."""
    path = home / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{home} holds no {STATE_FILE}: it is not a simulation, or it stopped before its "
                              f"first measurement; start a new one with --home <new folder>")  # fmt: skip
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} cannot be read ({exc}); start a new simulation") from exc
    if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
        raise CheckpointError(f"{path} was written by another copybot version; start a new simulation")
    try:
        checkpoint = Checkpoint(**data)
    except TypeError as exc:
        raise CheckpointError(f"{path} is not a checkpoint this copybot can read ({exc}); start a new one") from exc
    if not (home / checkpoint.store_copy).is_file():
        raise CheckpointError(f"{home / checkpoint.store_copy}, the store after round {checkpoint.next_round - 1}, "
                              f"is missing; start a new simulation")  # fmt: skip
    return checkpoint


def rewind(home: Path, checkpoint: Checkpoint, db_path: Path, adapters: Path) -> None:
    """Put the store back as it was at the checkpoint and remove adapter folders it does not know (trained by
    the interrupted round: the next version number is the highest folder's + 1, so a stray folder would rename
    every version after it)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(home / checkpoint.store_copy, db_path)
    store = Store.open(db_path)
    try:
        known = {Path(v["adapter_path"]).resolve() for v in store.model_versions() if v["adapter_path"]}
    finally:
        store.close()
    if adapters.is_dir():
        for folder in adapters.iterdir():
            if folder.is_dir() and folder.resolve() not in known:
                shutil.rmtree(folder)
