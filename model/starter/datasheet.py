"""Count tables of the starter corpus for its datasheet: `python -m model.starter.datasheet` prints them."""

from __future__ import annotations

from collections import Counter
from typing import Any

from model.starter.corpus import load_corpus

TABLES = (("category", "Category"), ("event", "Event"), ("age_group", "Age group"), ("register", "Register"),
          ("channel", "Channel"))  # fmt: skip


def count_tables(rows: list[dict[str, Any]]) -> str:
    """Markdown tables of rows per category, event, age group, register and channel."""
    parts = [f"Total: {len(rows)} copies."]
    for field, title in TABLES:
        counts = Counter(r[field] for r in rows)
        lines = [f"| {title} | Copies |", "|---|---:|"]
        lines += [f"| {key} | {n} |" for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


if __name__ == "__main__":
    print(count_tables(load_corpus()))
