"""Pushes and pulls of sync segments (tokline/sync/segments.py) on the team server.

A push is checked whole before anything is stored (the segment's own checks, its name
against its header, size limits); then, in one transaction under the user's row lock,
its rows merge into the user's ``usage`` by the ledger's rule (tokline/ledger/store.py:
per-field maximum; time, session and device from the copy with the larger total, on a
tie from the lower device id), the ``daily`` sums of the days it touched are computed
again from ``usage``, and the segment itself is kept, so the person's other devices pull
it as they would from a directory.  Pushing the same segment again changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from tokline.engine.records import F_SHADOWED, SYNTHETIC
from tokline.server.accounts import User, now_ms
from tokline.server.db import daily, devices, segments, usage, users
from tokline.sync import segments as fmt
from tokline.sync.device import to_hex
from tokline.units import DAY_MS

CostFn = Callable[[str, int, int, int, int, int, int, int], "float | None"]
MAX_PUSH = fmt.MAX_COMPRESSED  # bytes of one pushed segment
TOKENS = ("input", "output", "cache_5m", "cache_1h", "cache_read", "web_search")


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


def _greatest(conn: Connection, a: Any, b: Any) -> ColumnElement[Any]:
    # SQLite's max() of two arguments is PostgreSQL's greatest()
    return func.greatest(a, b) if conn.dialect.name == "postgresql" else func.max(a, b)


def push(conn: Connection, user: User, name: str, data: bytes, cost_of: CostFn
         ) -> dict[str, Any]:
    """Store one segment of ``user``'s; PushError when it is refused."""
    parsed = fmt.parse_name(name)
    if parsed is None:
        raise PushError(400, "not a segment name (<16 hex digits>/seg-<8 digits>.tlseg)")
    if len(data) > MAX_PUSH:
        raise PushError(413, f"a segment is at most {MAX_PUSH >> 20} MiB")
    sha = hashlib.sha256(data).hexdigest()
    try:
        segment = fmt.decode(data, expect_device=parsed[0])
    except fmt.SegmentError as exc:
        raise PushError(400, f"segment refused: {exc}") from None
    if segment.seq != parsed[1]:
        raise PushError(400, "segment refused: its header's seq is not its name's")
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
    days = merge_rows(conn, user.id, segment.rows, cost_of)
    refresh_daily(conn, user.id, days)
    stamp = now_ms()
    ins = _dialect_insert(conn)
    conn.execute(ins(devices).values(user_id=user.id, device=segment.device,
                                     name=segment.name or to_hex(segment.device),
                                     last_push_ms=stamp)
                 .on_conflict_do_update(index_elements=[devices.c.user_id, devices.c.device],
                                        set_={"name": segment.name or to_hex(segment.device),
                                              "last_push_ms": stamp}))
    conn.execute(insert(segments).values(user_id=user.id, name=name, device=segment.device,
                                         sha256=sha, rows=len(segment.rows),
                                         received_ms=stamp, data=data))
    return {"status": "stored", "rows": len(segment.rows)}


def merge_rows(conn: Connection, user_id: int, rows: list[fmt.Row], cost_of: CostFn
               ) -> set[int]:
    """Merge rows into ``usage``; the days (new and old) whose sums changed."""
    if not rows:
        return set()
    ordered = sorted(rows, key=lambda r: r.key)  # one lock order: no deadlock between pushes
    days: set[int] = set()
    for start in range(0, len(ordered), 1000):
        keys = [r.key for r in ordered[start:start + 1000]]
        days.update(day for (day,) in conn.execute(select(usage.c.day).where(
            usage.c.user_id == user_id, usage.c.key.in_(keys))))
    values = []
    for r in ordered:
        day = r.ts_ms // DAY_MS
        days.add(day)
        values.append({
            "user_id": user_id, "key": r.key, "ts_ms": r.ts_ms, "day": day,
            "source": r.source, "session": r.session, "project": r.project, "model": r.model,
            "input": r.input, "output": r.output, "cache_5m": r.cache_5m,
            "cache_1h": r.cache_1h, "cache_read": r.cache_read, "web_search": r.web_search,
            "cost_usd": r.cost_usd, "flags": r.flags, "device": r.device,
            "cost_calc": cost_of(r.model, r.input, r.output, r.cache_5m, r.cache_1h,
                                 r.cache_read, r.web_search, r.flags)})
    stmt = _dialect_insert(conn)(usage)
    new = stmt.excluded
    total_new = new.input + new.output + new.cache_5m + new.cache_1h + new.cache_read
    total_old = (usage.c.input + usage.c.output + usage.c.cache_5m + usage.c.cache_1h
                 + usage.c.cache_read)
    takes = (total_new > total_old) | (and_(total_new == total_old, new.device < usage.c.device))
    merged: dict[str, Any] = {
        name: _greatest(conn, usage.c[name], new[name]) for name in TOKENS}
    # the computed cost goes with the copy whose time and model are kept (copies of one
    # response carry the same tokens but for a stream's earlier, smaller lines)
    merged.update({name: case((takes, new[name]), else_=usage.c[name])
                   for name in ("ts_ms", "day", "session", "project", "model", "source",
                                "device", "cost_calc")})
    merged["cost_usd"] = func.coalesce(_greatest(conn, usage.c.cost_usd, new.cost_usd),
                                       usage.c.cost_usd, new.cost_usd)
    # sidechain (bit 1) only if every copy was one; the other bits accumulate
    merged["flags"] = (usage.c.flags.op("&")(new.flags).op("&")(1)).op("|")(
        usage.c.flags.op("|")(new.flags).op("&")(~1 & 0xFFFF))
    conn.execute(stmt.on_conflict_do_update(index_elements=[usage.c.user_id, usage.c.key],
                                            set_=merged), values)
    return days


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
