"""Gate scores kept with the model they belong to, so that a retrain scores only its new adapter.

A retrain scores three models on the same held-out set: the active adapter, the base model and the new adapter
(model/training/challenger.py). The first two have not changed since the last retrain, and on a real base on CPU
scoring them was two thirds of the gate's time. So every score the gate takes is kept per item:

- the log-probability of each held-out copy under its prompt (corpus validation loss, feedback loss, pair
  margins), keyed by the prompt and the copy;
- the candidates generated for each panel brief, age group, seed and temperature, keyed by all four.

The file of a model is `ADAPTERS/.gate-scores/<version>.json` (or `base-<name>.json`). It is used only while the
model's folder is as it was when the scores were taken (a fingerprint of its files: the whole content of the files
an adapter has, name, size and modification time of a base model's large weights), and while the scoring context
is the same: the kept vocabulary of a trimmed output layer (it normalises every probability) and the source of
`model/` (the writer, the checks and the metrics). Anything else changed, and the file starts empty.

The gate loses no power: a kept score is the score the model would get again (log-probabilities are
deterministic; a kept generation is a draw with the same seed from the same model), and every new held-out item
is scored afresh. The new adapter's scores are written with it when it is saved, so next week, as the active
adapter, it is not scored again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model.training.registry import SCORES_DIR

CONTENT_LIMIT = 64 * 1024 * 1024  # files up to this size are hashed whole; larger ones (base weights) by stat
MODEL_SOURCE = Path(__file__).resolve().parent.parent  # model/: what writing, checking and scoring run

Logprob = tuple[float, int]
Written = list[dict[str, Any]] | None  # the candidates of one brief, age group and seed; None: nothing usable


def folder_fingerprint(folder: str | Path) -> str:
    """A digest of a model folder's files: any file added, removed, rewritten or touched changes it."""
    digest = hashlib.sha256()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0".encode())
        if stat.st_size <= CONTENT_LIMIT:
            digest.update(path.read_bytes())
        else:
            digest.update(str(stat.st_mtime_ns).encode())
    return digest.hexdigest()[:32]


def scoring_context(model: Any, *, n: int) -> str:
    """What every kept score also depends on: the kept vocabulary, the source of model/ and the candidates asked."""
    digest = hashlib.sha256(f"n={n}\0".encode())
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    kept = getattr(head, "kept", None)
    digest.update(b"untrimmed" if kept is None else kept.cpu().numpy().tobytes())
    for path in sorted(MODEL_SOURCE.rglob("*.py")):
        digest.update(str(path.relative_to(MODEL_SOURCE)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:32]


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:32]


class GateScores:
    """The kept scores of one model in one scoring context; `kept` and `scored` count what was reused and what
    was computed, for the retrain's record."""

    def __init__(self, file: Path | None, folder: str, context: str) -> None:
        self.file, self.folder, self.context = file, folder, context
        self.logprobs: dict[str, list[float]] = {}
        self.generated: dict[str, list[dict[str, Any]] | None] = {}
        self.kept = self.scored = 0
        if file is not None and file.is_file():
            try:
                saved = json.loads(file.read_text("utf-8"))
            except (OSError, ValueError):
                saved = {}
            if saved.get("folder") == folder and saved.get("context") == context:
                self.logprobs = saved.get("logprobs", {})
                self.generated = saved.get("generated", {})

    @classmethod
    def of(cls, root: Path, name: str, folder: str | Path, context: str) -> GateScores:
        """The kept scores of the model in `folder`, registered as `name`, under the adapters folder `root`."""
        return cls(root / SCORES_DIR / f"{name}.json", folder_fingerprint(folder), context)

    def sequence_logprobs(
        self,
        compute: Callable[[list[str], list[str]], list[Logprob]],
        prompts: list[str],
        completions: list[str],
    ) -> list[Logprob]:
        """(log-probability sum, token count) of each completion; only the ones not kept are computed."""
        keys = [_key(p, c) for p, c in zip(prompts, completions, strict=True)]
        missing = [i for i, k in enumerate(keys) if k not in self.logprobs]
        if missing:
            fresh = compute([prompts[i] for i in missing], [completions[i] for i in missing])
            for i, (total, count) in zip(missing, fresh, strict=True):
                self.logprobs[keys[i]] = [total, count]
        self.kept += len(keys) - len(missing)
        self.scored += len(missing)
        return [(float(self.logprobs[k][0]), int(self.logprobs[k][1])) for k in keys]

    def kept_candidates(self, brief: dict[str, Any], seed: int, scale: float) -> tuple[bool, Written]:
        """(whether they are kept, the candidates (text, register_ok, flags) written for `brief` with `seed` at
        temperature factor `scale`; None: nothing usable)."""
        key = _key(brief, seed, scale)
        return key in self.generated, self.generated.get(key)

    def keep_candidates(self, brief: dict[str, Any], seed: int, scale: float, written: Written) -> None:
        """Keep what was just written for `brief` with `seed` at `scale`."""
        self.generated[_key(brief, seed, scale)] = written

    def save(self, file: Path | None = None, folder: str | None = None) -> None:
        """Write the scores atomically (to another file and folder fingerprint: the new adapter once saved)."""
        file = file or self.file
        if file is None:
            return
        record = {
            "folder": folder or self.folder,
            "context": self.context,
            "logprobs": self.logprobs,
            "generated": self.generated,
        }
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(prefix=f".{file.name}-", dir=file.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(record, out, ensure_ascii=False)
            os.replace(staging, file)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise

    def summary(self) -> dict[str, int]:
        """What was reused and what was computed."""
        return {"kept": self.kept, "scored": self.scored}
