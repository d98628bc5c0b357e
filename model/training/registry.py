"""Adapter versions on disk: plain PEFT folders plus a `copybot.json`, written atomically, names validated.

Layout: `ADAPTERS/<version>/{adapter_config.json, adapter_model.safetensors, copybot.json}`. A version is
written into a hidden staging folder beside it and renamed into place, so a crash, a kill or a full disk never
leaves a half-written adapter where the engine would load it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.adapter_info import INFO_FILE
from model.errors import AdapterError

REQUIRED_FILES = ("adapter_config.json", "adapter_model.safetensors", INFO_FILE)
SCORES_DIR = ".gate-scores"  # kept gate scores (model/training/gate_scores.py): hidden, so never a version
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str) -> str:
    """Return `name` if it is a safe adapter name (no path separators, no '..'); raise AdapterError otherwise."""
    if not _NAME.match(name or "") or ".." in name:
        raise AdapterError(
            f"invalid adapter name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, no '..' or '/')",
            user_message="어댑터 이름이 올바르지 않아요. 영문, 숫자, . _ - 만 쓸 수 있어요.",
        )
    return name


@dataclass(frozen=True)
class AdapterInfo:
    """One registered version and its recorded facts."""

    version: str
    path: Path
    info: dict[str, Any]

    @property
    def trained_from(self) -> str:
        """The version training started from ("" for the base model): an undecided trial's leader when a retrain
        built on one (`trained_from`), else the version it was scored against (`parent`)."""
        return str(self.info.get("trained_from") or self.info.get("parent") or "")


class AdapterRegistry:
    """The adapters folder under COPYBOT_HOME."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, version: str) -> Path:
        """The folder of a version; the name is validated and must stay inside the registry."""
        folder = (self.root / check_name(version)).resolve()
        if folder.parent != self.root.resolve():
            raise AdapterError(f"adapter {version!r} would resolve outside {self.root}")
        return folder

    def next_version(self) -> str:
        """'v0001', 'v0002', … one past the highest numbered version present."""
        numbers = [int(m.group(1)) for p in self._folders() if (m := re.fullmatch(r"v(\d{4,})", p.name))]
        return f"v{max(numbers, default=0) + 1:04d}"

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def versions(self) -> list[AdapterInfo]:
        """Every complete version, oldest first (incomplete folders are skipped)."""
        out = []
        for folder in self._folders():
            try:
                out.append(self.load(folder.name))
            except AdapterError:
                continue
        return out

    def load(self, version: str) -> AdapterInfo:
        """Read and check one version; a missing file, bad JSON or `modules_to_save` is refused clearly."""
        folder = self.path(version)
        return AdapterInfo(version, folder, _checked_info(folder, version))

    def save(self, version: str, write: Callable[[Path], None], info: dict[str, Any]) -> AdapterInfo:
        """Create `version` atomically: `write(staging)` saves the PEFT files, then the folder is renamed."""
        target = self.path(version)
        if target.exists():
            raise AdapterError(f"adapter {version} already exists at {target}")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.root))
        try:
            write(staging)
            shutil.rmtree(staging / "ref", ignore_errors=True)  # TRL's reference copy is not part of the adapter
            record = {"version": version, "created_at": datetime.now(UTC).isoformat(timespec="seconds"), **info}
            (staging / INFO_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2), "utf-8")
            _checked_info(staging, version)
            _fsync_tree(staging)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.load(version)

    def clean_staging(self) -> list[str]:
        """Remove staging folders left by an interrupted save; return their names."""
        if not self.root.is_dir():
            return []
        leftovers = [p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(".") and p.name != SCORES_DIR]
        for p in leftovers:
            shutil.rmtree(p, ignore_errors=True)
        return [p.name for p in leftovers]


def _checked_info(folder: Path, version: str) -> dict[str, Any]:
    """The version's copybot.json after checking the folder is a complete, servable PEFT adapter."""
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise AdapterError(f"adapter {version} at {folder} is incomplete: missing {', '.join(missing)}",
                           user_message=f"{version} 어댑터 폴더가 없거나 파일이 빠져 있어요.")  # fmt: skip
    try:
        config = json.loads((folder / "adapter_config.json").read_text("utf-8"))
        info: dict[str, Any] = json.loads((folder / INFO_FILE).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise AdapterError(f"adapter {version} at {folder} is corrupt: {exc}",
                           user_message=f"{version} 어댑터 파일이 손상됐어요.") from exc  # fmt: skip
    if config.get("modules_to_save"):
        raise AdapterError(f"adapter {version} uses modules_to_save, which vLLM cannot serve; retrain it",
                           user_message=f"{version} 어댑터는 GPU 서버에서 쓸 수 없는 형식이에요.")  # fmt: skip
    return info


def _fsync_tree(folder: Path) -> None:
    """Flush the files to disk before the rename makes them visible."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
