"""Chooses the compiled scanner or its pure twin.

TOKLINE_PURE=1 forces the twin.  TOKLINE_STRICT_BUILD=1 turns a missing extension into
an error, so CI cannot pass on the twin by accident.
"""

from __future__ import annotations

import os

from tokline.engine.records import ScanFn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

USE_EXTENSIONS = os.environ.get("TOKLINE_PURE", "") not in ("1", "true", "yes")

scan: ScanFn
parse_iso_ms: Callable[[str], int | None]
# (buffer, start, end, needles) -> the Codex lines holding a needle, read or as bytes
# (tokline/sources/codex.py parse); None: the twin reads every such line itself
codex_events: Callable[[Any, int, int, tuple[bytes, ...]], list[Any]] | None = None
# (manifest bytes, start, end, path prefix) -> the entries' paths under it
manifest_names_under: Callable[[bytes, int, int, bytes], set[bytes]]
# (buffer, start) -> a Pending whose records() is what scan returns; None: the twin's scan
scan_deferred: Callable[[Any, int], Any] | None = None
if USE_EXTENSIONS:
    try:
        from tokline._scan import codex_events, manifest_names_under, scan, scan_deferred
        from tokline._scan import iso_ms as parse_iso_ms
    except ImportError:
        if os.environ.get("TOKLINE_STRICT_BUILD") == "1":
            raise
        from tokline.engine._claude_py import parse_iso_ms, scan
        from tokline.prompt.manifest import names_under as manifest_names_under

        USE_EXTENSIONS = False
else:
    from tokline.engine._claude_py import parse_iso_ms, scan
    from tokline.prompt.manifest import names_under as manifest_names_under

__all__ = ["USE_EXTENSIONS", "ScanFn", "codex_events", "manifest_names_under", "parse_iso_ms",
           "scan", "scan_deferred"]
