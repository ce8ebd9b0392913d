"""Storage faults told apart: a corrupt ledger, one that cannot be written, a full disk,
a lock held too long, another I/O error.  Each becomes its own LedgerError subclass
(tokline/errors.py) with a one-line message and exit code; only a corrupt ledger gets
the advice to rebuild it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from tokline.errors import (
    DiskFull,
    LedgerBusy,
    LedgerCorrupt,
    LedgerError,
    LedgerReadOnly,
    StorageError,
)

LOW_SPACE_BYTES = 1 << 20  # an I/O error with less free space than this is a full disk

_READ_ONLY_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def corrupt(path: str, detail: object) -> LedgerCorrupt:
    return LedgerCorrupt(
        f"the ledger {path} is unreadable ({detail}); rebuild it with `tokline scan --rebuild` "
        "(history of logs that no longer exist will be lost)")


def read_only(what: str, detail: object) -> LedgerReadOnly:
    return LedgerReadOnly(f"cannot write {what} ({detail}); nothing is corrupt: make it "
                          "writable, or report from the ledger as it is with --offline")


def disk_full(where: str, detail: object) -> DiskFull:
    return DiskFull(f"the disk holding {where} is full ({detail}); free some space and "
                    "run the command again")


def busy(path: str, detail: object) -> LedgerBusy:
    return LedgerBusy(f"the ledger {path} is locked by another process ({detail}); "
                      "try again when it has finished")


def io_error(path: str, detail: object) -> StorageError:
    return StorageError(f"cannot read or write the ledger {path} ({detail}); check the disk "
                        "and run the command again")


def cannot_create(path: str) -> StorageError:
    """There is no ledger and none could be made."""
    detail = "there is no ledger yet and none can be made"
    why = unwritable(path)
    if why is not None:
        return read_only(why, detail)
    if _low_space(path):
        return disk_full(path, detail)
    return io_error(path, detail)


def _dir(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def unwritable(path: str) -> str | None:
    """What keeps ``path`` (the ledger or a file beside it) from being written, as words
    naming the path; None when nothing visible does."""
    directory = _dir(path)
    for candidate in (path, path + "-wal", path + "-shm"):
        if os.path.exists(candidate) and not os.access(candidate, os.W_OK):
            return f"{candidate}: the file is not writable"
    probe = directory
    while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)  # the nearest directory that exists: it gets the new one
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{path}: the directory {probe} is not writable"
    try:
        if os.statvfs(probe).f_flag & os.ST_RDONLY:
            return f"{path}: the file system holding {probe} is mounted read-only"
    except OSError:
        pass
    return None


def space_left(path: str) -> int | None:
    """Bytes free for this user on the file system holding ``path``."""
    probe = _dir(path)
    while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    try:
        st = os.statvfs(probe)
    except OSError:
        return None
    return (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize


def _low_space(path: str) -> bool:
    left = space_left(path)
    return left is not None and left < LOW_SPACE_BYTES


def _sqlite_kind(exc: sqlite3.Error) -> str:
    """corrupt, readonly, cantopen, full, busy, ioerr or other."""
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if isinstance(name, str):
        for prefix, kind in (("SQLITE_CORRUPT", "corrupt"), ("SQLITE_NOTADB", "corrupt"),
                             ("SQLITE_READONLY", "readonly"), ("SQLITE_CANTOPEN", "cantopen"),
                             ("SQLITE_FULL", "full"), ("SQLITE_BUSY", "busy"),
                             ("SQLITE_LOCKED", "busy"), ("SQLITE_IOERR", "ioerr"),
                             ("SQLITE_PERM", "readonly"), ("SQLITE_AUTH", "readonly")):
            if name.startswith(prefix):
                return kind
    text = str(exc).lower()
    for needle, kind in (("malformed", "corrupt"), ("not a database", "corrupt"),
                         ("readonly", "readonly"), ("read-only", "readonly"),
                         ("unable to open", "cantopen"), ("disk is full", "full"),
                         ("is locked", "busy"), ("disk i/o error", "ioerr")):
        if needle in text:
            return kind
    return "other"


def classify(exc: BaseException, path: str) -> LedgerError | None:
    """The LedgerError for a sqlite3 or OS error met while using the ledger at ``path``;
    None for anything that is not a storage fault (a bug: let it show)."""
    if isinstance(exc, LedgerError):
        return exc
    if isinstance(exc, OSError):
        where = exc.filename if isinstance(exc.filename, str) else path
        detail = exc.strerror or exc
        if exc.errno in _FULL_ERRNOS:
            return disk_full(where, detail)
        if exc.errno in _READ_ONLY_ERRNOS:
            return read_only(unwritable(where) or where, detail)
        if exc.errno == errno.EIO:
            return io_error(where, detail)
        return None
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.ProgrammingError):
        return None
    kind = _sqlite_kind(exc)
    if kind == "full":
        return disk_full(path, exc)
    if kind == "busy":
        return busy(path, exc)
    if kind in ("readonly", "cantopen", "ioerr"):
        why = unwritable(path)
        if why is not None:
            return read_only(why, exc)
        if kind != "readonly" and _low_space(path):
            return disk_full(path, exc)
        if kind == "readonly":
            return read_only(path, exc)
        if kind == "cantopen" and os.path.exists(path) and not os.access(path, os.R_OK):
            return read_only(f"{path}: the file is not readable either", exc)
        return io_error(path, exc)
    return corrupt(path, exc)  # malformed pages, a missing table: the bytes are not a ledger


@contextmanager
def guard(path: str) -> Iterator[None]:
    """Storage faults inside the block leave it as LedgerErrors."""
    try:
        yield
    except LedgerError:
        raise
    except (sqlite3.DatabaseError, OSError) as exc:
        err = classify(exc, path)
        if err is None:
            raise
        raise err from None


def fallback_worthy(err: LedgerError) -> bool:
    """A fault after which the ledger may still be read as it is."""
    return isinstance(err, StorageError)
