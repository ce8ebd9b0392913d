"""The exchange format: one device's usage rows in an append-only, compressed segment.

A segment is a gzip stream of JSON lines (README "Sync: the exchange format"):

1. a header object: ``{"format": "tokline-sync", "version": 1, "device": "<16 hex>",
   "name": "laptop", "seq": 7, "created_ms": ..., "columns": [...], "quota": [...]}``;
2. one JSON array per row and line, in the order of ``COLUMNS`` (the device as 16 hex
   digits);
3. a trailer object: ``{"end": <rows>, "sha256": "<hex of every byte before it>"}``.

A file whose gzip stream ends early, or ends after a row or the header (no trailer yet),
is incomplete (a sync tool still copying it): skipped until it is whole.  One whose
checksum, header, trailer or any row is wrong is corrupt: reported with its reason and
skipped; the other segments go on.
Rows are checked against the bounds of tokline/engine/validate.py, as log lines are.

Names: ``<device hex>/seg-<seq, 8 digits>.tlseg``; each device writes only under its own
directory, so no two devices ever write one file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import zlib
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from tokline.engine import validate
from tokline.sync.device import NAME_LIMIT, clean_name, parse_hex, to_hex

FORMAT = "tokline-sync"
VERSION = 1
SUFFIX = ".tlseg"
COLUMNS = ("key", "ts_ms", "source", "session", "project", "model", "input", "output",
           "cache_5m", "cache_1h", "cache_read", "web_search", "cost_usd", "flags", "device")
MAX_COMPRESSED = 64 << 20  # bytes of one segment file
MAX_PLAIN = 512 << 20  # bytes once decompressed: a bomb stops here
TEXT_LIMIT = 1024  # characters of a session, project or model
SOURCE_LIMIT = 32
FLAG_MASK = 0xFFFF  # bits a row may carry (tokline/engine/records.py F_*)
KEY_MIN, KEY_MAX = -(1 << 63), (1 << 63) - 1


class SegmentError(ValueError):
    """A segment that cannot be imported; the message is the one-line reason."""


class Incomplete(SegmentError):
    """A segment still being written or copied: try again at the next sync."""


class Row(NamedTuple):
    key: int
    ts_ms: int
    source: str
    session: str
    project: str
    model: str
    input: int
    output: int
    cache_5m: int
    cache_1h: int
    cache_read: int
    web_search: int
    cost_usd: float | None
    flags: int
    device: int


class Segment(NamedTuple):
    device: int
    name: str
    seq: int
    created_ms: int
    rows: list[Row]
    quota: list[dict[str, Any]]


def file_name(device: int, seq: int) -> str:
    return f"{to_hex(device)}/seg-{seq:08d}{SUFFIX}"


def parse_name(name: str) -> tuple[int, int] | None:
    """(device, seq) of a segment's name, None for any other file (or a path trick)."""
    parts = name.split("/")
    if len(parts) != 2 or not parts[1].startswith("seg-") or not parts[1].endswith(SUFFIX):
        return None
    digits = parts[1][4:-len(SUFFIX)]
    if len(digits) != 8 or not digits.isascii() or not digits.isdigit():
        return None
    try:
        return parse_hex(parts[0]), int(digits)
    except ValueError:
        return None


_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def encode(device: int, name: str, seq: int, created_ms: int, rows: Iterable[Sequence[Any]],
           quota: list[dict[str, Any]] | None = None) -> bytes:
    """A segment's bytes; ``rows`` in the order of COLUMNS (device as an integer)."""
    lines = [_DUMPS({"format": FORMAT, "version": VERSION, "device": to_hex(device),
                     "name": clean_name(name), "seq": seq, "created_ms": created_ms,
                     "columns": list(COLUMNS), "quota": quota or []})]
    # A year is 100,000 rows: each is put together from its numbers and the JSON of its
    # texts (a few contexts' worth, each encoded once), not by json.dumps row by row,
    # which took most of an export.  The same text as json.dumps would write.
    texts: dict[str, str] = {}
    devices: dict[int, str] = {}
    for row in rows:
        (key, ts, source, session, project, model, inp, out, c5m, c1h, read, web, cost,
         flags, owner) = row
        if not (type(key) is type(ts) is type(inp) is type(out) is type(c5m) is type(c1h)
                is type(read) is type(web) is type(flags) is type(owner) is int
                and (cost is None or (type(cost) is float and math.isfinite(cost)))):
            lines.append(_DUMPS([*row[:-1], to_hex(owner)]))  # an odd value: the slow way
            continue
        cells = []
        for text in (source, session, project, model):
            encoded = texts.get(text)
            if encoded is None:
                encoded = texts[text] = _DUMPS(text)
            cells.append(encoded)
        hexed = devices.get(owner)
        if hexed is None:
            hexed = devices[owner] = to_hex(owner)
        lines.append(f'[{key},{ts},{cells[0]},{cells[1]},{cells[2]},{cells[3]},{inp},{out},'
                     f'{c5m},{c1h},{read},{web},{"null" if cost is None else repr(cost)},'
                     f'{flags},"{hexed}"]')
    body = ("\n".join(lines) + "\n").encode()
    trailer = _DUMPS({"end": len(lines) - 1, "sha256": hashlib.sha256(body).hexdigest()})
    # mtime=0: the same rows make the same bytes.  Level 1: a sixth of level 6's time for
    # a tenth more bytes (rows are mostly digits, keys are random).
    return gzip.compress(body + trailer.encode() + b"\n", compresslevel=1, mtime=0)


