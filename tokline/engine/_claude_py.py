"""Pure-Python twin of the compiled Claude scanner tokline.engine._claude_c (ext/_claude_c.pyx):
same signatures, same results.

``scan(buf, start, latest=None) -> (records, end, malformed)``

* ``buf`` is anything with ``find``/``rfind`` and slicing to bytes: an ``mmap`` or ``bytes``.
* ``records`` is a list of tuples, one per usage line, in file order::

      (line_offset, ts_ms, message_id, request_id, session_id, model, cwd,
       input, output, cache_5m, cache_1h, cache_read, web_search, cost_usd, flags)

  Strings are ``None`` when absent or empty.  Cache writes total
  ``cache_creation_input_tokens`` (or the split's sum, when larger); ``cache_1h`` is the
  split's 1-hour part and ``cache_5m`` the rest, so a split of zeros (what Claude Code
  writes when a gateway sends none) leaves every write at the 5-minute rate.  Token counts are
  integers in ``[0, 10**10)`` and ``cost_usd`` (the line's ``costUSD`` or ``None``) a
  finite number in ``[0, 10000)``: tokline/engine/validate.py owns those bounds, and a
  line outside them (or timed before 2000 or after ``latest``) is malformed.
  ``flags``: ``F_SIDECHAIN | F_FAST | F_API_ERROR``.
  Consecutive records of one response (same message id and request id, as a
  streamed message writes one line per content block) are merged into one by
  ``merge_pair``; the ledger applies the same rule across files and refreshes.
* ``end`` is the offset just past the last complete line; an incomplete last line is
  left for the next scan.
* ``malformed`` counts candidate lines that are not valid JSON, carry no valid
  timestamp, or fail validation (tokline/engine/validate.py; ``latest``, the latest
  valid time in epoch ms, defaults to ``validate.latest_ms()``).

A candidate line contains ``"usage"`` followed by optional blanks, ``:``, optional
blanks and ``{`` (Claude Code writes compact JSON; blanks admit re-serialised logs);
it counts when its top-level ``type`` is ``"assistant"`` (or absent, as in logs of
old builds) and its top-level ``message.usage`` is an object; ``progress`` lines that
embed a subagent's message therefore never count.
"""

from __future__ import annotations

import json
import re

from tokline.engine import validate
from tokline.engine.records import F_API_ERROR, F_FAST, F_SIDECHAIN, Record

__all__ = ["F_API_ERROR", "F_FAST", "F_SIDECHAIN", "Record", "decode_line", "decode_slow_line",
           "merge_pair", "parse_iso_ms", "scan"]

NEEDLE = b'"usage"'
_USAGE_TAIL = re.compile(rb"[ \t\r]*:[ \t\r]*\{")

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?",
    re.ASCII,
)


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_iso_ms(text: str) -> int | None:
    """Epoch milliseconds of ``YYYY-MM-DDTHH:MM:SS[.f…][Z|±HH:MM]`` (no zone = UTC)."""
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 59):
        return None
    fraction = m.group(7)
    ms = int((fraction[:3]).ljust(3, "0")) if fraction else 0
    zone = m.group(8)
    offset_min = 0
    if zone and zone != "Z":
        oh, om = int(zone[1:3]), int(zone[4:6])
        if oh > 23 or om > 59:
            return None
        offset_min = (oh * 60 + om) * (-1 if zone[0] == "-" else 1)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return (seconds - offset_min * 60) * 1000 + ms


def _reject_constant(name: str) -> None:
    raise ValueError(f"not JSON: {name}")


class _Bad(Exception):
    """A count or cost outside validate's bounds: the line is malformed."""


def _tokens(value: object) -> int:
    n = validate.count(value)
    if n < 0:
        raise _Bad(validate.R_COUNT)
    return n


