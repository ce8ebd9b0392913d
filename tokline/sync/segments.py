"""The exchange format: one device's usage rows in an append-only, compressed segment.

A segment is a gzip stream of JSON lines (README "Sync: the exchange format"):

1. a header object: ``{"format": "tokline-sync", "version": 1, "device": "<16 hex>",
   "name": "laptop", "seq": 7, "created_ms": ..., "columns": [...], "quota": [...]}``;
2. one JSON array per row, in the order of ``COLUMNS``;
3. a trailer object: ``{"end": <rows>, "sha256": "<hex of every byte before it>"}``.

A file that lacks its trailer, or whose gzip stream ends early, is incomplete (a sync
tool still copying it): skipped until it is whole.  One whose checksum, header or any row
is wrong is corrupt: reported with its reason and skipped; the other segments go on.
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


def encode(device: int, name: str, seq: int, created_ms: int, rows: Iterable[Sequence[Any]],
           quota: list[dict[str, Any]] | None = None) -> bytes:
    """A segment's bytes; ``rows`` in the order of COLUMNS (device as an integer)."""
    digest = hashlib.sha256()
    chunks: list[bytes] = []

    def put(obj: object) -> None:
        line = json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode() + b"\n"
        digest.update(line)
        chunks.append(line)

    put({"format": FORMAT, "version": VERSION, "device": to_hex(device),
         "name": clean_name(name), "seq": seq, "created_ms": created_ms,
         "columns": list(COLUMNS), "quota": quota or []})
    count = 0
    for row in rows:
        put([*row[:-1], to_hex(row[-1])])
        count += 1
    trailer = json.dumps({"end": count, "sha256": digest.hexdigest()},
                         separators=(",", ":")).encode() + b"\n"
    # mtime=0: the same rows make the same bytes
    return gzip.compress(b"".join(chunks) + trailer, compresslevel=6, mtime=0)


def _plain(data: bytes, max_plain: int = MAX_PLAIN) -> bytes:
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
           max_plain: int = MAX_PLAIN, max_rows: int | None = None) -> Segment:
    """Check and read a segment; SegmentError (Incomplete) with the reason otherwise.
    ``max_plain`` and ``max_rows``: tighter bounds (the team server's)."""
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
    devices: dict[object, int] = {}  # a segment's rows name a few devices, many times
    rows = []
    for number, cells in enumerate(parsed, start=2):
        try:
            rows.append(_row(cells, latest, devices))
        except (ValueError, TypeError) as exc:
            raise SegmentError(f"line {number}: {exc}") from None
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


# The checks below are written for speed (they run per row): ``type(x) is int`` is
# _int's "an int, not a bool" for what json.loads makes.
def _row(cells: object, latest: int, devices: dict[object, int]) -> Row:
    if type(cells) is not list or len(cells) != len(COLUMNS):
        raise ValueError(f"a row is a list of {len(COLUMNS)} values")
    (key, ts, source, session, project, model, inp, out, c5m, c1h, read, web, cost, flags,
     device_hex) = cells
    if type(key) is not int or not KEY_MIN <= key <= KEY_MAX:
        raise ValueError("key is not a 64-bit integer")
    if type(ts) is not int or not validate.TS_MIN_MS <= ts <= latest:
        raise ValueError(validate.R_TIME)
    for n in (inp, out, c5m, c1h, read, web):
        if type(n) is not int or not 0 <= n < validate.COUNT_LIMIT:
            raise ValueError(validate.R_COUNT)
    if cost is not None and (type(cost) not in (int, float) or not math.isfinite(cost)
                             or not 0 <= cost < validate.COST_LIMIT_USD):
        raise ValueError(validate.R_COST)
    if type(flags) is not int or not 0 <= flags <= FLAG_MASK:
        raise ValueError("flags out of range")
    device = devices.get(device_hex) if type(device_hex) is str else None
    if device is None:
        device = parse_hex(str(device_hex))
        if type(device_hex) is str:
            devices[device_hex] = device
    return Row(key, ts, _text(source, SOURCE_LIMIT, "source"),
               _text(session, TEXT_LIMIT, "session"), _text(project, TEXT_LIMIT, "project"),
               _text(model, TEXT_LIMIT, "model"), inp, out, c5m, c1h, read, web,
               None if cost is None else float(cost), flags, device)
