"""The adapter registry: atomic saves, validated names, refusal of corrupt or vLLM-incompatible adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.errors import AdapterError
from model.training.registry import SCORES_DIR, AdapterRegistry, check_name


def _fake_peft(folder: Path, **config: object) -> None:
    """Write files shaped like a PEFT adapter (the engine tests load real ones)."""
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", **config}))
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 16)


def test_save_is_atomic_and_versions_count_up(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    assert registry.next_version() == "v0001"
    saved = registry.save("v0001", _fake_peft, {"parent": "", "metrics": {"loss": 1.0}})
    assert saved.info["version"] == "v0001" and saved.info["metrics"] == {"loss": 1.0}
    assert registry.next_version() == "v0002"
    assert [v.version for v in registry.versions()] == ["v0001"]
    with pytest.raises(AdapterError, match="already exists"):
        registry.save("v0001", _fake_peft, {})


def test_a_failed_write_leaves_nothing_loadable(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")

    def disk_full(folder: Path) -> None:
        (folder / "adapter_config.json").write_text("{}")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        registry.save("v0001", disk_full, {})
    assert registry.versions() == []
    assert list((tmp_path / "adapters").iterdir()) == []


def test_interrupted_staging_is_invisible_and_cleaned(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    staging = tmp_path / "adapters" / ".v0001-abc"
    staging.mkdir(parents=True)
    _fake_peft(staging)
    kept = tmp_path / "adapters" / SCORES_DIR  # the kept gate scores are no staging folder
    kept.mkdir()
    assert registry.versions() == [] and registry.next_version() == "v0001"
    assert registry.clean_staging() == [".v0001-abc"] and kept.is_dir()


@pytest.mark.parametrize("name", ["../etc", "a/b", "..", "", ".hidden", "x" * 65, "v1/../../x"])
def test_unsafe_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(AdapterError, match="invalid adapter name"):
        AdapterRegistry(tmp_path).path(name)
    with pytest.raises(AdapterError):
        check_name(name)


def test_corrupt_and_incompatible_adapters_are_refused_at_load(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path)
    (tmp_path / "v0001").mkdir()
    with pytest.raises(AdapterError, match=r"incomplete: missing adapter_config\.json"):
        registry.load("v0001")
    with pytest.raises(AdapterError, match="modules_to_save"):
        registry.save("v0002", lambda f: _fake_peft(f, modules_to_save=["lm_head"]), {})
    assert not (tmp_path / "v0002").exists()
    (tmp_path / "v0004").mkdir()
    _fake_peft(tmp_path / "v0004", modules_to_save=["lm_head"])
    (tmp_path / "v0004" / "copybot.json").write_text("{}")
    with pytest.raises(AdapterError, match="modules_to_save"):
        registry.load("v0004")
    registry.save("v0003", _fake_peft, {})
    (tmp_path / "v0003" / "copybot.json").write_text("{broken")
    with pytest.raises(AdapterError, match="corrupt"):
        registry.load("v0003")
    assert registry.versions() == []
