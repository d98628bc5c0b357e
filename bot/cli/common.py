"""Helpers shared by the `copybot` command modules: exit codes, the one-line error, settings."""

from __future__ import annotations

from typing import NoReturn

import click

from bot.settings import Settings, SettingsError

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CommandError(click.ClickException):
    """A command that cannot go on: click prints one 'Error: …' line to stderr and exits with status 1."""

    exit_code = EXIT_FAILURE


class BadInput(CommandError):
    """Input the user must change (a flag, a file, a setting): the same one line, exit status 2. Not click's
    UsageError, which would print the usage text as well."""

    exit_code = EXIT_USAGE


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Stop the command with one 'Error: …' line and exit status `code` (EXIT_USAGE or EXIT_FAILURE)."""
    raise (BadInput if code == EXIT_USAGE else CommandError)(message)


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
