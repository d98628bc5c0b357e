"""`python -m benchmarks --only X` rewrites X's section of BENCHMARKS.md and keeps every other section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
E2E = "## e2e\n\nan old end-to-end table\n\n| ack | 14 ms |\n"
LEARNING = "## learning\n\nan old learning table\n\n| emoji | +21.7 pts |\n"


@pytest.mark.slow
def test_only_rewrites_its_own_section(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text(f"# Benchmarks\n\n- Date: long ago\n\n{E2E}\n{LEARNING}", "utf-8")
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "corpus_import", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text("utf-8")
    assert E2E in text and LEARNING in text
    # in the suite's order: e2e, corpus_import, learning; with the new figures and the day it ran
    assert text.index("## e2e") < text.index("## corpus_import") < text.index("## learning")
    section = text.split("## corpus_import", 1)[1].split("## learning", 1)[0]
    assert "| import 10,000 rows" in section and "`python -m benchmarks.corpus_import` (" in section
    assert "long ago" not in text  # the header's machine facts are today's


def test_old_sections_are_read_by_benchmark_name(tmp_path: Path) -> None:
    from benchmarks.__main__ import old_sections

    out = tmp_path / "BENCHMARKS.md"
    out.write_text(f"# Benchmarks\n\n- Date: long ago\n\n{E2E}\n{LEARNING}", "utf-8")
    sections = old_sections(out)
    assert list(sections) == ["e2e", "learning"]
    assert sections["e2e"] == E2E and sections["learning"] == LEARNING
