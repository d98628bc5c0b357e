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
