"""Errors that end a command with a one-line message instead of a traceback.

Exit codes: 1 a failure the message explains, 2 bad usage or config, 3 a corrupt
ledger, 4 a ledger that cannot be written (permissions, read-only file system), 5 a
full disk, 6 a ledger another process holds locked too long, 7 another I/O error.
tokline/ledger/faults.py tells the storage ones apart.
"""

from __future__ import annotations


class ToklineError(Exception):
    """A failure the user can act on; str(err) is the whole message."""

    exit_code = 1


class ConfigError(ToklineError):
    """A bad value in config.toml; the message names the key."""

    exit_code = 2


class LedgerError(ToklineError):
    """The ledger cannot be opened or is corrupt (the base of the storage errors)."""

    exit_code = 3


class LedgerCorrupt(LedgerError):
    """The ledger's bytes are damaged: ``tokline scan --rebuild`` makes a new one."""

    exit_code = 3


class StorageError(LedgerError):
    """The ledger is sound but its storage is not usable now: never rebuild advice."""

    exit_code = 7


class LedgerReadOnly(StorageError):
    """A directory or file that must be written is not writable; the message names it."""

    exit_code = 4


class DiskFull(StorageError):
    """The file system holding the ledger (or the state files) has no room left."""

    exit_code = 5


class LedgerBusy(StorageError):
    """Another process held the ledger's lock longer than tokline waits."""

    exit_code = 6
