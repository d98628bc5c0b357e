"""copybot's SQLite store."""

from storage.errors import StoreError
from storage.store import Store

__all__ = ["Store", "StoreError"]
