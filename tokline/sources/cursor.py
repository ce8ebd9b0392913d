"""Cursor (the IDE): no local usage log (formats.md §10.1).  Its usage comes from cursor.com,
fetched by the background refresh (tokline/remote/cursor.py); this module turns what
cursor.com answers into ledger rows: the usage events of
``/api/dashboard/get-filtered-usage-events``, and the rows of the dashboard's CSV export.

Both count four **disjoint** buckets: uncached input, cache writes, cache reads, output
(the CSV's ``Input (w/ Cache Write)`` is the cache writes alone, ``Input (w/o Cache
Write)`` the uncached input: ``Total Tokens`` is the sum of the four).  The cost is
Cursor's own figure, in cents for an event (``tokenUsage.totalCents``, the list price;
``chargedCents`` when an event has no token details), in dollars or ``Included`` in the
CSV: Cursor's hosted models (``auto``, ``composer-*``) have no public price.

An event has no id, so its key is its content (time, model, the four counts) and its
place among events of the same content: fetching it again, or on another device, gives
the same key, and two equal events stay two.
"""

from __future__ import annotations

import os

from tokline.engine import validate
from tokline.engine.native import parse_iso_ms
from tokline.engine.validate import Invalid
from tokline.sources.documents import Usage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

NAME = "cursor"
# What `tokline doctor` says in place of log directories.
ORIGIN = ("no local logs: fetched from cursor.com by the background refresh "
          "(`tokline auth status` shows its login and last fetch)")
UNKNOWN_MODEL = "unknown"
# The CSV export's columns, by header name (their order differs between versions).
CSV_DATE, CSV_MODEL, CSV_COST = "Date", "Model", "Cost"
CSV_WRITE, CSV_INPUT = "Input (w/ Cache Write)", "Input (w/o Cache Write)"
CSV_READ, CSV_OUTPUT, CSV_TOTAL = "Cache Read", "Output Tokens", "Total Tokens"
CSV_COLUMNS = (CSV_DATE, CSV_WRITE, CSV_INPUT, CSV_READ, CSV_OUTPUT)  # needed; others optional


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    return []


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return []


def whole_number(value: object) -> int | None:
    """An integer from a JSON number or a numeric string ("1200", "1200.0"); None when
    absent or not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return value if isinstance(value, int) else None


def amount(value: object) -> float | None:
    """A finite, non-negative amount from a JSON number or a numeric string (``$``
    and thousands separators allowed); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        found = float(value.strip().lstrip("$").replace(",", "")) if isinstance(value, str) \
            else float(value)
    except (ValueError, OverflowError):
        return None
    return found if found - found == 0 and found >= 0 else None


def _tokens(value: object) -> int:
    """A token count (absent: 0); Invalid when it is not a whole number in bounds."""
    if value is None or value == "":
        return 0
    found = whole_number(value)
    if found is None:
        raise Invalid(validate.R_COUNT)
    return validate.checked_count(found)


def _time_ms(value: object) -> int:
    """Epoch milliseconds from a number or numeric string (the events), or an ISO-8601
    time, date-only meaning midnight UTC (the CSV)."""
    found = whole_number(value)
    if found is None and isinstance(value, str) and value.strip():
        text = value.strip()
        found = parse_iso_ms(text + "T00:00:00Z" if len(text) == 10 else text)
    if found is None:
        raise Invalid(validate.R_TIME)
    return validate.check_time(found)


def keyed(usages: Iterable[Usage]) -> dict[str, Usage]:
    """Each usage under its content key plus its place among usages of the same content."""
    out: dict[str, Usage] = {}
    seen: dict[str, int] = {}
    for u in usages:
        content = (f"{u.ts_ms}\x1f{u.model}\x1f{u.input}\x1f{u.output}\x1f{u.cache_write}"
                   f"\x1f{u.cache_read}")
        place = seen.get(content, 0)
        seen[content] = place + 1
        out[f"{content}\x1f{place}"] = u
    return out


def event_usage(event: Mapping[str, Any]) -> Usage | None:
    """One usage event as a row; None when it holds neither tokens nor a cost.  Raises
    Invalid for a time or count out of bounds."""
    ts = _time_ms(event.get("timestamp"))
    model = event.get("model")
    model = model.strip() if isinstance(model, str) and model.strip() else UNKNOWN_MODEL
    usage = event.get("tokenUsage")
    usage = usage if isinstance(usage, dict) else {}
    counts = (_tokens(usage.get("inputTokens")), _tokens(usage.get("outputTokens")),
              _tokens(usage.get("cacheWriteTokens")), _tokens(usage.get("cacheReadTokens")))
    cents = amount(usage.get("totalCents"))
    if cents is None and not any(counts):  # no token details: what the plan charged
        cents = amount(event.get("chargedCents"))
    if not any(counts) and not cents:
        return None
    return Usage(ts, "", "", model, counts[0], counts[1], counts[2], counts[3],
                 None if cents is None else cents / 100)


def events_usage(events: Iterable[Any]) -> tuple[dict[str, Usage], int]:
    """(rows by key, events left out as malformed) of a complete, reconciled list of
    usage events (tokline/remote/cursor.py): keys count places over the whole list."""
    usages: list[Usage] = []
    malformed = 0
    for event in events:
        try:
            found = event_usage(event) if isinstance(event, dict) else None
        except Invalid:
            malformed += 1
            continue
        if found is not None:
            usages.append(found)
    return keyed(usages), malformed


def parse_csv(text: str) -> tuple[dict[str, Usage], int]:
    """(rows by key, rows left out as malformed) of the dashboard's CSV export, any of
    its header versions (columns found by name).  A row whose ``Total Tokens`` is not the
    sum of its four columns is malformed: the columns would not mean what they say."""
    import csv  # noqa: PLC0415 - only for an export

    reader = csv.DictReader(text.splitlines())
    if not set(CSV_COLUMNS) <= set(reader.fieldnames or ()):
        return {}, 0 if not text.strip() else 1
    usages: list[Usage] = []
    malformed = 0
    for row in reader:
        try:
            write, uncached = _tokens(row.get(CSV_WRITE)), _tokens(row.get(CSV_INPUT))
            read, output = _tokens(row.get(CSV_READ)), _tokens(row.get(CSV_OUTPUT))
            total = row.get(CSV_TOTAL)
            if total not in (None, "") and _tokens(total) != write + uncached + read + output:
                raise Invalid(validate.R_COUNT)
            model = (row.get(CSV_MODEL) or "").strip() or UNKNOWN_MODEL
            cost = amount(row.get(CSV_COST))  # "Included" (in the plan): no figure
            usages.append(Usage(_time_ms(row.get(CSV_DATE)), "", "", model, uncached,
                                output, write, read, cost))
        except Invalid:
            malformed += 1
    return keyed(usages), malformed


def state_db(env: Mapping[str, str] | None = None) -> str:
    """Cursor's global state database (its login): TOKLINE_CURSOR_STATE_DB, else
    ``~/Library/Application Support/Cursor/…`` on macOS, ``$XDG_CONFIG_HOME/Cursor/…``
    (default ``~/.config``) elsewhere."""
    env = os.environ if env is None else env
    given = env.get("TOKLINE_CURSOR_STATE_DB")
    if given:
        return os.path.expanduser(given)
    import sys  # noqa: PLC0415

    home = env.get("HOME") or os.path.expanduser("~")
    if sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return os.path.join(base, "Cursor", "User", "globalStorage", "state.vscdb")
