"""copybot's SQLite store."""

from storage.errors import StoreBusy, StoreError
from storage.store import Store

__all__ = ["Store", "StoreBusy", "StoreError"]
