"""The compliance screen: flag (never hide) copy that uses terms from a configurable list."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from model.datafiles import load_json
from model.errors import ModelSideError


@dataclass(frozen=True)
class ComplianceRule:
    """One group of terms that share a reason, e.g. absolute claims under 표시광고법."""

    code: str
    reason: str
    terms: tuple[str, ...]


def load_rules(path: str | Path | None = None) -> list[ComplianceRule]:
    """Rules from a JSON file shaped like `model/data/compliance.json`, or the shipped defaults."""
    try:
        raw = json.loads(Path(path).read_text("utf-8")) if path else load_json("compliance.json")
        return [ComplianceRule(str(r["code"]), str(r["reason"]), tuple(map(str, r["terms"]))) for r in raw["rules"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelSideError(
            f"compliance term list {path} is unreadable ({exc!r}); it needs "
            '{"rules": [{"code": ..., "reason": ..., "terms": [...]}]}'
        ) from exc


def screen(text: str, rules: list[ComplianceRule]) -> list[str]:
    """Flags for every rule term found in `text`, as "code: 'term' — reason" strings."""
    lowered = text.lower()
    return [
        f"{rule.code}: '{term}' — {rule.reason}" for rule in rules for term in rule.terms if term.lower() in lowered
    ]
