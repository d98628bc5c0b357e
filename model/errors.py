"""Domain errors of the model side. `user_message` is Korean and fit to show in Slack; `str()` is for operators."""

from __future__ import annotations


class ModelSideError(Exception):
    """Base class; carries an English operator message and a Korean user message."""

    def __init__(self, message: str, *, user_message: str | None = None) -> None:
        super().__init__(message)
        self.user_message = user_message or "카피를 만드는 중 문제가 생겼어요. 잠시 후 다시 시도해 주세요."


class BriefError(ModelSideError, ValueError):
    """A brief field is missing or invalid; `field` names it."""

    def __init__(self, field: str, message: str, *, user_message: str) -> None:
        super().__init__(message, user_message=user_message)
        self.field = field


class ModelUnavailableError(ModelSideError):
    """The model could not be loaded or reached."""


class AdapterError(ModelSideError):
    """An adapter folder is missing, corrupt or has an unsafe name."""
