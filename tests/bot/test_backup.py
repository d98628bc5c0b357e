"""`copybot backup`: an online copy through SQLite's backup API, never overwriting, and a restore that works."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from storage import Store
from tests.bot.feedback import seed_feedback
from tests.cli import run


def test_backup_then_restore_into_a_new_home(home: Path, tmp_path: Path) -> None:
    live = Store.open(home / "copybot.db")
    seed_feedback(live)  # the live store stays open, as a running bot's would
    dest = tmp_path / "backups" / "copybot-2026-11-30.db"
    out = run("backup", str(dest), env_home=home)
    assert out.returncode == 0, out.stderr
    assert "8 requests" in out.stdout and "to restore, stop the bot" in out.stdout
    copy = Store.open(dest, migrate=False)
    assert copy.counts() == live.counts() and copy.rated_requests() == live.rated_requests()

    again = run("backup", str(dest), env_home=home)
    assert again.returncode == 1 and "already exists" in again.stderr

    restored = tmp_path / "restored-home"
    restored.mkdir()
    shutil.copy(dest, restored / "copybot.db")
    stats = run("stats", "--json", env_home=restored)
    assert stats.returncode == 0 and json.loads(stats.stdout)["requests"] == 8
