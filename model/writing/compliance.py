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
    framed_only: bool = False  # applies only to messages that carry the legal frame (model/writing/frame.py)


def load_rules(path: str | Path | None = None) -> list[ComplianceRule]:
    """Rules from a JSON file shaped like `model/data/compliance.json`, or the shipped defaults."""
    try:
        raw = json.loads(Path(path).read_text("utf-8")) if path else load_json("compliance.json")
        return [ComplianceRule(str(r["code"]), str(r["reason"]), tuple(map(str, r["terms"])),
                               bool(r.get("framed_only", False))) for r in raw["rules"]]  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelSideError(
            f"compliance term list {path} is unreadable ({exc!r}); it needs "
            '{"rules": [{"code": ..., "reason": ..., "terms": [...]}]}'
        ) from exc


def _squeezed(text: str) -> str:
    return "".join(text.lower().split())


def screen(text: str, rules: list[ComplianceRule], *, framed: bool = False) -> list[str]:
    """Flags for every rule term found in `text`, ignoring case and spaces ("암 예방" finds "암예방" too), as
    "code: 'term' — reason" strings; the reason names the law. Rules for framed messages apply when `framed`."""
    squeezed = _squeezed(text)
    return [f"{rule.code}: '{term}' — {rule.reason}" for rule in rules if framed or not rule.framed_only
            for term in rule.terms if _squeezed(term) in squeezed]  # fmt: skip


def strip_framed_labels(text: str, rules: list[ComplianceRule]) -> str:
    """A framed body without a label the frame adds itself ("(광고)") at its start: a model trained on real SMS
    writes one; elsewhere in the body it stays, and is flagged."""
    labels = [term for rule in rules if rule.framed_only for term in rule.terms]
    stripped = text.lstrip()
    for label in labels:
        if stripped.startswith(label):
            return stripped[len(label) :].lstrip()
    return text
