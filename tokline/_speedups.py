"""Chooses the compiled scanner or its pure twin.

TOKLINE_PURE=1 forces the twin.  TOKLINE_STRICT_BUILD=1 turns a missing extension into
an error, so CI cannot pass on the twin by accident.
"""

from __future__ import annotations

import os

from tokline.records import ScanFn

USE_EXTENSIONS = os.environ.get("TOKLINE_PURE", "") not in ("1", "true", "yes")

scan: ScanFn
if USE_EXTENSIONS:
    try:
        from tokline._scan import scan
    except ImportError:
        if os.environ.get("TOKLINE_STRICT_BUILD") == "1":
            raise
        from tokline._scan_py import scan

        USE_EXTENSIONS = False
else:
    from tokline._scan_py import scan

__all__ = ["USE_EXTENSIONS", "ScanFn", "scan"]