def _plain(data: bytes, max_plain: int | None = None) -> bytes:
    if max_plain is None:  # read now, not when defined: a test makes it small
        max_plain = MAX_PLAIN
    if len(data) > MAX_COMPRESSED:
        raise SegmentError(f"larger than {MAX_COMPRESSED >> 20} MiB")
    out = bytearray()
    rest = data
    while rest:  # gzip members, concatenated
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflate.decompress(rest, max_plain + 1 - len(out))
        except zlib.error as exc:
            raise SegmentError(f"not a gzip stream ({exc})") from None
        if len(out) > max_plain or inflate.unconsumed_tail:
            raise SegmentError(f"more than {max_plain >> 20} MiB once decompressed")
        if not inflate.eof:
            raise Incomplete("its gzip stream ends early (still being copied?)")
        rest = inflate.unused_data
    return bytes(out)


def decode(data: bytes, expect_device: int | None = None, latest_ms: int | None = None,
           max_plain: int | None = None, max_rows: int | None = None) -> Segment:
    """Check and read a segment; SegmentError (Incomplete) with the reason otherwise.
    ``max_plain`` and ``max_rows``: tighter bounds (the team server's; None: MAX_PLAIN
    bytes, any number of rows)."""
    text = _plain(data, max_plain)
    if not text.endswith(b"\n"):
        raise Incomplete("its last line is not complete (still being copied?)")
    body_end = text.rfind(b"\n", 0, len(text) - 1) + 1
    try:
        trailer = json.loads(text[body_end:])
    except (ValueError, RecursionError):  # nesting too deep for the parser is no trailer
        raise SegmentError("its trailer (the last line) is not JSON") from None
    if isinstance(trailer, list) or (isinstance(trailer, dict) and "format" in trailer):
        # a row or the header last: the rest has not come yet (gzip members end there)
        raise Incomplete("no trailer (still being written or copied?)")
    if not isinstance(trailer, dict) or "end" not in trailer:
        raise SegmentError("no trailer")
    body = text[:body_end]
    if trailer.get("sha256") != hashlib.sha256(body).hexdigest():
        raise SegmentError("checksum mismatch")
    lines = body.split(b"\n")[:-1]
    if not lines:
        raise SegmentError("no header")
    head = _header(lines[0], expect_device)
    if trailer["end"] != len(lines) - 1:
        raise SegmentError(f"trailer says {trailer['end']!r} rows, it holds {len(lines) - 1}")
    if max_rows is not None and len(lines) - 1 > max_rows:
        raise SegmentError(f"more than {max_rows:,} rows")
    latest = validate.latest_ms() if latest_ms is None else latest_ms
    return Segment(head[0], head[1], head[2], head[3], _rows(lines[1:], latest), head[4])


