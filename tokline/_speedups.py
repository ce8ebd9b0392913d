"""Chooses the compiled scanner or its pure twin.

TOKLINE_PURE=1 forces the twin.  TOKLINE_STRICT_BUILD=1 turns a missing extension into
an error, so CI cannot pass on the twin by accident.
"""

from __future__ import annotations

import os

from tokline.records import ScanFn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

USE_EXTENSIONS = os.environ.get("TOKLINE_PURE", "") not in ("1", "true", "yes")

scan: ScanFn
parse_iso_ms: Callable[[str], int | None]
# (buffer, start, end, needles) -> the lines holding a needle; None: use the twin's
candidate_lines: Callable[[Any, int, int, tuple[bytes, ...]], list[bytes]] | None = None
if USE_EXTENSIONS:
    try:
        from tokline._scan import candidate_lines, scan
        from tokline._scan import iso_ms as parse_iso_ms
    except ImportError:
        if os.environ.get("TOKLINE_STRICT_BUILD") == "1":
            raise
        from tokline._scan_py import parse_iso_ms, scan

        USE_EXTENSIONS = False
else:
    from tokline._scan_py import parse_iso_ms, scan

__all__ = ["USE_EXTENSIONS", "ScanFn", "candidate_lines", "parse_iso_ms", "scan"]
