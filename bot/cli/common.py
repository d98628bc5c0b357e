"""Helpers shared by the `copybot` command modules: exit codes, the one-line error, settings."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from bot.settings import Settings, SettingsError

EXIT_USAGE = 2
EXIT_FAILURE = 1


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print one 'Error: …' line to stderr and exit with `code`."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def load_settings() -> Settings:
    """Settings from the environment; a bad value is a usage error naming the variable."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        fail(str(exc), EXIT_USAGE)


def parse_maps(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--map COLUMN=FIELD` options (corpus and results imports) as {column: field}; a malformed one is a usage
    error."""
    out = {}
    for pair in pairs:
        column, sep, field = pair.partition("=")
        if not sep or not column.strip() or not field.strip():
            fail(f"--map takes COLUMN=FIELD, got {pair!r}", EXIT_USAGE)
        out[column.strip()] = field.strip()
    return out
