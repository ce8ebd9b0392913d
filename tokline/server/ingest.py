"""Pushes and pulls of sync segments (tokline/sync/segments.py) on the team server.

A push is checked whole before anything is stored (the segment's own checks, its name
against its header, size limits), outside any transaction; then it is kept, and the
push is answered: the person's other devices can pull it at once, as they would from a
directory.  Pushing the same segment again changes nothing; another with the same name
is refused (409).

Its rows are merged after, by the merger (tokline/server/merger.py calling
``merge_next``), in one transaction under the person's lock (PostgreSQL: their row, FOR
UPDATE; SQLite: the write lock, BEGIN IMMEDIATE): into the person's ``usage`` by the
ledger's rule (tokline/ledger/store.py: per-field maximum; time, session, model and
device from the copy with the larger total, on a tie from the lower device id; the
computed cost is that of the merged row, as the ledger's ``price_pending`` makes it),
and the ``daily`` sums and rollups of the days whose rows changed computed again.  Why
after: decoding a day's segment and merging 5,000 rows takes 100-200 ms, most of it in
PostgreSQL, and a device waiting for that gains nothing; the segment is as durable
before its merge as after, and the pages show it a fraction of a second later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, literal, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tokline.engine.records import F_SHADOWED, F_SIDECHAIN, SYNTHETIC
from tokline.server.accounts import User, now_ms
from tokline.server.db import TOKENS, daily, devices, monthly, segments, totals, usage, users
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
TEXTS = ("source", "session", "project", "model")
# Decoding is CPU-bound (the GIL runs one at a time anyway); bounding how many run at
# once bounds the memory that many large pushes at once can take.
_DECODING = threading.BoundedSemaphore(2)
_EPOCH = dt.date(1970, 1, 1)


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


def accept(conn: Connection, user: User, name: str, data: bytes, segment: fmt.Segment
           ) -> dict[str, Any]:
    """Keep a segment ``check`` passed, in ``conn``'s transaction (a writer's), for the
    merger to merge: once this commits the push is as safe as a merged one (a restart
    merges what is left), and the person's other devices can pull it already."""
    sha = hashlib.sha256(data).hexdigest()
    known = _known(conn, user.id, name)
    if known is None:
        stamp = now_ms()
        label = segment.name or to_hex(segment.device)
        try:
            # a savepoint: the same name pushed at the same moment by another request
            # is refused by the key, and this transaction goes on to say which it was
            with conn.begin_nested():
                conn.execute(insert(segments).values(
                    user_id=user.id, name=name, device=segment.device, sha256=sha,
                    rows=len(segment.rows), received_ms=stamp, data=data))
        except IntegrityError:
            known = _known(conn, user.id, name)
        else:
            conn.execute(_dialect_insert(conn)(devices)
                         .values(user_id=user.id, device=segment.device, name=label,
                                 last_push_ms=stamp)
                         .on_conflict_do_update(
                             index_elements=[devices.c.user_id, devices.c.device],
                             set_={"name": label, "last_push_ms": stamp}))
            return {"status": "stored", "rows": len(segment.rows)}
    if known == sha:
        return {"status": "unchanged", "rows": 0}
    raise PushError(409, f"segment {name} exists with other content (segments are "
                         "append-only)")


def _known(conn: Connection, user_id: int, name: str) -> str | None:
    """The SHA-256 of the user's segment of that name, if there is one."""
    return conn.execute(select(segments.c.sha256).where(
        segments.c.user_id == user_id, segments.c.name == name)).scalar()


# Segments of one person merged in one transaction at most: their rows are held in
# memory together (50 segments of 100,000 rows at most each, in practice a few thousand).
MERGE_BATCH = 50


def merge_next(conn: Connection, cost_of: CostFn) -> dict[str, Any] | None:
    """Merge the waiting segments of one person (the one waiting longest) in ``conn``'s
    transaction (a writer's): their rows into ``usage`` by the ledger's rule, the
    ``daily`` sums and rollups of the days that changed computed again; None when
    nothing waits.  On PostgreSQL several mergers (one per server process) share the
    queue: a segment one of them holds is skipped by the others, and the person's row,
    locked, keeps two of them off one person's rows."""
    postgres = conn.dialect.name == "postgresql"
    oldest = select(segments.c.user_id).where(segments.c.merged_ms.is_(None)) \
        .order_by(segments.c.received_ms).limit(1)
    first = conn.execute(oldest.with_for_update(skip_locked=True) if postgres else oldest
                         ).first()
    if first is None:
        return None
    user_id = first.user_id
    if postgres:
        conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())
    waiting = select(segments.c.name, segments.c.device, segments.c.data).where(
        segments.c.user_id == user_id, segments.c.merged_ms.is_(None)) \
        .order_by(segments.c.received_ms, segments.c.name).limit(MERGE_BATCH)
    found = conn.execute(waiting.with_for_update(skip_locked=True) if postgres else waiting
                         ).all()
    rows: list[fmt.Row] = []
    refused = []
    for name, device, data in found:
        try:  # checked when it was pushed; the limits may have changed since
            rows += fmt.decode(bytes(data), expect_device=device, max_plain=MAX_PLAIN,
                               max_rows=MAX_ROWS).rows
        except fmt.SegmentError as exc:
            refused.append(f"{name}: {exc}")
    changed, days = merge_rows(conn, user_id, rows, cost_of)
    refresh_daily(conn, user_id, days)
    conn.execute(update(segments).where(
        segments.c.user_id == user_id,
        segments.c.name.in_([name for name, _device, _data in found])
    ).values(merged_ms=now_ms()))
    return {"user_id": user_id, "segments": len(found), "rows": len(rows),
            "changed": changed, "days": len(days), "refused": refused}


