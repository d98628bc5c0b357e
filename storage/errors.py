"""Errors raised by the store; messages are for operators (English) and say what to check."""


class StoreError(Exception):
    """The database could not be opened, or a write referred to something that does not exist."""


class StoreBusy(StoreError):
    """Another process held the database's write lock for longer than the busy timeout: the write may succeed if
    tried again later (unlike the other StoreErrors, which say the write itself is wrong)."""
