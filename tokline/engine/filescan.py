"""Map append-only log files and run the scanner over the bytes added since last time."""

from __future__ import annotations

import mmap
import os
import zlib
from collections.abc import Callable

from tokline.engine.native import scan_path
from tokline.engine.records import Record, ScanFn
from tokline.ledger.store import FileState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HEAD_BYTES = 4096
WINDOW_BYTES = 8 << 20  # mapped at a time: bounds resident memory (two threads map at once)


class FileScan:
    """What one file contributed in one refresh."""

    __slots__ = ("_records", "rescanned", "scanned_bytes", "state")

    def __init__(self, state: FileState, records: list[Any] | Deferred, rescanned: bool,
                 scanned_bytes: int) -> None:
        self.state = state
        self._records = records
        self.rescanned = rescanned  # read from 0: the file was rewritten, truncated or replaced
        self.scanned_bytes = scanned_bytes

    @property
    def records(self) -> list[Any]:
        """The records; a deferred scan's are built on first use, by the caller's thread
        (and lines its decoder rejects then join the file's malformed count)."""
        if isinstance(self._records, Deferred):
            self._records, malformed = self._records.build()
            if malformed:
                self.state = self.state._replace(malformed=self.state.malformed + malformed)
        return self._records

    @property
    def deferred(self) -> Deferred | None:
        """The compiled reader's records while they are not built (None: built, or never
        deferred): tokline/sources/claude.py builds ledger rows of them in C."""
        return self._records if isinstance(self._records, Deferred) else None


