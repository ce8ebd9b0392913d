"""The scanner's record layout, shared by the compiled scanner, its twin and the sources.

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

F_SIDECHAIN = 1
F_FAST = 4
F_API_ERROR = 16