def backlog(conn: Connection) -> int:
    """How many pushed segments wait for the merger."""
    return conn.execute(select(func.count()).select_from(segments).where(
        segments.c.merged_ms.is_(None))).scalar_one()


# a row as merge_rows handles it: key 0, ts_ms 1, day 2, texts 3-6, counts 7-12,
# cost_usd 13, cost_calc 14, flags 15, device 16
_COLUMNS = ("key", "ts_ms", "day", "source", "session", "project", "model", *TOKENS,
            "cost_usd", "cost_calc", "flags", "device")


def _merge(old: tuple[Any, ...], new: tuple[Any, ...]) -> tuple[Any, ...]:
    """The ledger's merge of two copies of one row (tuples in the order of _COLUMNS:
    key, ts_ms, day, 4 texts, 6 counts at 7-12, cost_usd 13, cost_calc 14 (left to the
    caller), flags 15, device 16)."""
    total_old = old[7] + old[8] + old[9] + old[10] + old[11]  # web searches are no tokens
    total_new = new[7] + new[8] + new[9] + new[10] + new[11]
    takes = total_new > total_old or (total_new == total_old and new[16] < old[16])
    winner = new if takes else old
    cost = old[13] if new[13] is None else new[13] if old[13] is None \
        else max(old[13], new[13])
    a, b = old[15], new[15]
    # sidechain only if every copy was one; the other bits accumulate
    flags = (a & b & F_SIDECHAIN) | ((a | b) & ~F_SIDECHAIN)
    return (old[0], winner[1], winner[2], winner[3], winner[4], winner[5], winner[6],
            max(old[7], new[7]), max(old[8], new[8]), max(old[9], new[9]),
            max(old[10], new[10]), max(old[11], new[11]), max(old[12], new[12]),
            cost, None, flags, winner[16])


def merge_rows(conn: Connection, user_id: int, rows: list[fmt.Row], cost_of: CostFn
               ) -> tuple[int, set[int]]:
    """Merge rows into ``usage`` (the caller holds the user's lock): (rows changed, the
    days, new and old, whose sums changed)."""
    if not rows:
        return 0, set()
    # the segment's own copies of a key first (a device writes each key once per
    # segment; a hand-made segment may not)
    folded: dict[int, tuple[Any, ...]] = {}
    for r in rows:
        new = (r.key, r.ts_ms, r.ts_ms // DAY_MS, r.source, r.session, r.project, r.model,
               r.input, r.output, r.cache_5m, r.cache_1h, r.cache_read, r.web_search,
               r.cost_usd, None, r.flags, r.device)
        before = folded.get(r.key)
        folded[r.key] = new if before is None else _merge(before, new)
    fresh = sorted(_priced(row, cost_of) for row in folded.values())  # one lock order
    postgres = conn.dialect.name == "postgresql"
    if postgres:  # staged whole; the stored copies come back by a join
        _stage(conn, user_id, fresh)
        stored = {row[0]: tuple(row) for row in conn.execute(_PG_STORED, {"user_id": user_id})}
    else:
        stored = {}
        for start in range(0, len(fresh), 1000):
            stored.update((row[0], tuple(row)) for row in conn.execute(
                select(*(usage.c[name] for name in _COLUMNS)).where(
                    usage.c.user_id == user_id,
                    usage.c.key.in_([row[0] for row in fresh[start:start + 1000]]))))
    days: set[int] = set()
    write = []
    for row in fresh:
        old = stored.get(row[0])
        if old is not None:
            row = _priced(_merge(old, row), cost_of)
            if _same(old, row):
                continue  # pushed before: nothing to write, no day to sum again
            days.add(old[2])
        days.add(row[2])
        write.append(row)
    if postgres:
        if stored and write:  # the staged copies of stored rows make way for the merges
            conn.exec_driver_sql("DELETE FROM incoming")
            _stage(conn, user_id, write)
        if write:
            conn.exec_driver_sql(_PG_UPSERT)
    elif write:
        stmt = _dialect_insert(conn)(usage)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[usage.c.user_id, usage.c.key],
            set_={name: stmt.excluded[name] for name in _COLUMNS[1:]}),
            [dict(zip(_COLUMNS, row, strict=True), user_id=user_id) for row in write])
    return len(write), days


