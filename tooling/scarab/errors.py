"""Errors that read as advice: what went wrong and what to do about it."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class ScarabError(Exception):
    """A failure the user can act on; the message is a sentence of advice, never a traceback."""

    exit_code = EXIT_FAILURE


class ConfigError(ScarabError):
    """scarab.toml or a flag is invalid (exit 2)."""

    exit_code = EXIT_USAGE