class Deferred:
    """Records a scanner thread found without the GIL, built into Python objects later by
    the thread that uses them (tokline.engine._claude_c.scan_deferred)."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[tuple[Any, int]] = []  # (pending records, window base)

    def build(self) -> tuple[list[Record], int]:
        """The records, and the malformed lines found only now."""
        records: list[Record] = []
        malformed = 0
        for pending, base in self.parts:
            found, _, bad = pending.records()
            malformed += bad - pending.parse_malformed
            records.extend([(r[0] + base, *r[1:]) for r in found] if base else found)
        return records, malformed


def _head_crc(fd: int, length: int) -> int:
    return zlib.crc32(os.pread(fd, length, 0)) if length else 0


def each_window(fd: int, start: int, size: int, take: Callable[[mmap.mmap, int, int], int]
                ) -> int:
    """Map [start, size) a window at a time and hand each to ``take(mapped, offset in the
    window, window's base)``, which returns the window offset past the last complete
    line it used (the offset it was given when there is none).  Returns the file offset
    past the last complete line."""
    pos = start
    window = WINDOW_BYTES
    while pos < size:
        base = pos - pos % mmap.ALLOCATIONGRANULARITY
        length = min(size - base, window)
        with mmap.mmap(fd, length, offset=base, access=mmap.ACCESS_READ) as mapped:
            end = take(mapped, pos - base, base)
        if base + end > pos:
            pos = base + end
            window = WINDOW_BYTES
        elif base + length >= size:
            break  # only an incomplete last line is left
        else:
            window *= 2  # one line longer than the window
    return pos


def _scan_range(fd: int, start: int, size: int, scan: ScanFn) -> tuple[list[Record], int, int]:
    records: list[Record] = []
    malformed = 0

    def take(mapped: mmap.mmap, offset: int, base: int) -> int:
        nonlocal malformed
        found, end, bad = scan(mapped, offset)
        records.extend([(r[0] + base, *r[1:]) for r in found] if base else found)
        malformed += bad
        return int(end)

    end = each_window(fd, start, size, take)
    return records, end, malformed


# A source's reader: (path, fd, start, size, parser state or None) -> (what it found,
# offset past the last complete line, malformed lines, the parser state to keep).
Reader = Callable[[str, int, int, int, "str | None"],
                  "tuple[list[Any] | Deferred, int, int, str | None]"]


class ClaudeReader:
    """Claude Code's logs through ``scan``; through ``deferred`` (scan_deferred) when given,
    leaving the records to be built by whoever reads them.  ``whole``: the compiled
    scan_path (ext/_claude_c.pyx), which scan_file calls instead of opening the file and
    mapping its windows itself: the same windows, the same records, the same state."""

    __slots__ = ("deferred", "scan", "whole")

    def __init__(self, scan: ScanFn, deferred: Callable[[Any, int], Any] | None = None,
                 whole: Callable[..., Any] | None = None) -> None:
        self.scan = scan
        self.deferred = deferred
        self.whole = whole

    def __call__(self, path: str, fd: int, start: int, size: int, state: str | None
                 ) -> tuple[list[Any] | Deferred, int, int, None]:
        deferred = self.deferred
        if deferred is None:
            records, end, malformed = _scan_range(fd, start, size, self.scan)
            return records, end, malformed, None
        later = Deferred()
        malformed = 0

        def take(mapped: mmap.mmap, offset: int, base: int) -> int:
            nonlocal malformed
            pending = deferred(mapped, offset)
            later.parts.append((pending, base))
            malformed += pending.parse_malformed
            return int(pending.end)

        end = each_window(fd, start, size, take)
        return later, end, malformed, None


def claude_reader(scan: ScanFn, deferred: Callable[[Any, int], Any] | None = None) -> Reader:
    """A ClaudeReader; with the compiled scan_deferred, the compiled scan_path does the
    file's bookkeeping too."""
    return ClaudeReader(scan, deferred, scan_path if deferred is not None else None)


def scan_file(path: str, source: str, st: os.stat_result, known: FileState | None,
              read: Reader, keep_state: bool = False) -> FileScan:
    """Scan what is new in ``path``; a rewritten or replaced file is read again from 0.
    The reader's state from the last read comes with it only when the read continues from
    there, unless ``keep_state`` (a whole-file reader's, which knows what the file held)."""
    same = known is not None and (known.dev, known.ino) == (st.st_dev, st.st_ino) \
        and st.st_size >= known.offset and known.head_len <= st.st_size
    whole = getattr(read, "whole", None)
    if whole is not None:
        # open, head checksum, windows and scan in C (ext/_claude_c.pyx scan_path)
        parts, start, end, malformed, head_len, head_crc = whole(
            path, st.st_size, known.offset if same and known else 0,
            known.head_len if same and known else 0, known.head_crc if same and known else 0)
        later = Deferred()
        later.parts = parts
        return _scanned(path, source, st, known, start, later, end, malformed, None,
                        head_len, head_crc)
    fd = os.open(path, os.O_RDONLY)
    try:
        start = 0
        if same and known is not None and _head_crc(fd, known.head_len) == known.head_crc:
            start = known.offset
        prior_state = known.state if known is not None and (start > 0 or keep_state) \
            else None
        records, end, malformed, parser_state = read(path, fd, start, st.st_size, prior_state)
        head_len = min(end, HEAD_BYTES)
        head_crc = _head_crc(fd, head_len)
    finally:
        os.close(fd)
    return _scanned(path, source, st, known, start, records, end, malformed, parser_state,
                    head_len, head_crc)


def _scanned(path: str, source: str, st: os.stat_result, known: FileState | None, start: int,
             records: list[Any] | Deferred, end: int, malformed: int, parser_state: str | None,
             head_len: int, head_crc: int) -> FileScan:
    rescanned = known is not None and start == 0 and known.offset > 0
    previous_malformed = known.malformed if known is not None and not rescanned else 0
    state = FileState(
        path=path, source=source, dev=st.st_dev, ino=st.st_ino, size=st.st_size,
        mtime_ns=st.st_mtime_ns, head_len=head_len, head_crc=head_crc, offset=end,
        malformed=previous_malformed + malformed, state=parser_state,
    )
    return FileScan(state, records, rescanned, st.st_size - start)


def unchanged(known: FileState | None, st: os.stat_result) -> bool:
    return known is not None and (known.dev, known.ino, known.size, known.mtime_ns) == (
        st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
