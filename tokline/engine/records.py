"""The scanner's record layout, shared by the compiled scanner, its twin and the sources,
and the values its fields carry that the ledger, SQL included, and the reports test for.

    (line_offset, ts_ms, message_id, request_id, session_id, model, cwd,
     input, output, cache_5m, cache_1h, cache_read, web_search, cost_usd, flags)
"""

from __future__ import annotations

from collections.abc import Callable

Record = tuple[
    int, int, "str | None", "str | None", "str | None", "str | None", "str | None",
    int, int, int, int, int, int, "float | None", int,
]
ScanFn = Callable[..., "tuple[list[Record], int, int]"]

# ``flags`` bits (also usage.flags in the ledger).  The scanner sets the first three
# (ext/_claude_c.pyx declares the same values for the compiled one, held to these by the
# differential tests); the ledger adds its own.
F_SIDECHAIN = 1
F_FAST = 4
F_API_ERROR = 16
F_SHADOWED = 32  # a sidechain replay of a main-conversation response (formats.md §1.6 #3)

# The model of Claude Code's synthetic messages: never priced, never listed as a model.
SYNTHETIC = "<synthetic>"
