"""Old ledgers that ``tokline scan --rebuild`` keeps, and the locks a rebuild takes.

A rebuild holds ``<ledger>.rebuild.lock`` from start to end, so rebuilds run one after
another; it moves the ledger and its -wal/-shm aside holding ``<ledger>.lock``
exclusively, which every opening connection holds shared (tokline/ledger/store.py), so
no process pairs the new ledger with the old one's -wal.  A backup's name is the time of
the move to the nanosecond, claimed with O_EXCL before the rename: never overwritten.
Backups stay until ``tokline scan --prune-backups`` keeps the newest KEEP.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tokline.ledger import faults
from tokline.ledger.store import LOCK_SUFFIX

KEEP = 3
REBUILD_LOCK_SUFFIX = ".rebuild.lock"
REBUILD_WAIT_S = 600.0
MOVE_WAIT_S = 60.0
SIDECARS = ("-wal", "-shm")


@contextmanager
def _flock(path: str, wait_s: float, what: str, ledger: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise faults.busy(ledger, f"{what} still running after {wait_s:.0f} s"
                                      ) from None
                if not told and what == "another rebuild":
                    print(f"tokline: waiting for {what} to finish", file=sys.stderr)
                    told = True
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


@contextmanager
def rebuild_lock(path: str) -> Iterator[None]:
    """Held for a whole rebuild: one at a time per ledger."""
    with _flock(path + REBUILD_LOCK_SUFFIX, REBUILD_WAIT_S, "another rebuild", path):
        yield


def _settle(path: str) -> bool:
    """Fold the -wal into the file (best effort: a corrupt ledger is moved as it is);
    True when the ledger opens and holds no file and no usage row (a rebuild killed
    early), so there is nothing to keep."""
    try:
        db = sqlite3.connect(path, timeout=5.0)
    except sqlite3.Error:
        return False
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (count,) = db.execute(
            "SELECT (SELECT count(*) FROM files) + (SELECT count(*) FROM usage)").fetchone()
        return bool(count == 0)
    except sqlite3.Error:
        return False
    finally:
        db.close()  # the last connection: SQLite removes the -wal and -shm


def _claim(base: str) -> str:
    """A backup name nobody has: created empty with O_EXCL, replaced by the rename."""
    for n in range(1000):
        name = base if n == 0 else f"{base}-{n}"
        try:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            continue
        return name
    raise FileExistsError(base)


def move_aside(path: str) -> str | None:
    """Move the ledger and its -wal/-shm to a new backup name; the name, or None when
    there was no ledger or it held nothing (then it is just removed)."""
    if not os.path.exists(path):
        return None
    with _flock(path + LOCK_SUFFIX, MOVE_WAIT_S, "a process opening the ledger", path):
        if _settle(path):
            for suffix in ("", *SIDECARS):
                with suppress(FileNotFoundError):
                    os.unlink(path + suffix)
            return None
        now = time.time_ns()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now // 1_000_000_000))
        aside = _claim(f"{path}.old-{stamp}.{now % 1_000_000_000:09d}")
        # The sidecars first: a -wal left at the old name would be read into the new ledger.
        for suffix in SIDECARS:
            if os.path.exists(path + suffix):
                os.replace(path + suffix, aside + suffix)
        os.replace(path, aside)
    return aside


def kept(path: str) -> list[str]:
    """Backups of the ledger at ``path``, oldest first."""
    directory, name = os.path.split(os.path.abspath(path))
    prefix = name + ".old-"
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [os.path.join(directory, n) for n in sorted(names)
            if n.startswith(prefix) and not n.endswith(SIDECARS)]


def beyond_keep(path: str, keep: int = KEEP) -> list[str]:
    """Backups older than the newest ``keep``."""
    every = kept(path)
    return every[:-keep] if keep else every


def prune(path: str, keep: int = KEEP) -> list[str]:
    """Remove the backups older than the newest ``keep``; the ones removed."""
    gone = beyond_keep(path, keep)
    for backup in gone:
        for suffix in ("", *SIDECARS):
            with suppress(FileNotFoundError):
                os.unlink(backup + suffix)
    return gone
