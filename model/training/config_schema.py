"""Training settings read from JSON (a fine-tuning job's `hyperparameters` and `gate`, `train_config.json`),
checked by pydantic against the dataclass itself: unknown names and wrong types are refused by name, an integer
is accepted where a float is expected, and a boolean never passes for a number."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

T = TypeVar("T")
TYPE_NAMES = {"float_type": "float", "int_type": "int", "bool_type": "bool", "string_type": "str"}


class ConfigError(ValueError):
    """A settings object that cannot be used; `str()` says which setting and why."""


_SCHEMAS: dict[type, type[BaseModel]] = {}


def _schema(cls: type) -> type[BaseModel]:
    if cls not in _SCHEMAS:
        hints = typing.get_type_hints(cls)
        fields: dict[str, Any] = {f.name: (hints[f.name], f.default) for f in dataclasses.fields(cls)}
        _SCHEMAS[cls] = create_model(f"{cls.__name__}Schema", __config__=ConfigDict(extra="forbid", strict=True),
                                     **fields)  # fmt: skip
    return _SCHEMAS[cls]


def config_from(cls: type[T], raw: Any, what: str) -> T:
    """`cls` (a dataclass of settings) from a JSON object; missing names keep their defaults, None means all of
    them. `what` names the object in messages ("hyperparameters", "gate", a file)."""
    if raw is None:
        return cls()
    try:
        checked = _schema(cls).model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_first_problem(exc, cls, what)) from exc
    return cls(**checked.model_dump())


def _first_problem(exc: ValidationError, cls: type, what: str) -> str:
    error = exc.errors()[0]
    if not error["loc"]:
        return f"{what} must be an object"
    name = str(error["loc"][0])
    if error["type"] == "extra_forbidden":
        known = ", ".join(f.name for f in dataclasses.fields(cls))
        return f"unknown {what} setting {name!r}; known: {known}"
    expected = TYPE_NAMES.get(error["type"], error["msg"])
    return f"{what}.{name} must be of type {expected}; got {error['input']!r}"