def _text(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from \ud800-style escapes
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _cost(value: object) -> float | None:
    try:
        return validate.cost(value)
    except validate.Invalid as exc:
        raise _Bad(str(exc)) from None


def decode_slow_line(line: bytes, offset: int, latest: int | None = None
                     ) -> Record | bool | None:
    """Parse one candidate line with json.loads: a record, None (not usage) or False (malformed)."""
    found = decode_line(line, offset, validate.latest_ms() if latest is None else latest)
    return False if isinstance(found, str) else found


def decode_line(line: bytes, offset: int, latest: int) -> Record | str | None:
    """A candidate line: its record, None (not usage) or why it is malformed."""
    try:
        return _decode(line, offset, latest)
    except _Bad as exc:
        return str(exc)


def _decode(line: bytes, offset: int, latest: int) -> Record | str | None:
    try:
        obj = json.loads(line.decode("utf-8", "replace"), strict=False,
                         parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return "not JSON"
    if not isinstance(obj, dict) or obj.get("type", "assistant") not in ("assistant", None):
        return None
    message = obj.get("message")
    if not isinstance(message, dict):
        return None
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return None
    stamp = obj.get("timestamp")
    ts_ms = parse_iso_ms(stamp) if isinstance(stamp, str) else None
    if ts_ms is None:
        return "no valid timestamp"
    if not validate.timestamp_ok(ts_ms, latest):
        return validate.R_TIME
    split = usage.get("cache_creation")
    cache_total = _tokens(usage.get("cache_creation_input_tokens"))  # checked even if split
    if isinstance(split, dict):
        # The total is cache_creation_input_tokens; the split only says which part is
        # 1-hour (Claude Code writes a zero split when the server sent none).
        split_5m = _tokens(split.get("ephemeral_5m_input_tokens"))
        cache_1h = _tokens(split.get("ephemeral_1h_input_tokens"))
        cache_5m = max(cache_total, split_5m + cache_1h) - cache_1h
    else:
        cache_5m = cache_total
        cache_1h = 0
    tools = usage.get("server_tool_use")
    web_search = _tokens(tools.get("web_search_requests")) if isinstance(tools, dict) else 0
    flags = 0
    if obj.get("isSidechain") is True:
        flags |= F_SIDECHAIN
    if usage.get("speed") == "fast":
        flags |= F_FAST
    if obj.get("isApiErrorMessage") is True:
        flags |= F_API_ERROR
    return (
        offset, ts_ms, _text(message.get("id")), _text(obj.get("requestId")),
        _text(obj.get("sessionId")), _text(message.get("model")), _text(obj.get("cwd")),
        _tokens(usage.get("input_tokens")), _tokens(usage.get("output_tokens")),
        cache_5m, cache_1h, _tokens(usage.get("cache_read_input_tokens")), web_search,
        _cost(obj.get("costUSD")), flags,
    )


def merge_pair(a: Record, b: Record) -> Record:
    """Two copies of one response, ``a`` first: per-field maximum; time, session, model and
    cwd of the copy with the larger token total (the first on ties); a sidechain only if
    both are; other flags accumulate; the larger costUSD."""
    total_a = a[7] + a[8] + a[9] + a[10] + a[11]
    total_b = b[7] + b[8] + b[9] + b[10] + b[11]
    rep = b if total_b > total_a else a
    cost_a, cost_b = a[13], b[13]
    cost = cost_b if cost_a is None else (cost_a if cost_b is None or cost_a >= cost_b else cost_b)
    flags = ((a[14] & b[14]) & F_SIDECHAIN) | ((a[14] | b[14]) & ~F_SIDECHAIN)
    return (
        a[0], rep[1], a[2], a[3], rep[4], rep[5], rep[6],
        max(a[7], b[7]), max(a[8], b[8]), max(a[9], b[9]), max(a[10], b[10]),
        max(a[11], b[11]), max(a[12], b[12]), cost, flags,
    )


def _append_merged(records: list[Record], record: Record) -> None:
    if records and record[2] is not None and record[3] is not None:
        last = records[-1]
        if last[2] == record[2] and last[3] == record[3]:
            records[-1] = merge_pair(last, record)
            return
    records.append(record)


def scan(buf: bytes, start: int, latest: int | None = None
         ) -> tuple[list[Record], int, int]:
    """The twin of ``tokline.engine._claude_c.scan``; see the module docstring."""
    if latest is None:
        latest = validate.latest_ms()
    size = len(buf)
    if start < 0 or start > size:
        raise ValueError("start offset outside the buffer")
    end = buf.rfind(b"\n", start) + 1
    if end <= start:
        return [], start, 0
    records: list[Record] = []
    malformed = 0
    pos = start
    search = start  # where the needle is looked for; ``pos`` stays at a line's start
    while pos < end:
        hit = buf.find(NEEDLE, search, end)
        if hit < 0:
            break
        if not _USAGE_TAIL.match(buf, hit + len(NEEDLE), end):
            search = hit + 1  # e.g. a model named "usage": look further along
            continue
        line_end = buf.find(b"\n", hit, end)
        line_start = max(buf.rfind(b"\n", pos, hit) + 1, pos)
        pos = search = line_end + 1
        record = decode_line(buf[line_start:line_end], line_start, latest)
        if isinstance(record, str):
            malformed += 1
        elif record is not None:
            _append_merged(records, record)
    return records, end, malformed
