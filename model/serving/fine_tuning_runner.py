"""The child process of one fine-tuning job: `python -m model.serving.fine_tuning_runner JOB_DIR` (started by
model/serving/fine_tuning.py).

It reads the job's spec and dataset, trains, scores and saves the challenger through the registry (atomically),
appends progress events, and writes `result.json` last. If it dies on the way, there is no result and the parent
reports the exit; the registry never holds a half-written adapter.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from model.serving.fine_tuning import append_event, write_json
from model.training.challenger import ChallengerSpec, train_challenger
from model.training.dataset import dataset_from_json
from model.training.evaluate import GateConfig
from model.training.registry import AdapterRegistry
from model.training.train import TrainConfig


def run(job_dir: Path) -> None:
    """Train the job in `job_dir` and write its result."""
    spec = json.loads((job_dir / "spec.json").read_text("utf-8"))
    payload = json.loads((job_dir / "dataset.json").read_text("utf-8"))
    registry = AdapterRegistry(spec["registry"])
    registry.clean_staging()  # an earlier killed job may have left a staging folder
    parent = registry.load(spec["parent"]).path if spec["parent"] else None
    start = spec.get("start") or ""  # absent in specs written by an older host
    candidate = ChallengerSpec(
        base_path=spec["base_path"],
        base_model=spec["base_model"],
        parent=parent,
        parent_version=spec["parent"],
        start=registry.load(start).path if start else None,
        start_version=start,
        config=TrainConfig(**spec["hyperparameters"]),
        gate_config=GateConfig(**spec["gate"]),
        eval_briefs=spec["eval_briefs"],
    )
    data = dataset_from_json(payload["dataset"])
    result = train_challenger(candidate, data, payload["corpus_texts"], registry,
                             on_event=lambda message: append_event(job_dir, message))  # fmt: skip
    write_json(job_dir / "result.json", result.as_dict())


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
