"""Errors that end a command with a one-line message instead of a traceback."""

from __future__ import annotations


class ToklineError(Exception):
    """A failure the user can act on; str(err) is the whole message."""

    exit_code = 1


class ConfigError(ToklineError):
    """A bad value in config.toml; the message names the key."""

    exit_code = 2


class LedgerError(ToklineError):
    """The ledger cannot be opened or is corrupt."""

    exit_code = 3
