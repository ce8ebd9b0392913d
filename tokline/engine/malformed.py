"""Where a file's malformed lines are, for tokline doctor: a few examples, with line numbers.

The scanners only count malformed lines (the hot path stays a count).  When a refresh finds
new ones in a file, ``examples`` reads the scanned range again with the pure-Python
readers, which judge each line as the compiled ones do (tests/test_hostile_input.py), and
names the first few: ``path:line: malformed line skipped (reason)``.
"""

from __future__ import annotations

import mmap

from tokline.engine import validate

SHOWN = 3  # examples per file and refresh; the rest are counted
NEWLINES_CHUNK = 8 << 20


def examples(path: str, source: str, start: int, end: int, found: int) -> list[str]:
    """Problems naming up to SHOWN of the ``found`` malformed lines in [start, end)."""
    try:
        located = _locate(path, source, start, end)
    except (OSError, ValueError):
        located = []
    out = [f"{path}:{line}: malformed line skipped ({reason})" for line, reason in located]
    if found > len(out):
        more = found - len(out)
        out.append(f"{path}: {more} {'more ' if out else ''}malformed line"
                   f"{'s' if more != 1 else ''} skipped")
    return out


def _locate(path: str, source: str, start: int, end: int) -> list[tuple[int, str]]:
    if end <= start:
        return []
    latest = validate.latest_ms()
    with open(path, "rb") as fh:
        if source in ("claude", "codex"):
            with mmap.mmap(fh.fileno(), end, access=mmap.ACCESS_READ) as data:
                return _scan_lines(data, start, end, source, latest)
        if not path.endswith(".jsonl"):
            return []
        data_bytes = fh.read(end)
    return _document_lines(path, source, data_bytes[start:end], data_bytes.count(b"\n", 0, start))


def _scan_lines(data: mmap.mmap, start: int, end: int, source: str, latest: int
                ) -> list[tuple[int, str]]:
    if source == "claude":
        from tokline.engine._claude_py import _USAGE_TAIL, NEEDLE, decode_line  # noqa: PLC0415

        def problem(line: bytes, offset: int) -> str | None:
            found = decode_line(line, offset, latest)
            return found if isinstance(found, str) else None

        def candidate(hit: int) -> bool:
            return _USAGE_TAIL.match(data, hit + len(NEEDLE), end) is not None

        needles: tuple[bytes, ...] = (NEEDLE,)
    else:
        from tokline.sources import codex  # noqa: PLC0415

        def problem(line: bytes, offset: int) -> str | None:
            return codex.line_problem(line, latest)

        def candidate(hit: int) -> bool:
            return True

        needles = codex._NEEDLES
    out: list[tuple[int, str]] = []
    counted, line_no = 0, 1  # newlines before ``counted``; line number there
    pos = start
    while pos < end and len(out) < SHOWN:
        hits = [h for h in (data.find(n, pos, end) for n in needles) if h >= 0]
        if not hits:
            break
        hit = min(hits)
        line_start = data.rfind(b"\n", start, hit) + 1 or start
        line_end = data.find(b"\n", hit, end)
        line_end = end if line_end < 0 else line_end
        pos = line_end + 1
        if not candidate(hit):
            pos = hit + 1
            continue
        reason = problem(data[line_start:line_end], line_start)
        if reason is not None:
            line_no += _newlines(data, counted, line_start)
            counted = line_start
            out.append((line_no, reason))
    return out


def _newlines(data: mmap.mmap, a: int, b: int) -> int:
    total = 0
    while a < b:
        step = min(b, a + NEWLINES_CHUNK)
        total += data[a:step].count(b"\n")
        a = step
    return total


def _document_lines(path: str, source: str, data: bytes, before: int) -> list[tuple[int, str]]:
    from tokline.engine.refresh import DOCUMENT_SOURCES  # noqa: PLC0415

    module = next((m for m in DOCUMENT_SOURCES if source == m.NAME), None)
    if module is None or not hasattr(module, "parse"):
        return []
    out: list[tuple[int, str]] = []
    for number, line in enumerate(data.split(b"\n"), start=before + 1):
        if line.strip() and module.parse(path, line)[1]:
            out.append((number, "not JSON or out of range"))
            if len(out) == SHOWN:
                break
    return out


__all__ = ["SHOWN", "examples"]
