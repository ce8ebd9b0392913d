"""The sane ranges of what a log line may put in the ledger: the one definition of each bound.

A usage line whose timestamp, token counts or cost fall outside them is **malformed**:
skipped, counted in its file's malformed count (``files.malformed``), reported by
``tokline doctor`` with its line number, never stored.  Every source checks through
this module:

* Claude: the pure twin (tokline/engine/_claude_py.py) calls ``count``, ``cost`` and
  ``timestamp_ok``; the compiled scanner (ext/_claude_c.pyx) holds the same bounds as C
  constants, exported as its ``LIMITS`` and held equal to ``LIMITS`` here by
  tests/test_hostile_input.py; the latest valid time reaches both as an argument
  (``latest_ms()`` when none is given).
* Codex (tokline/sources/codex.py), Gemini, OpenCode, Copilot (tokline/sources/documents.py
  ``count`` and ``Usage``): through the functions here.
* Rows already stored by an older tokline: the ledger migration ``m006_quarantine``
  (tokline/ledger/schema.py) moves the ones outside these bounds into ``quarantine``,
  using ``row_problem_sql``.

Bounds:

* timestamps: from ``TS_MIN_MS`` (2000-01-01T00:00:00Z) to ``latest_ms()``, both
  included: now + ``FUTURE_MS`` (one day), or the epoch milliseconds in the environment
  variable ``TOKLINE_LATEST_MS`` when it is set (for tests: a fixed upper bound);
* token counts (and server-tool request counts): JSON numbers with an integral value in
  ``[0, COUNT_LIMIT)`` (10**10 per request); ``null`` or absent reads as 0; anything
  else (negative, fractional, 1e309, text, true) is invalid;
* costs (``costUSD``, OpenCode ``cost``): finite numbers in ``[0, COST_LIMIT_USD)``;
  ``null`` or absent reads as no cost.
"""

from __future__ import annotations

import os
import time

from tokline.units import DAY_MS

TS_MIN_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
FUTURE_MS = DAY_MS  # how far past now a line's time may be (clocks drift, zones confuse)
COUNT_LIMIT = 10**10  # tokens (or requests) per request: a count must be below this
COST_LIMIT_USD = 1e4  # USD per request: a cost must be below this
LATEST_ENV = "TOKLINE_LATEST_MS"

# What ext/_claude_c.pyx must declare (tests/test_hostile_input.py compares them).
LIMITS = {"ts_min_ms": TS_MIN_MS, "count_limit": COUNT_LIMIT, "cost_limit": COST_LIMIT_USD}

BAD = -1  # what ``count`` returns for an invalid count (a valid one is never negative)

# Reasons, as doctor and the quarantine table show them
R_TIME = "timestamp out of range"
R_COUNT = "token count not an integer in [0, 10**10)"
R_COST = "cost not a finite number in [0, 10000)"


class Invalid(ValueError):
    """A value outside its sane range; the message is the reason."""


def latest_ms(now_ms: int | None = None) -> int:
    """The latest valid timestamp: ``TOKLINE_LATEST_MS`` if set, else now + one day."""
    fixed = os.environ.get(LATEST_ENV)
    if fixed:
        try:
            return int(fixed)
        except ValueError:
            pass
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    return now_ms + FUTURE_MS


def timestamp_ok(ts_ms: int | None, latest: int) -> bool:
    return ts_ms is not None and TS_MIN_MS <= ts_ms <= latest


def count(value: object) -> int:
    """A token count as a JSON decoder gives it: the int, 0 for None, BAD if invalid."""
    if type(value) is int:
        return value if 0 <= value < COUNT_LIMIT else BAD
    if value is None:
        return 0
    if type(value) is float:
        if value.is_integer() and 0 <= value < COUNT_LIMIT:
            return int(value)
        return BAD
    return BAD


def counts_ok(values: tuple[int, ...]) -> bool:
    """Integers already (a compiled reader's): all within ``[0, COUNT_LIMIT)``."""
    return min(values) >= 0 and max(values) < COUNT_LIMIT


def cost(value: object) -> float | None:
    """A cost: the float, None for None; raises Invalid otherwise."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            amount = float(value)
        except OverflowError:
            raise Invalid(R_COST) from None
        if 0 <= amount < COST_LIMIT_USD:  # NaN fails both
            return amount
    raise Invalid(R_COST)


def checked_count(value: object) -> int:
    """``count``, raising Invalid instead of returning BAD."""
    n = count(value)
    if n < 0:
        raise Invalid(R_COUNT)
    return n


def check_time(ts_ms: int | None, latest: int | None = None) -> int:
    """``ts_ms`` if it is in range (the upper bound ``latest_ms()`` unless given)."""
    if ts_ms is None or not TS_MIN_MS <= ts_ms <= (latest_ms() if latest is None else latest):
        raise Invalid(R_TIME)
    return ts_ms


def row_problem_sql(latest: int) -> tuple[str, tuple[object, ...]]:
    """A SQL expression over a ``usage`` row: NULL when the row is in range, else the
    reason; with its parameters (for the quarantine migration)."""
    counts = ("input", "output", "cache_5m", "cache_1h", "cache_read", "web_search")
    bad_count = " OR ".join(f"NOT ({c} >= 0 AND {c} < ?)" for c in counts)
    return (f"CASE WHEN NOT (ts_ms >= ? AND ts_ms <= ?) THEN ? "
            f"WHEN {bad_count} THEN ? "
            f"WHEN cost_usd IS NOT NULL AND NOT (cost_usd >= 0 AND cost_usd < ?) THEN ? "
            f"ELSE NULL END",
            (TS_MIN_MS, latest, R_TIME, *([COUNT_LIMIT] * len(counts)), R_COUNT,
             COST_LIMIT_USD, R_COST))
