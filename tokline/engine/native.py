"""The engine's scanner functions, compiled or pure as tokline/prompt/native.py chooses.

TOKLINE_PURE=1 forces the twins.  TOKLINE_STRICT_BUILD=1 turns a missing compiled module
into an error, so CI cannot pass on the twins by accident.  ``USE_EXTENSIONS`` tells
whether the compiled Claude scanner is what runs (it releases the GIL, which is what
makes scanner threads pay).
"""

from __future__ import annotations

from tokline.engine.records import ScanFn
from tokline.prompt import native as switch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_claude = switch.load("claude")
USE_EXTENSIONS = switch.is_compiled(_claude)

scan: ScanFn = _claude.scan
parse_iso_ms: Callable[[str], int | None] = _claude.parse_iso_ms
# (buffer, start) -> a Pending whose records() is what scan returns; None: the twin's scan
scan_deferred: Callable[[Any, int], Any] | None = \
    _claude.scan_deferred if USE_EXTENSIONS else None
# (path, size, offset, head length, head CRC) -> (parts, start, end, malformed, head
# length, head CRC): a Claude log's new bytes scanned as scan_deferred scans them, the
# file opened, mapped and checksummed in C; None: tokline/engine/filescan.py does that
scan_path: Callable[..., Any] | None = _claude.scan_path if USE_EXTENSIONS else None

# (buffer, start, end, needles) -> the Codex lines holding a needle, as bytes
_codex = switch.load("codex")
codex_candidate_lines: Callable[[Any, int, int, tuple[bytes, ...]], list[bytes]] = \
    _codex.candidate_lines
# (buffer, start, end, needles) -> the Codex lines holding a needle, read or as bytes
# (tokline/sources/codex.py parse); None: the twin reads every such line itself, from
# codex_candidate_lines
codex_events: Callable[[Any, int, int, tuple[bytes, ...]], list[Any]] | None = \
    _codex.codex_events if switch.is_compiled(_codex) else None
# tokline/sources/codex.py parse of codex_events' items, without making them: (buffer,
# start, end, needles, file state, on_limits, latest, codex.py's line reader, snapshots
# kept) -> (events, malformed); None: parse does it
codex_read_events: Callable[..., tuple[list[Any], int]] | None = \
    _codex.read_events if switch.is_compiled(_codex) else None

# (manifest bytes, start, end, path prefix) -> the entries' paths under it
manifest_names_under: Callable[[bytes, int, int, bytes], set[bytes]] = \
    switch.load("manifest").names_under

__all__ = ["USE_EXTENSIONS", "ScanFn", "codex_candidate_lines", "codex_events", "codex_read_events",
           "manifest_names_under", "parse_iso_ms", "scan", "scan_deferred", "scan_path"]