def _rows(lines: list[bytes], latest: int) -> list[Row]:
    """Every row line, each checked against the bounds; SegmentError naming the first bad
    line.  The checks are inlined for a year's 100,000 rows (an import, a server's push);
    texts and device ids, repeated on most rows, are checked once each."""
    # One parse of every line at once is several times faster than one per line (a
    # server takes pushes of thousands of rows); when it fails, or a line held more or
    # less than one value, the lines are parsed one by one to say which is wrong.
    try:
        parsed = json.loads(b"[" + b",".join(lines) + b"]") if lines else []
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, list) or len(parsed) != len(lines):
        parsed = []
        for number, line in enumerate(lines, start=2):
            try:
                parsed.append(json.loads(line))
            except (ValueError, RecursionError) as exc:
                raise SegmentError(f"line {number}: {exc}") from None
    rows: list[Row] = []
    good_texts: set[str] = set()
    good_sources: set[str] = set()
    devices: dict[str, int] = {}
    new_row = tuple.__new__  # what Row._make calls, without the call around it
    key_min, key_max, ts_min = KEY_MIN, KEY_MAX, validate.TS_MIN_MS
    limit, cost_limit = validate.COUNT_LIMIT, validate.COST_LIMIT_USD
    for number, cells in enumerate(parsed, start=2):
        try:
            if type(cells) is not list or len(cells) != 15:
                raise ValueError(f"a row is a list of {len(COLUMNS)} values")
            (key, ts, source, session, project, model, inp, out, c5m, c1h, read, web, cost,
             flags, owner) = cells
            # ``type(x) is int``: an int and not a bool, for what json.loads makes
            if type(key) is not int or not key_min <= key <= key_max:
                raise ValueError("key is not a 64-bit integer")
            if type(ts) is not int or not ts_min <= ts <= latest:
                raise ValueError(validate.R_TIME)
            if not (type(inp) is type(out) is type(c5m) is type(c1h) is type(read)
                    is type(web) is int and 0 <= inp < limit and 0 <= out < limit
                    and 0 <= c5m < limit and 0 <= c1h < limit and 0 <= read < limit
                    and 0 <= web < limit):
                raise ValueError(validate.R_COUNT)
            if cost is not None:  # a range check that NaN and infinities fail too
                if (type(cost) is not float and type(cost) is not int) \
                        or not 0 <= cost < cost_limit:
                    raise ValueError(validate.R_COST)
                cost = float(cost)
            if type(flags) is not int or not 0 <= flags <= FLAG_MASK:
                raise ValueError("flags out of range")
            if type(owner) is not str:
                raise ValueError("device is not a text of 16 hex digits")
            device = devices.get(owner)
            if device is None:
                device = devices[owner] = parse_hex(owner)
            if type(source) is not str or source not in good_sources:
                good_sources.add(_text(source, SOURCE_LIMIT, "source"))
            if type(session) is not str or session not in good_texts:
                good_texts.add(_text(session, TEXT_LIMIT, "session"))
            if type(project) is not str or project not in good_texts:
                good_texts.add(_text(project, TEXT_LIMIT, "project"))
            if type(model) is not str or model not in good_texts:
                good_texts.add(_text(model, TEXT_LIMIT, "model"))
        except (ValueError, TypeError) as exc:
            raise SegmentError(f"line {number}: {exc}") from None
        rows.append(new_row(Row, (key, ts, source, session, project, model, inp, out, c5m,
                                  c1h, read, web, cost, flags, device)))
    return rows


def _header(line: bytes, expect_device: int | None
            ) -> tuple[int, str, int, int, list[dict[str, Any]]]:
    try:
        head = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise SegmentError("header is not JSON") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise SegmentError("not a tokline-sync segment")
    version = head.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SegmentError("no format version")
    if version > VERSION:
        raise SegmentError(f"format version {version} is newer than this tokline reads "
                           f"({VERSION}); upgrade tokline")
    if head.get("columns") != list(COLUMNS):
        raise SegmentError("unknown columns")
    try:
        device = parse_hex(str(head.get("device")))
    except ValueError as exc:
        raise SegmentError(str(exc)) from None
    if expect_device is not None and device != expect_device:
        raise SegmentError("header's device is not its directory's")
    name = head.get("name")
    seq, created = head.get("seq"), head.get("created_ms")
    if not isinstance(name, str) or len(name) > 4 * NAME_LIMIT:
        raise SegmentError("bad device name")
    if not isinstance(seq, int) or not _int(seq, 0, 10**8) \
            or not isinstance(created, int) or not _int(created, 0, 1 << 53):
        raise SegmentError("bad seq or created_ms")
    quota = head.get("quota")
    if not isinstance(quota, list) or len(quota) > 256:
        raise SegmentError("bad quota list")
    return device, clean_name(name), seq, created, [q for q in quota if isinstance(q, dict)]


def _int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < high


def _text(value: object, limit: int, what: str) -> str:
    if type(value) is not str or len(value) > limit:
        raise ValueError(f"{what} is not a text of at most {limit} characters")
    if "\x00" in value or "\x1f" in value:
        raise ValueError(f"{what} holds a control character")
    if not value.isascii():
        try:  # a lone surrogate (JSON "\ud800") is no text any database can store
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{what} is not valid Unicode") from None
    return value
