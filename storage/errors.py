"""Errors raised by the store; messages are for operators (English) and say what to check."""


class StoreError(Exception):
    """The database could not be opened, or a write referred to something that does not exist."""
