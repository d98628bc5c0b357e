"""The starter corpus shipped with copybot: hand-written Korean copies with their brief fields."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any

CORPUS_FILE = "corpus.jsonl"
FIELDS = ("text", "product", "category", "event", "event_name", "age_group", "channel", "register")


def corpus_text() -> str:
    """The raw JSONL text of the shipped corpus."""
    return resources.files("model.starter").joinpath(CORPUS_FILE).read_text("utf-8")


def load_corpus() -> list[dict[str, Any]]:
    """Every row of the starter corpus, in file order."""
    return [json.loads(line) for line in corpus_text().splitlines() if line.strip()]


def corpus_hash() -> str:
    """A short hash of the corpus file, recorded with a built starter model."""
    return hashlib.sha256(corpus_text().encode("utf-8")).hexdigest()[:16]


def is_held_out(text: str, share: float) -> bool:
    """Deterministic hold-out by a hash of the text, so the same copy always lands on the same side."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share
