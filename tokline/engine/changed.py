"""What changed since the last refresh, from the stat manifest instead of a full walk.

Live (hot) entries are stat'ed; a directory whose mtime moved is listed again for new
files and subdirectories; cold entries are trusted until the next full check
(manifest.FULL_CHECK_S apart), when every entry is stat'ed.
"""

from __future__ import annotations

import os
import time

from tokline.engine import discover
from tokline.engine.native import manifest_names_under
from tokline.prompt import manifest


class Plan:
    """What an incremental refresh reads, and the manifest it leaves behind."""

    __slots__ = ("checked_ns", "cold_files", "cold_raw", "entries", "files_known", "found")

    def __init__(self, found: discover.Found, entries: list[manifest.Entry], cold_raw: bytes,
                 cold_files: int, files_known: int, checked_ns: int | None) -> None:
        self.found = found  # changed and new files
        self.entries = entries  # hot entries, updated
        self.cold_raw = cold_raw  # cold entries, packed, carried over unread
        self.cold_files = cold_files
        self.files_known = files_known
        self.checked_ns = checked_ns  # None: every entry was checked now


def since_manifest(path: str, env: dict[str, str], ledger_ino: int,
                   suffix: str | tuple[str, ...]) -> Plan | None:
    """The incremental plan, or None when a full walk is due."""
    read = manifest.read(path, env, ledger_ino)
    if read is None:
        return None
    data, found_layout = read
    checked_ns: int | None
    checked_ns, hot_start, cold_start = found_layout
    if time.time_ns() - checked_ns >= manifest.FULL_CHECK_S * 1_000_000_000:
        cold_start = len(data)  # a full check is due: every entry counts as hot this time
        checked_ns = None
    hot = manifest.decode(data, hot_start, cold_start)
    cold_raw = data[cold_start:]
    cold_files = manifest.file_count(data) - sum(1 for entry in hot if entry[0] == b"f") \
        if cold_raw else 0
    known = {os.fsencode(entry[4]) for entry in hot}
    found = discover.Found()
    kept: list[manifest.Entry] = []
    fresh_dirs: list[str] = []
    pinned: set[str] = set()
    for kind, ino, size, mtime_ns, name in hot:
        try:
            st = os.stat(name)
        except OSError:
            if kind == b"m":
                kept.append((kind, ino, size, mtime_ns, name))
            continue  # a vanished file or directory: its history stays in the ledger
        is_dir = (st.st_mode & 0o170000) == 0o040000
        if kind == b"m":
            if is_dir:
                fresh_dirs.append(name)  # a root appeared
                pinned.add(name)
            else:
                kept.append((kind, ino, size, mtime_ns, name))
        elif kind in (b"d", b"p"):
            if st.st_mtime_ns == mtime_ns:
                kept.append((kind, ino, size, mtime_ns, name))
            else:
                if cold_raw:  # the cold entries of a directory that changed
                    known |= manifest_names_under(data, cold_start, len(data),
                                                  os.fsencode(os.path.join(name, "")))
                _relist(name, st.st_mtime_ns, known, suffix, found, fresh_dirs)
                if kind == b"p":
                    pinned.add(name)
        elif (st.st_ino, st.st_size, st.st_mtime_ns) == (ino, size, mtime_ns):
            kept.append((kind, ino, size, mtime_ns, name))
        else:
            found.files[name] = st
    if fresh_dirs:
        discover.walk(fresh_dirs, suffix, found)
    pinned |= {d for d in found.dirs if os.path.dirname(d) in pinned}
    entries = kept
    entries += [(b"p" if name in pinned else b"d", 0, 0, mtime, name)
                for name, mtime in found.dirs.items()]
    entries += [(b"f", st.st_ino, st.st_size, st.st_mtime_ns, name)
                for name, st in found.files.items()]
    files_known = sum(1 for e in entries if e[0] == b"f") + cold_files
    return Plan(found, entries, cold_raw, cold_files, files_known, checked_ns)


def _relist(directory: str, mtime_ns: int, known: set[bytes], suffix: str | tuple[str, ...],
            found: discover.Found, fresh_dirs: list[str]) -> None:
    """A directory gained or lost entries: pick up what is new in it."""
    found.dirs[directory] = mtime_ns
    try:
        with os.scandir(directory) as listing:
            for entry in listing:
                if os.fsencode(entry.path) not in known:
                    discover.take(entry, suffix, found, fresh_dirs)
    except OSError as exc:
        found.problems.append(f"cannot read {directory}: {exc.strerror}")
