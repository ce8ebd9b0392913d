"""Pushes and pulls of sync segments (tokline/sync/segments.py) on the team server.

A push is checked whole before anything is stored (the segment's own checks, its name
against its header, size limits), outside any transaction; then, in one transaction
under the user's lock (PostgreSQL: the user's row, FOR UPDATE; SQLite: the write lock,
BEGIN IMMEDIATE), its rows merge into the user's ``usage`` by the ledger's rule
(tokline/ledger/store.py: per-field maximum; time, session, model and device from the
copy with the larger total, on a tie from the lower device id; the computed cost is that
of the merged row, as the ledger's ``price_pending`` makes it), the ``daily`` sums of the
days whose rows changed are computed again from ``usage``, and the segment itself is
kept, so the person's other devices pull it as they would from a directory.  Pushing
the same segment again changes nothing; another with the same name is refused (409).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select
from sqlalchemy.engine import Connection

from tokline.engine.records import F_SHADOWED, F_SIDECHAIN, SYNTHETIC
from tokline.server.accounts import User, now_ms
from tokline.server.db import daily, devices, segments, usage, users
from tokline.sync import segments as fmt
from tokline.sync.device import to_hex
from tokline.units import DAY_MS

CostFn = Callable[[str, int, int, int, int, int, int, int], "float | None"]
# A device writes segments of at most 50,000 rows (tokline/sync/exchange.py), a few MiB
# compressed; the server takes twice that many rows and far more bytes, but not the
# directory format's 64 MiB / 512 MiB: a push is held in memory whole.
MAX_PUSH = 32 << 20  # bytes of one pushed segment
MAX_PLAIN = 256 << 20  # bytes once decompressed
MAX_ROWS = 100_000
TOKENS = ("input", "output", "cache_5m", "cache_1h", "cache_read", "web_search")
TEXTS = ("source", "session", "project", "model")
# Decoding is CPU-bound (the GIL runs one at a time anyway); bounding how many run at
# once bounds the memory that many large pushes at once can take.
_DECODING = threading.BoundedSemaphore(2)


class PushError(ValueError):
    """A refused push: ``status`` is the HTTP status, the message the one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _dialect_insert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as lite_insert  # noqa: PLC0415

    return lite_insert


def check(name: str, data: bytes) -> fmt.Segment:
    """The segment ``data`` pushed as ``name``, checked whole; PushError when refused."""
    parsed = fmt.parse_name(name)
    if parsed is None:
        raise PushError(400, "not a segment name (<16 hex digits>/seg-<8 digits>.tlseg)")
    if len(data) > MAX_PUSH:
        raise PushError(413, f"a segment is at most {MAX_PUSH >> 20} MiB")
    with _DECODING:
        try:
            segment = fmt.decode(data, expect_device=parsed[0], max_plain=MAX_PLAIN,
                                 max_rows=MAX_ROWS)
        except fmt.SegmentError as exc:
            raise PushError(400, f"segment refused: {exc}") from None
    if segment.seq != parsed[1]:
        raise PushError(400, "segment refused: its header's seq is not its name's")
    return segment


def push(conn: Connection, user: User, name: str, data: bytes, cost_of: CostFn
         ) -> dict[str, Any]:
    """Store one segment of ``user``'s; PushError when it is refused."""
    return store(conn, user, name, data, check(name, data), cost_of)


def store(conn: Connection, user: User, name: str, data: bytes, segment: fmt.Segment,
          cost_of: CostFn) -> dict[str, Any]:
    """Store a segment ``check`` passed, in ``conn``'s transaction (a writer's)."""
    sha = hashlib.sha256(data).hexdigest()
    # one push of a user at a time (concurrent ones of one person wait; people don't)
    if conn.dialect.name == "postgresql":
        conn.execute(select(users.c.id).where(users.c.id == user.id).with_for_update())
    known = conn.execute(select(segments.c.sha256).where(
        segments.c.user_id == user.id, segments.c.name == name)).first()
    if known is not None:
        if known.sha256 == sha:
            return {"status": "unchanged", "rows": 0}
        raise PushError(409, f"segment {name} exists with other content (segments are "
                             "append-only)")
    changed, days = merge_rows(conn, user.id, segment.rows, cost_of)
    refresh_daily(conn, user.id, days)
    stamp = now_ms()
    label = segment.name or to_hex(segment.device)
    conn.execute(_dialect_insert(conn)(devices)
                 .values(user_id=user.id, device=segment.device, name=label,
                         last_push_ms=stamp)
                 .on_conflict_do_update(index_elements=[devices.c.user_id, devices.c.device],
                                        set_={"name": label, "last_push_ms": stamp}))
    conn.execute(insert(segments).values(user_id=user.id, name=name, device=segment.device,
                                         sha256=sha, rows=len(segment.rows),
                                         received_ms=stamp, data=data))
    return {"status": "stored", "rows": len(segment.rows), "changed": changed}


_COLUMNS = ("key", "ts_ms", "day", "source", "session", "project", "model", *TOKENS,
            "cost_usd", "cost_calc", "flags", "device")
_KEEP = {name: i for i, name in enumerate(_COLUMNS)}


