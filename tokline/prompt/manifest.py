"""The stat manifest: what a refresh saw, so "nothing changed" costs a few stats, not SQLite.

Written beside the ledger after each committed refresh; checked by the fast path
(tokline/prompt/uptodate.py) before anything heavy is imported.  Binary, little-endian:

    header  b"TKLM3\\n", u64 time of the last full check (ns), u64 offset of the cold
            entries, u32 length of the environment key, u32 number of files, the key's
            bytes, u64 ledger inode
    entry   kind (b"f" file, b"d" directory, b"p" pinned directory, b"m" missing root),
            u64 inode, i64 size, i64 mtime_ns, u32 length + bytes of the path

A directory's mtime changes when an entry is added or removed, so new log files are
seen; an appended file changes size and mtime.  Entries untouched for COLD_AFTER_S
(finished sessions: Claude Code resumes into a new file) come after the hot ones and
are stat'ed only by a full check, at most FULL_CHECK_S apart; so a prompt pays for the
live sessions, not for years of history.  Pinned directories (roots and project
directories, where new sessions appear) are always hot, and so are a live session's own
directories (its subagents' logs).  Stdlib only: this runs on the
fast path.
"""

from __future__ import annotations

import os
import struct
import time

from tokline.sources import ENV as ENV_KEYS

MAGIC = b"TKLM3\n"
CHECKED_AT = len(MAGIC)  # offset of the u64 rewritten after each full check
COLD_AFTER_S = 3600
FULL_CHECK_S = 60
_HEADER = struct.Struct("<QQII")
_ENTRY = struct.Struct("<cQqqI")

Entry = tuple[bytes, int, int, int, str]


def env_key(env: dict[str, str] | os._Environ[str]) -> bytes:
    return "\0".join(env.get(k, "") for k in ENV_KEYS).encode("utf-8", "surrogateescape")


def _live_session_dirs(entries: list[Entry], cold_before: int) -> set[str]:
    """The directories of live sessions: ``S/`` and below for a live log ``S.jsonl``.  A
    Claude session's subagents write to ``S/subagents/``, a directory made when its first
    subagent ran, perhaps hours ago: a live session's next subagent must be seen at once,
    not at the next full check."""
    stems = {e[4][:-len(".jsonl")] for e in entries
             if e[0] == b"f" and e[3] >= cold_before and e[4].endswith(".jsonl")}
    live: set[str] = set()
    if not stems:
        return live
    for kind, _, _, _, path in entries:
        if kind != b"d":
            continue
        parent = path
        for _ in range(3):  # S/, S/subagents/ and one more level
            if parent in stems:
                live.add(path)
                break
            parent = os.path.dirname(parent)
    return live


def _pack(entries: list[Entry]) -> bytes:
    out = []
    for kind, ino, size, mtime_ns, path in entries:
        raw = os.fsencode(path)
        out.append(_ENTRY.pack(kind, ino & (2**64 - 1), size, mtime_ns, len(raw)))
        out.append(raw)
    return b"".join(out)


def encode(key: bytes, ledger_ino: int, entries: list[Entry], now_ns: int | None = None,
           cold_raw: bytes = b"", cold_files: int = 0, checked_ns: int | None = None) -> bytes:
    """``entries`` are sorted into hot and cold; ``cold_raw`` (already packed cold entries,
    ``cold_files`` of them files) is carried over from the last manifest as it was, and
    then so is the time of its last full check, ``checked_ns``."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    checked_ns = now_ns if checked_ns is None else checked_ns
    cold_before = now_ns - COLD_AFTER_S * 1_000_000_000
    live = _live_session_dirs(entries, cold_before)
    hot: list[Entry] = []
    cold: list[Entry] = []
    for e in entries:
        (hot if e[0] in b"mp" or e[3] >= cold_before or e[4] in live else cold).append(e)
    files = sum(1 for e in entries if e[0] == b"f") + cold_files
    head_len = len(MAGIC) + _HEADER.size + len(key) + 8
    hot_bytes = _pack(hot)
    return b"".join([
        MAGIC, _HEADER.pack(checked_ns, head_len + len(hot_bytes), len(key), files), key,
        struct.pack("<Q", ledger_ino & (2**64 - 1)), hot_bytes, _pack(cold), cold_raw])


def layout(data: bytes, key: bytes, ledger_ino: int) -> tuple[int, int, int] | None:
    """(last full check ns, hot start, cold start), or None when the header is not for this
    ledger and environment."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _HEADER.size:
        return None
    checked, cold_start, length, _ = _HEADER.unpack_from(data, len(MAGIC))
    start = len(MAGIC) + _HEADER.size
    if data[start:start + length] != key or len(data) < start + length + 8:
        return None
    (ino,) = struct.unpack_from("<Q", data, start + length)
    if ino != ledger_ino & (2**64 - 1) or not start + length + 8 <= cold_start <= len(data):
        return None
    return checked, start + length + 8, cold_start


def read(path: str, env: dict[str, str] | os._Environ[str], ledger_ino: int
         ) -> tuple[bytes, tuple[int, int, int]] | None:
    """The manifest's bytes and layout, or None when it is missing or not for this ledger
    and environment."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    found = layout(data, env_key(env), ledger_ino)
    return None if found is None else (data, found)


def entries_unchanged(data: bytes, start: int, end: int) -> bool:
    """Every entry in data[start:end] still holds.  Twin of
    tokline.prompt._manifest_c.entries_unchanged."""
    pos = start
    while pos < end:
        if pos + _ENTRY.size > end:
            return False
        kind, ino, size, mtime_ns, length = _ENTRY.unpack_from(data, pos)
        pos += _ENTRY.size
        if length > 4096 or pos + length > end:
            return False
        path = data[pos:pos + length]
        pos += length
        try:
            st = os.stat(path)
        except OSError:
            if kind == b"m":
                continue
            return False
        is_dir = (st.st_mode & 0o170000) == 0o040000
        if kind == b"m":
            if is_dir:
                return False
        elif kind in (b"d", b"p"):
            if st.st_mtime_ns != mtime_ns or not is_dir:
                return False
        elif (st.st_ino & (2**64 - 1), st.st_size, st.st_mtime_ns) != (ino, size, mtime_ns):
            return False
    return True


def decode(data: bytes, start: int, end: int) -> list[Entry]:
    entries: list[Entry] = []
    pos = start
    unpack = _ENTRY.unpack_from
    while pos + _ENTRY.size <= end:
        kind, ino, size, mtime_ns, length = unpack(data, pos)
        pos += _ENTRY.size
        entries.append((kind, ino, size, mtime_ns, os.fsdecode(data[pos:pos + length])))
        pos += length
    return entries


def names_under(data: bytes, start: int, end: int, prefix: bytes) -> set[bytes]:
    """The paths (as bytes) of the packed entries in data[start:end] that begin with
    ``prefix``.  Twin of tokline.prompt._manifest_c.names_under."""
    found: set[bytes] = set()
    pos = start
    unpack = _ENTRY.unpack_from
    size = _ENTRY.size
    while pos + size <= end:
        length = unpack(data, pos)[4]
        pos += size
        if pos + length > end:
            break
        if data.startswith(prefix, pos, pos + length):
            found.add(data[pos:pos + length])
        pos += length
    return found


def file_count(data: bytes) -> int:
    """Files among all entries, as the header records them."""
    return int(_HEADER.unpack_from(data, len(MAGIC))[3])
