"""Which adapter version serves: the one rule behind `copybot model promote VERSION` and `/copy rollback VERSION`.

A version may be chosen when its registry folder is a complete, servable adapter. A folder the store has not
recorded yet (copied in from another host, or left by a crash between the registry and the store) is recorded
first, from its own `copybot.json`, so both paths accept and refuse the same versions.
"""

from __future__ import annotations

from bot.settings import Settings
from model.training.registry import AdapterRegistry
from storage import Store
from storage.base import Row


def promote_version(store: Store, settings: Settings, version: str) -> Row | None:
    """Make `version` active and return the live trial that this ended (or None); a version whose folder is
    missing or broken raises AdapterError, saying what is wrong, and changes nothing."""
    adapter = AdapterRegistry(settings.adapters_dir).load(version)
    if version not in {r["version"] for r in store.model_versions()}:
        store.add_model_version(version=version, base_model=settings.base_model, adapter_path=str(adapter.path),
                                parent_version=adapter.trained_from)  # fmt: skip
    trial = store.running_trial()
    store.promote_model_version(version)  # ends a running trial
    return trial
