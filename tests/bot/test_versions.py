"""One rule for choosing the serving version, whether from the CLI (`copybot model promote`) or Slack
(`/copy rollback VERSION`): a complete registry folder is accepted (and recorded if the store lacks it), a
missing one is refused, and both paths agree."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.learning.versions import promote_version
from bot.settings import Settings
from model.errors import AdapterError
from model.training.registry import AdapterRegistry
from storage import Store
from tests.bot.conftest import Harness
from tests.cli import run

ADMIN = "UADMIN1"


def write_adapter(root: Path, version: str, parent: str = "") -> None:
    """A registry folder with the files a servable adapter has (their contents are not read by the rule)."""

    def write(folder: Path) -> None:
        (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}), "utf-8")
        (folder / "adapter_model.safetensors").write_bytes(b"")

    AdapterRegistry(root).save(version, write, {"parent": parent})


def test_a_registry_folder_the_store_lacks_is_recorded_and_a_missing_one_changes_nothing(tmp_path: Path) -> None:
    settings = Settings.from_env({"COPYBOT_HOME": str(tmp_path)})
    store = Store.open(settings.db_path)
    write_adapter(settings.adapters_dir, "v0001")
    write_adapter(settings.adapters_dir, "v0002", parent="v0001")  # copied in from another host
    assert promote_version(store, settings, "v0002") is None
    [row] = store.model_versions()
    assert (row["version"], row["status"], row["parent_version"]) == ("v0002", "active", "v0001")
    store.add_model_version(version="v0003", base_model="starter", adapter_path=str(tmp_path / "gone"),
                            parent_version="", status="candidate", metrics={})  # fmt: skip
    with pytest.raises(AdapterError, match=r"v0003 .* is incomplete") as refused:
        promote_version(store, settings, "v0003")  # recorded, but its folder was deleted
    assert "폴더가 없거나" in refused.value.user_message
    assert store.active_model_version()["version"] == "v0002"


def test_slack_and_the_cli_accept_and_refuse_the_same_versions(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(COPYBOT_ADMINS=ADMIN)
    settings = h.deps.settings
    write_adapter(settings.adapters_dir, "v0007")
    slack = h.ack_json(h.command("rollback v0007", user=ADMIN))["text"]
    assert "v0007(으)로 바꿨어요" in slack and h.store.active_model_version()["version"] == "v0007"
    slack = h.ack_json(h.command("rollback v0042", user=ADMIN))["text"]
    assert "v0042 어댑터 폴더가 없거나" in slack and "copybot model list" in slack

    env = {"COPYBOT_DB": str(settings.db_path)}
    write_adapter(settings.adapters_dir, "v0008", parent="v0007")
    cli = run("model", "promote", "v0008", env_home=settings.home, extra_env=env)
    assert cli.returncode == 0 and "v0008 is now active" in cli.stdout
    cli = run("model", "promote", "v0042", env_home=settings.home, extra_env=env)
    assert cli.returncode == 2 and "adapter v0042" in cli.stderr and "incomplete" in cli.stderr
    assert Store.open(settings.db_path).active_model_version()["version"] == "v0008"
