"""Shared fixtures: a temporary COPYBOT_HOME, a real store, and the starter model built once and cached."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import Settings
from model.writing.engine import LocalEngine
from storage import Store

REPO = Path(__file__).resolve().parent.parent
# Built once per corpus and recipe, and kept across test runs (CI builds it once per clean clone).
STARTER_CACHE = Path(os.environ.get("COPYBOT_TEST_CACHE", REPO / ".cache")) / "starter"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the starter model, itself or through any fixture, is slow (`pytest -m "not slow"` skips
    it): marked here, in one place, so that no test file has to remember to."""
    for item in items:
        if "starter_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def starter_dir() -> Path:
    """A built starter model folder, rebuilt only when the corpus or recipe changed."""
    from model.starter.build import RECIPE_VERSION, build_starter, starter_info
    from model.starter.corpus import corpus_hash

    key = f"{corpus_hash()}-r{RECIPE_VERSION}"
    path = STARTER_CACHE / key
    if starter_info(path) is None:
        if STARTER_CACHE.exists():
            shutil.rmtree(STARTER_CACHE)  # drop builds of older corpora
        build_starter(path, progress=False)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty COPYBOT_HOME for this test; Slack and model-host variables cleared."""
    home = tmp_path / "copybot-home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith(("COPYBOT_", "SLACK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COPYBOT_HOME", str(home))
    return home


@pytest.fixture
def home_with_starter(home: Path, starter_dir: Path) -> Path:
    """A COPYBOT_HOME whose starter model is the cached build (linked, not copied)."""
    (home / "models").mkdir()
    (home / "models" / "starter").symlink_to(starter_dir, target_is_directory=True)
    return home


@pytest.fixture
def settings(home: Path) -> Settings:
    """Settings read from the test environment."""
    return Settings.from_env()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A real SQLite store in a temporary file."""
    s = Store.open(tmp_path / "store.db")
    yield s
    s.close()


# The real starter engine and a registry with one real LoRA adapter (model-side and remote-backend tests).
@pytest.fixture(scope="module")
def engine(starter_dir: Path) -> LocalEngine:
    return LocalEngine(starter_dir, version="starter")


@pytest.fixture(scope="module")
def adapters_root(tmp_path_factory: pytest.TempPathFactory, starter_dir: Path) -> Path:
    """A registry holding one real (randomly initialised, so visibly different) LoRA adapter, v0001."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from model.training.registry import AdapterRegistry

    root = tmp_path_factory.mktemp("adapters")
    lora = LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(starter_dir)), lora)
    AdapterRegistry(root).save("v0001", lambda folder: model.save_pretrained(str(folder)), {"parent": ""})
    return root
