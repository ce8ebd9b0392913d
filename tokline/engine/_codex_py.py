"""Pure-Python twin of the compiled Codex reader's line finding (ext/_codex_c.pyx).

``candidate_lines(data, start, end, needles)`` returns what the compiled
``candidate_lines`` returns.  The compiled module's ``codex_events`` also reads the
plain lines itself; without it, tokline/sources/codex.py ``parse`` decodes every line
this finds (tests/test_scan_differential.py holds the two readings to the same events).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["candidate_lines"]


def candidate_lines(data: Any, start: int, end: int, needles: tuple[bytes, ...]
                    ) -> list[bytes]:
    """The lines in data[start:end] (complete lines) that hold any of ``needles``, in file
    order, each once, found with bytes.find: most of a rollout (messages, tool output) is
    never split."""
    starts: set[int] = set()
    for needle in needles:
        pos = data.find(needle, start, end)
        while pos >= 0:
            line_start = data.rfind(b"\n", start, pos) + 1 or start
            starts.add(max(line_start, start))
            line_end = data.find(b"\n", pos, end)
            pos = data.find(needle, line_end, end) if line_end >= 0 else -1
    lines = []
    for line_start in sorted(starts):
        line_end = data.find(b"\n", line_start, end)
        lines.append(data[line_start:line_end if line_end >= 0 else end])
    return lines
