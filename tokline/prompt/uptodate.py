"""Is the ledger up to date?  Answered from the stat manifest before anything heavy loads.

Stdlib only: the live (hot) entries are stat'ed in Python; a full check (``tokline
scan``, and the background refresh at most once a minute) stats every entry with the
compiled tokline.prompt._manifest_c, loaded then (tokline/prompt/native.py chooses it or
its twin in tokline/prompt/manifest.py).
"""

from __future__ import annotations

import os
import struct
import time

from tokline.prompt import manifest, native
from tokline.prompt.statefiles import UnsafeDir, check_dir, data_dir


def ledger_path(env: os._Environ[str] | dict[str, str] = os.environ) -> str:
    """Mirror of tokline.paths.ledger_file() without pathlib (tests keep them in step);
    like it, raises (UnsafeDir) when the data directory is another user's or writable
    by others."""
    override = env.get("TOKLINE_LEDGER")
    if override:
        return override
    directory = data_dir(env)
    check_dir(directory)
    return os.path.join(directory, "ledger.sqlite3")


def _full_check(data: bytes, start: int, end: int) -> bool:
    # the compiled module is imported here, on the first full check, not with this module
    checks = native.load("manifest")
    return bool(checks.entries_unchanged(data, start, end))


def up_to_date(env: os._Environ[str] | dict[str, str] = os.environ, full: bool = False) -> bool:
    """Nothing changed since the last refresh.  ``full`` stats every entry; otherwise only
    the live ones, and all of them at most once a minute (see tokline/prompt/manifest.py)."""
    try:
        path = ledger_path(env)
    except UnsafeDir:
        return False  # the full command refuses it, in one line
    target = path + ".manifest"
    try:
        ino = os.stat(path).st_ino
    except OSError:
        return False
    read = manifest.read(target, env, ino)
    if read is None:
        return False
    data, (checked_ns, hot_start, cold_start) = read
    now = time.time_ns()
    if full:
        if not _full_check(data, hot_start, len(data)):
            return False
    else:
        if not manifest.entries_unchanged(data, hot_start, cold_start):
            return False
        if now - checked_ns < manifest.FULL_CHECK_S * 1_000_000_000:
            return True
        if not _full_check(data, cold_start, len(data)):
            return False
    try:
        fd = os.open(target, os.O_WRONLY)
        try:
            os.pwrite(fd, struct.pack("<Q", now), manifest.CHECKED_AT)
        finally:
            os.close(fd)
    except OSError:
        pass  # only means the next call checks everything again
    return True