def _merge(old: tuple[Any, ...], new: tuple[Any, ...]) -> tuple[Any, ...]:
    """The ledger's merge of two copies of one row (tuples in the order of _COLUMNS,
    cost_calc left to the caller)."""
    k = _KEEP
    total_old = sum(old[k[n]] for n in TOKENS[:5])
    total_new = sum(new[k[n]] for n in TOKENS[:5])
    takes = total_new > total_old or (total_new == total_old
                                      and new[k["device"]] < old[k["device"]])
    winner = new if takes else old
    costs = [c for c in (old[k["cost_usd"]], new[k["cost_usd"]]) if c is not None]
    a, b = old[k["flags"]], new[k["flags"]]
    # sidechain only if every copy was one; the other bits accumulate
    flags = (a & b & F_SIDECHAIN) | ((a | b) & ~F_SIDECHAIN)
    return (old[0], winner[1], winner[2], *winner[3:7],
            *(max(old[k[n]], new[k[n]]) for n in TOKENS),
            max(costs) if costs else None, None, flags, winner[k["device"]])


def merge_rows(conn: Connection, user_id: int, rows: list[fmt.Row], cost_of: CostFn
               ) -> tuple[int, set[int]]:
    """Merge rows into ``usage`` (the caller holds the user's lock): (rows changed, the
    days, new and old, whose sums changed)."""
    if not rows:
        return 0, set()
    keys = sorted({r.key for r in rows})
    stored: dict[int, tuple[Any, ...]] = {}
    for start in range(0, len(keys), 1000):
        stored.update((row[0], tuple(row)) for row in conn.execute(
            select(*(usage.c[name] for name in _COLUMNS)).where(
                usage.c.user_id == user_id, usage.c.key.in_(keys[start:start + 1000]))))
    merged: dict[int, tuple[Any, ...]] = {}
    for r in rows:
        new = (r.key, r.ts_ms, r.ts_ms // DAY_MS, r.source, r.session, r.project, r.model,
               r.input, r.output, r.cache_5m, r.cache_1h, r.cache_read, r.web_search,
               r.cost_usd, None, r.flags, r.device)
        before = merged.get(r.key) or stored.get(r.key)
        merged[r.key] = new if before is None else _merge(before, new)
    days: set[int] = set()
    values = []
    cost_at = _KEEP["cost_calc"]
    for key, row in merged.items():
        old = stored.get(key)
        cost = cost_of(row[6], row[7], row[8], row[9], row[10], row[11], row[12], row[15])
        row = (*row[:cost_at], cost, *row[cost_at + 1:])
        if old is not None and _same(old, row):
            continue  # pushed before: nothing to write, no day to sum again
        days.add(row[2])
        if old is not None:
            days.add(old[2])
        values.append(dict(zip(_COLUMNS, row, strict=True), user_id=user_id))
    if values:
        values.sort(key=lambda v: v["key"])  # one lock order: no deadlock between writers
        stmt = _dialect_insert(conn)(usage)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[usage.c.user_id, usage.c.key],
            set_={name: stmt.excluded[name] for name in _COLUMNS[1:]}), values)
    return len(values), days


def _same(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    cost_at = _KEEP["cost_calc"]
    if old[:cost_at] != new[:cost_at] or old[cost_at + 1:] != new[cost_at + 1:]:
        return False
    a, b = old[cost_at], new[cost_at]
    # a float that went through the database may come back a hair off
    return a == b or (a is not None and b is not None and abs(a - b) <= 1e-12 * max(a, b))


def refresh_daily(conn: Connection, user_id: int, days: set[int]) -> None:
    """Compute the ``daily`` sums of these days of the user's again from ``usage``."""
    for chunk in _chunks(sorted(days), 500):
        conn.execute(delete(daily).where(daily.c.user_id == user_id, daily.c.day.in_(chunk)))
        cost = func.coalesce(usage.c.cost_usd, usage.c.cost_calc)
        unpriced = case((and_(cost.is_(None), usage.c.model != SYNTHETIC), 1), else_=0)
        sums = select(
            usage.c.user_id, usage.c.day, usage.c.model, usage.c.source, usage.c.device,
            *(func.sum(usage.c[name]) for name in TOKENS),
            func.coalesce(func.sum(cost), 0.0), func.count(), func.sum(unpriced),
        ).where(usage.c.user_id == user_id, usage.c.day.in_(chunk),
                usage.c.flags.op("&")(F_SHADOWED) == 0
                ).group_by(usage.c.user_id, usage.c.day, usage.c.model, usage.c.source,
                           usage.c.device)
        conn.execute(insert(daily).from_select(
            ["user_id", "day", "model", "source", "device", *TOKENS, "cost_usd", "requests",
             "unpriced"], sums))


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def segment_names(conn: Connection, user_id: int) -> list[str]:
    return [name for (name,) in conn.execute(
        select(segments.c.name).where(segments.c.user_id == user_id).order_by(segments.c.name))]


def segment_data(conn: Connection, user_id: int, name: str) -> bytes | None:
    row = conn.execute(select(segments.c.data).where(
        segments.c.user_id == user_id, segments.c.name == name)).first()
    return bytes(row.data) if row is not None else None