def _priced(row: tuple[Any, ...], cost_of: CostFn) -> tuple[Any, ...]:
    """The row with the computed cost of its model and counts (as price_pending does)."""
    cost = cost_of(row[6], row[7], row[8], row[9], row[10], row[11], row[12], row[15])
    return (*row[:14], cost, *row[15:])


def _same(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    if old[:14] != new[:14] or old[15:] != new[15:]:
        return False
    a, b = old[14], new[14]  # cost_calc: a float back from the database may be a hair off
    return a == b or (a is not None and b is not None and abs(a - b) <= 1e-12 * max(a, b))


# PostgreSQL: the rows go to a temporary table of the connection's by a binary COPY, and
# from there into ``usage`` by one statement.  An executemany sent a statement per row
# (5,000 rows: ~600 ms); one JSON parameter cost its encoding and PostgreSQL's parsing
# (~200 ms); this, ~80 ms.  The table is emptied at every commit (and a rollback).
_STAGE_TYPES = ["int4", "int8", "int8", "int4", "text", "text", "text", "text",
                *["int8"] * len(TOKENS), "float8", "float8", "int4", "int8"]
_STAGE_CREATE = "CREATE TEMPORARY TABLE IF NOT EXISTS incoming (LIKE usage) ON COMMIT DELETE ROWS"
_STAGE_COPY = f"COPY incoming (user_id, {', '.join(_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_PG_STORED = text(f"SELECT {', '.join('u.' + name for name in _COLUMNS)} FROM usage u"
                  " JOIN incoming i ON i.user_id = u.user_id AND i.key = u.key"
                  " WHERE u.user_id = :user_id")
_PG_UPSERT = (f"INSERT INTO usage (user_id, {', '.join(_COLUMNS)})"
              f" SELECT user_id, {', '.join(_COLUMNS)} FROM incoming ORDER BY key"
              " ON CONFLICT (user_id, key) DO UPDATE SET "
              + ", ".join(f"{name} = EXCLUDED.{name}" for name in _COLUMNS[1:]))


def _stage(conn: Connection, user_id: int, rows: list[tuple[Any, ...]]) -> None:
    conn.exec_driver_sql(_STAGE_CREATE)
    raw = conn.connection.driver_connection  # psycopg's, in this same transaction
    assert raw is not None
    with raw.cursor().copy(_STAGE_COPY) as copy:
        copy.set_types(_STAGE_TYPES)
        for row in rows:
            copy.write_row((user_id, *row))


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
    refresh_rollups(conn, user_id, days)


ROLLED = (*TOKENS, "cost_usd", "requests", "unpriced")


def month_of(day: int) -> int:
    """The day (since 1970-01-01) of the first day of ``day``'s month."""
    return day - ((_EPOCH + dt.timedelta(days=day)).day - 1)


def refresh_rollups(conn: Connection, user_id: int, days: set[int]) -> None:
    """``monthly`` of the months of these days, and the user's ``totals``, from ``daily``."""
    if not days:
        return
    for month in sorted({month_of(day) for day in days}):
        following = month_of(month + 31)
        conn.execute(delete(monthly).where(monthly.c.user_id == user_id,
                                           monthly.c.month == month))
        conn.execute(insert(monthly).from_select(
            ["user_id", "month", "model", *ROLLED],
            select(daily.c.user_id, literal(month), daily.c.model,
                   *(func.sum(daily.c[name]) for name in ROLLED))
            .where(daily.c.user_id == user_id, daily.c.day >= month, daily.c.day < following)
            .group_by(daily.c.user_id, daily.c.model)))
    conn.execute(delete(totals).where(totals.c.user_id == user_id))
    conn.execute(insert(totals).from_select(
        ["user_id", "model", *ROLLED],
        select(monthly.c.user_id, monthly.c.model,
               *(func.sum(monthly.c[name]) for name in ROLLED))
        .where(monthly.c.user_id == user_id).group_by(monthly.c.user_id, monthly.c.model)))


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def segment_names(conn: Connection, user_id: int) -> list[str]:
    return [name for (name,) in conn.execute(
        select(segments.c.name).where(segments.c.user_id == user_id).order_by(segments.c.name))]


def segment_data(conn: Connection, user_id: int, name: str) -> bytes | None:
    row = conn.execute(select(segments.c.data).where(
        segments.c.user_id == user_id, segments.c.name == name)).first()
    return bytes(row.data) if row is not None else None
