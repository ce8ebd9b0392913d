"""The ledger: a SQLite database of scanned files and deduplicated usage rows.

Usage rows are keyed by a 64-bit hash of their dedup key (tokline/engine/keys.py).  Per file
it remembers identity (device, inode), size, mtime, a fingerprint of its
first bytes and the offset of the last complete line consumed, so a refresh reads
only new bytes.  Usage rows are keyed by their dedup key (formats.md §1.7) and
merged per field by maximum, so a streamed message seen again in a later refresh
or in another file updates its one row.  Rows stay after their log files vanish.

One refresh is one ``BEGIN IMMEDIATE`` transaction: a second process waits for the
write lock and then sees the offsets the first one committed, so nothing is
counted twice, and a crash rolls back to the last committed state.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress

from tokline.accounting import costmode
from tokline.engine.keys import group_range
from tokline.engine.records import F_SHADOWED, F_SIDECHAIN, SYNTHETIC
from tokline.errors import LedgerError
from tokline.ledger import _writer_py, faults, schema
from tokline.ledger.schema import (
    CHANGE_TRIGGER,
    CHANGES_KEPT,
    NO_CHANGE_MS,
    USAGE_INDEXES,
)
from tokline.prompt import native as switch
from tokline.units import QUARTER_MS

# Per-field maximum; timestamp, context and device follow the copy with the larger total
# (the final line of a streamed response), on ties the copy of the lower device id, then
# the first copy.  So the merge is the same whatever order copies arrive in, from this
# device's scan or from other devices' segments (tokline/sync), and every device makes
# the same row (tests/test_sync.py holds every device to it).  That needs copies of
# which one holds every count of the other, as copies of one response do (a streamed
# response's lines, replays, another device's copy): the comparison is with the merged
# row, whose total crossing copies (two responses under one key, a 2**-16 chance) would
# exceed, and their time and device could then depend on the order.  A row stays a
# sidechain only if every copy was one; the other flags accumulate.  ``synced`` is
# cleared: the merged row is this device's to export again.
_NEW_TOTAL = ("excluded.input + excluded.output + excluded.cache_5m + excluded.cache_1h"
              " + excluded.cache_read")
_OLD_TOTAL = "input + output + cache_5m + cache_1h + cache_read"
_TAKES = (f"{_NEW_TOTAL} > {_OLD_TOTAL} OR ({_NEW_TOTAL} = {_OLD_TOTAL}"
          " AND excluded.device < device)")
USAGE_COLUMNS = ("key, ts_ms, ctx, input, output, cache_5m, cache_1h, cache_read, web_search,"
                 " cost_usd, flags, cost_calc, priced")
_MERGE = f"""
ON CONFLICT(key) DO UPDATE SET
    priced = 0,
    ts_ms = CASE WHEN {_TAKES} THEN excluded.ts_ms ELSE ts_ms END,
    ctx = CASE WHEN {_TAKES} THEN excluded.ctx ELSE ctx END,
    device = CASE WHEN {_TAKES} THEN excluded.device ELSE device END,
    input = max(input, excluded.input),
    output = max(output, excluded.output),
    cache_5m = max(cache_5m, excluded.cache_5m),
    cache_1h = max(cache_1h, excluded.cache_1h),
    cache_read = max(cache_read, excluded.cache_read),
    web_search = max(web_search, excluded.web_search),
    cost_usd = coalesce(max(cost_usd, excluded.cost_usd), cost_usd, excluded.cost_usd),
    flags = ((flags & excluded.flags) & {F_SIDECHAIN}) | ((flags | excluded.flags) & ~{F_SIDECHAIN})
"""
# Rows of this device's scan: their device is the column's default, this ledger's id.
_UPSERT = f"INSERT INTO usage({USAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)" \
    + _MERGE + ", synced = 0"
# Rows of another device's segment: their own device, already exported (by that device);
# merged into a row this device must still export, that row stays to be exported.
IMPORT_UPSERT = (f"INSERT INTO usage({USAGE_COLUMNS}, device, synced)"
                 " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1,?,1)" + _MERGE)

_SYNTHETIC_SQL = "'" + SYNTHETIC.replace("'", "''") + "'"  # as an SQL string literal
KEY_GROUP_SPAN = 0xFFFF  # a key range's last key less its first (tokline/engine/keys.py)



def _filter(since_ms: int | None, until_ms: int | None, sources: Iterable[str] | None,
            by_context_id: bool, devices: Iterable[int] | None = None
            ) -> tuple[list[str], list[object]]:
    """WHERE terms and their arguments for counted rows in [since, until) of ``sources``
    (and of ``devices``, None: all): through a context-id subquery (the time index then
    drives the scan) or on a joined ``contexts c``."""
    where = [f"(u.flags & {F_SHADOWED}) = 0"]
    args: list[object] = []
    if devices is not None:
        chosen = [int(d) for d in devices]
        where.append(f"u.device IN ({','.join('?' * len(chosen))})" if chosen else "0")
        args.extend(chosen)
    if since_ms is not None:
        where.append("u.ts_ms >= ?")
        args.append(since_ms)
    if until_ms is not None:
        where.append("u.ts_ms < ?")
        args.append(until_ms)
    wanted = list(sources or [])
    if wanted:
        marks = ",".join("?" * len(wanted))
        where.append(f"u.ctx IN (SELECT id FROM contexts WHERE source IN ({marks}))"
                     if by_context_id else f"c.source IN ({marks})")
        args.extend(wanted)
    return where, args


# key, ts_ms, ctx, input, output, cache_5m, cache_1h, cache_read, web_search, cost_usd,
# flags, cost_calc, priced
UsageRow = tuple[int, int, int, int, int, int, int, int, int, "float | None", int,
                 "float | None", int]
CostFn = Callable[[str, int, int, int, int, int, int, int], "float | None"]


# typing costs 6 ms to import (it pulls in re): the prompt's refresh gets plain
# namedtuples, the type checker sees the NamedTuple declarations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, NamedTuple, Protocol

    from tokline.accounting.totals import Sums

    class UsageBatch(Protocol):
        """Usage rows waiting to be written (tokline/ledger/_writer_py.py Batch, or the
        compiled writer's, which also takes the rows the compiled Claude reader built)."""

        def __len__(self) -> int: ...
        @property
        def min_ts(self) -> int | None: ...
        def extend(self, rows: list[UsageRow]) -> None: ...
        def write(self, sort: bool = True) -> None: ...
        def close(self) -> None: ...

    class FileState(NamedTuple):
        path: str
        source: str
        dev: int
        ino: int
        size: int
        mtime_ns: int
        head_len: int
        head_crc: int
        offset: int
        malformed: int = 0
        state: str | None = None

    class StoredUsage(NamedTuple):
        """One deduplicated usage row joined with its context, as reports read it."""

        ts_ms: int
        source: str
        session_id: str
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
        device: int = 0

else:
    FileState = namedtuple(
        "FileState",
        "path source dev ino size mtime_ns head_len head_crc offset malformed state",
        defaults=(0, None),
    )
    StoredUsage = namedtuple(
        "StoredUsage",
        "ts_ms source session_id project model input output cache_5m cache_1h"
        " cache_read web_search cost_usd flags device",
        defaults=(0,),
    )


def _corrupt(path: str, exc: Exception) -> LedgerError:
    """The storage fault ``exc`` is (tokline/ledger/faults.py); a corrupt ledger by default."""
    return faults.classify(exc, path) or faults.corrupt(path, exc)


def _uri(path: str, immutable: bool) -> str:
    quoted = path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    return f"file:{quoted}?mode=ro" + ("&immutable=1" if immutable else "")


# The lock file beside the ledger: shared while a connection opens, exclusive while a
# rebuild moves the ledger aside (tokline/ledger/backups.py).
LOCK_SUFFIX = ".lock"


class Ledger:
    def __init__(self, path: str | os.PathLike[str], readonly: bool = False) -> None:
        """Open (creating it when missing) the ledger at ``path``.  ``readonly``: open an
        existing ledger for reading only (a read-only directory or file, a full disk);
        every write then does nothing."""
        self.path = os.fspath(path)
        self.readonly = readonly
        # A handle for the compiled writer (tokline/ledger/_writer_c), else why the twin
        # writes usage rows (executemany).
        self._writer: object = "the ledger is read-only"
        if readonly:
            self.db = self._open_readonly()
        else:
            existed = os.path.exists(self.path)
            try:
                if existed and not os.access(self.path, os.W_OK):
                    raise faults.read_only(f"{self.path}: the file is not writable",
                                           "its mode is read-only")
                os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
                with opening_lock(self.path):
                    writer, why = _native_writer()
                    self.db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
                    try:
                        self._setup()
                    except BaseException:
                        self.db.close()
                        raise
                    self._writer = writer.open_handle(self.db) if writer else why
            except (sqlite3.DatabaseError, OSError) as exc:
                if not existed:  # not even a header written (a full disk): no ledger yet
                    _remove_if_empty(self.path)
                raise _corrupt(self.path, exc) from None
        self._contexts: dict[tuple[str, str, str, str], int] | None = None
        self._next_context = 1
        self._contexts_complete = False
        self._new_contexts: list[tuple[int, str, str, str, str]] = []
        self._change_open = False  # this transaction has its row in ``changes``
        # The devices whose rows the sums and the snapshot count (None: all): ``[sync]
        # scope = "local"`` sets this device alone (tokline/snapshot/publish.py).
        self.scope: tuple[int, ...] | None = None

    def _setup(self) -> None:
        st = os.stat(self.path)
        if st.st_mode & 0o077:  # private; a file made read-only on purpose stays so
            os.chmod(self.path, st.st_mode & 0o700)
        self._wal()
        self.db.execute("PRAGMA synchronous=NORMAL")
        # Pages read through a mapping instead of one pread each: a refresh touches
        # hundreds of pages scattered over the key-ordered table.
        self.db.execute("PRAGMA mmap_size=1073741824")
        schema.migrate(self.db, self.path)

    def _open_readonly(self) -> sqlite3.Connection:
        """``mode=ro``; where SQLite cannot make the -shm file a WAL reader needs (a
        read-only directory) and no -wal holds commits the file lacks, ``immutable``."""
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            raise faults.cannot_create(self.path)
        first: Exception | None = None
        try:
            wal_empty = os.path.getsize(self.path + "-wal") == 0
        except OSError:
            wal_empty = True
        # Nobody can write it (nor make the -shm and -wal a plain read-only open would
        # leave behind, read-only like the file): nothing can change under the reader.
        fixed = wal_empty and not (os.access(self.path, os.W_OK)
                                   and os.access(os.path.dirname(self.path) or ".", os.W_OK))
        for immutable in ((True,) if fixed else (False, True)):
            if immutable and not wal_empty:
                break
            try:
                db = sqlite3.connect(_uri(self.path, immutable), uri=True, timeout=60.0,
                                     isolation_level=None)
            except sqlite3.DatabaseError as exc:
                first = first or exc
                continue
            try:
                schema.check(db, self.path)
                return db
            except sqlite3.DatabaseError as exc:
                db.close()
                first = first or exc
        assert first is not None
        raise _corrupt(self.path, first) from None

    def _wal(self) -> None:
        # Switching a new database to WAL can fail at once with "database is locked" while
        # another process creates it too (the busy timeout does not cover that lock).
        for attempt in range(100):
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[None]:
        """One transaction holding the write lock; rolled back on any error.  On a
        read-only ledger, one read transaction."""
        try:
            self.db.execute("BEGIN" if self.readonly else "BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from None
        self._change_open = False  # the change row, when one is needed, is this one's own
        try:
            yield
        except BaseException:
            with suppress(sqlite3.DatabaseError):  # a failed COMMIT may have rolled back
                self.db.execute("ROLLBACK")
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            with suppress(sqlite3.DatabaseError):
                self.db.execute("ROLLBACK")
            raise _corrupt(self.path, exc) from None

    # files ---------------------------------------------------------------------------
    def file_states(
        self, source: str | None = None, paths: list[str] | None = None
    ) -> dict[str, FileState]:
        """Known files, all of them or just ``paths`` (an incremental refresh)."""
        if paths is not None and len(paths) <= 500:
            marks = ",".join("?" * len(paths))
            cur = self.db.execute(f"SELECT * FROM files WHERE path IN ({marks})", paths)
        else:
            sql = "SELECT * FROM files" + (" WHERE source = ?" if source else "")
            cur = self.db.execute(sql, (source,) if source else ())
        return {row[0]: FileState(*row) for row in cur}

    def has_usage(self) -> bool:
        (found,) = self.db.execute("SELECT EXISTS (SELECT 1 FROM usage)").fetchone()
        return bool(found)

    def save_files(self, states: Iterable[FileState]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    s.path,
                    s.source,
                    s.dev,
                    s.ino,
                    s.size,
                    s.mtime_ns,
                    s.head_len,
                    s.head_crc,
                    s.offset,
                    s.malformed,
                    s.state,
                )
                for s in states
            ],
        )

    # usage ---------------------------------------------------------------------------
    def preload_contexts(self, many: bool) -> None:
        """Inside write(), before context_id: ``many`` (a refresh of many files) reads a
        table of up to 20,000 contexts whole instead of asking for each key; a prompt's
        refresh of a few live files asks for the few it meets."""
        (count, top) = self.db.execute(
            "SELECT count(*), coalesce(max(id), 0) FROM contexts").fetchone()
        self._next_context = top + 1
        self._contexts_complete = count == 0 or (many and count <= 20_000)
        self._contexts = {} if not self._contexts_complete or count == 0 else {
            (row[1], row[2], row[3], row[4]): row[0]
            for row in self.db.execute("SELECT * FROM contexts")}

    def context_id(self, source: str, session_id: str, project: str, model: str) -> int:
        """Id of a (source, session, project, model) context; new ones are written by
        ``upsert_usage``.  Only call inside ``write()``: ids are handed out under its lock."""
        if self._contexts is None:
            self.preload_contexts(False)
            assert self._contexts is not None
        key = (source, session_id, project, model)
        found = self._contexts.get(key)
        if found is None:
            row = None if self._contexts_complete else self.db.execute(
                "SELECT id FROM contexts WHERE source=? AND session_id=? AND project=? AND model=?",
                key,
            ).fetchone()
            if row is not None:
                found = self._contexts[key] = row[0]
            else:
                found = self._contexts[key] = self._next_context
                self._next_context += 1
                self._new_contexts.append((found, *key))
        return found

    def forget_context_cache(self) -> None:
        """Call after a rolled-back transaction: ids handed out in it no longer exist."""
        self._contexts = None
        self._new_contexts.clear()

    def insert_new_contexts(self) -> None:
        """Write the contexts ``context_id`` handed out ids for (inside ``write()``)."""
        if self._new_contexts:
            self.db.executemany("INSERT INTO contexts VALUES (?,?,?,?,?)", self._new_contexts)
            self._new_contexts.clear()

    def upsert_usage(self, rows: list[UsageRow]) -> None:
        """Insert or merge rows, in order: copies merge first-to-last."""
        batch = self.usage_batch()
        try:
            batch.extend(rows)
            self.write_usage(batch)
        finally:
            batch.close()

    @property
    def writer(self) -> str:
        """How usage rows are written: "capi" (the compiled writer, through SQLite's C
        API on this connection) or "python" (the twin's executemany)."""
        return "python" if isinstance(self._writer, str) else "capi"

    @property
    def writer_reason(self) -> str | None:
        """Why the twin writes (None: the compiled writer does)."""
        return self._writer if isinstance(self._writer, str) else None

    def usage_batch(self) -> UsageBatch:
        """An empty batch of usage rows for ``write_usage``; close it when done."""
        if isinstance(self._writer, str):
            return _writer_py.Batch(self.db, _UPSERT)
        compiled: Any = switch.compiled("writer")
        batch: UsageBatch = compiled.Batch(self._writer, _UPSERT)
        return batch

    def write_usage(self, batch: UsageBatch) -> None:
        """Inside write(): insert or merge the batch's rows (in key order: B-tree inserts
        then touch neighbouring pages instead of random ones, keys being hashes; copies
        of one key merge in the order they came), and empty it."""
        self.insert_new_contexts()
        lowest = batch.min_ts
        self.note_change(NO_CHANGE_MS if lowest is None else lowest)
        batch.write()

    def note_change(self, since_ms: int) -> None:
        """Inside write(): this transaction's change row reaches back to ``since_ms``.
        upsert_usage opens the row; anything else that changes usage rows opens it first
        (the trigger lowers the newest row, which must be this transaction's)."""
        if self.readonly:
            return
        if self._change_open:
            self.db.execute("UPDATE changes SET since_ms = min(since_ms, ?)"
                            " WHERE seq = (SELECT max(seq) FROM changes)", (since_ms,))
            return
        seq = self.db.execute("INSERT INTO changes(since_ms) VALUES (?)", (since_ms,)).lastrowid
        self.db.execute("DELETE FROM changes WHERE seq <= ?", ((seq or 0) - CHANGES_KEPT,))
        self._change_open = True

    def changes_since(self, seq: int | None) -> tuple[int, int | None]:
        """(the newest change's number, the oldest row time any change after ``seq``
        touched: None when none did, 0 when ``seq`` is unknown or too old to tell)."""
        newest, oldest_kept = self.db.execute(
            "SELECT coalesce(max(seq), 0), coalesce(min(seq), 1) FROM changes").fetchone()
        if seq is None or seq < oldest_kept - 1 or seq > newest:
            return newest, 0
        (since,) = self.db.execute("SELECT min(since_ms) FROM changes WHERE seq > ?",
                                   (seq,)).fetchone()
        return newest, since

    def shadow_sidechain_replays(self, message_ids: Iterable[str]) -> None:
        """Mark sidechain rows that replay a main-conversation response with another
        requestId: in each message id's key range (group_range), the sidechain rows when
        a main one is there too.  One statement over a temporary table of the ranges (a
        cold scan meets some 17,000 message ids; one UPDATE each took 0.067 s of CPU
        where this takes 0.04 s; marking never changes which rows are sidechains, so the
        order of the ranges never mattered)."""
        lows = {group_range(mid)[0] for mid in message_ids}
        if not lows:
            return
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS shadow_groups(lo INTEGER PRIMARY KEY)")
        self.db.executemany("INSERT OR IGNORE INTO shadow_groups VALUES (?)",
                            [(lo,) for lo in sorted(lows)])
        self.db.execute(
            f"""UPDATE usage SET flags = flags | {F_SHADOWED}
               WHERE flags & {F_SIDECHAIN} AND key IN (
                   SELECT u.key FROM shadow_groups g
                   JOIN usage u ON u.key BETWEEN g.lo AND g.lo + {KEY_GROUP_SPAN}
                   WHERE u.flags & {F_SIDECHAIN} AND EXISTS (
                       SELECT 1 FROM usage m WHERE m.key BETWEEN g.lo AND g.lo + {KEY_GROUP_SPAN}
                       AND (m.flags & {F_SIDECHAIN}) = 0))""")
        self.db.execute("DELETE FROM shadow_groups")

    def price_pending(self, since_ms: int, cost_of: CostFn) -> int | None:
        """Store the computed cost of rows since ``since_ms`` that are new or changed; the
        snapshot sums these in SQL.  Returns the oldest time among them (None: none).
        A read-only ledger keeps the costs it has."""
        if self.readonly:
            return None
        rows = self.db.execute(
            "SELECT u.key, u.ts_ms, c.model, u.input, u.output, u.cache_5m, u.cache_1h,"
            " u.cache_read, u.web_search, u.flags FROM usage u JOIN contexts c ON c.id = u.ctx"
            " WHERE u.priced = 0 AND u.ts_ms >= ?", (since_ms,)).fetchall()
        self.db.executemany(
            "UPDATE usage SET cost_calc = ?, priced = 1 WHERE key = ?",
            [(cost_of(*row[2:]), row[0]) for row in rows])
        return min((row[1] for row in rows), default=None)

    def use_prices(self, fingerprint: str) -> bool:
        """Inside write(): when the price table changed since costs were stored, mark every
        row to be priced again.  True when that happened (or would have, read-only)."""
        if self.readonly:
            return self.get_meta("prices") != fingerprint
        if self.get_meta("prices") == fingerprint:
            return False
        self.db.execute("UPDATE usage SET priced = 0 WHERE priced = 1")
        self.set_meta("prices", fingerprint)
        return True

    def sums(self, since_ms: int, until_ms: int | None = None, cost_mode: str = "auto",
             source: str | None = None
             ) -> dict[str, Sums]:
        """Per ``source<US>model``: the sums (accounting/totals.py: input, output, cache
        writes, cache reads, web searches, cost, unpriced rows, requests) of rows in
        [since, until)."""
        cost = costmode.SQL[cost_mode]
        terms, args = _filter(since_ms, until_ms, [source] if source else None,
                              by_context_id=True, devices=self.scope)
        where = " AND ".join(terms)
        out: dict[str, Sums] = {}
        # Summed per context straight off the time index first, then joined: joining every
        # row before grouping costs twice as much on a busy day.
        for row in self.db.execute(
                "SELECT c.source || char(31) || c.model, sum(s.i), sum(s.o), sum(s.cw),"
                " sum(s.cr), sum(s.w), coalesce(sum(s.cost), 0),"
                f" sum(CASE WHEN c.model != {_SYNTHETIC_SQL} THEN s.unpriced ELSE 0 END),"
                " sum(s.n)"
                " FROM (SELECT u.ctx AS ctx, sum(u.input) AS i, sum(u.output) AS o,"
                " sum(u.cache_5m + u.cache_1h) AS cw, sum(u.cache_read) AS cr,"
                f" sum(u.web_search) AS w, sum({cost}) AS cost,"
                f" sum({cost} IS NULL) AS unpriced, count(*) AS n"
                f" FROM usage u WHERE {where} GROUP BY u.ctx) s"
                " JOIN contexts c ON c.id = s.ctx GROUP BY c.source, c.model", args):
            out[row[0]] = tuple(row[1:])
        return out

    def grouped_sums(self, by: str, since_ms: int | None = None, until_ms: int | None = None,
                     cost_mode: str = "auto", sources: Iterable[str] | None = None,
                     devices: Iterable[int] | None = None) -> list[tuple[Any, ...]]:
        """Sums of counted rows in [since, until) grouped in SQL, for the pictures and the
        dashboard (a year of history without a Python loop over every row).

        ``by="quarter"``: (ts_ms // 15 min, input, output, cache_5m, cache_1h, cache_read,
        web_search, cost, unpriced rows, requests), a quarter hour being the finest step
        of any zone's offset, so local days can be made from them exactly.
        ``by="context"``: (source, session, project, model, device, the same sums...)."""
        cost = costmode.SQL[cost_mode]
        where, args = _filter(since_ms, until_ms, sources, by_context_id=True,
                              devices=self.scope if devices is None else devices)
        sums = (f"sum(u.input), sum(u.output), sum(u.cache_5m), sum(u.cache_1h),"
                f" sum(u.cache_read), sum(u.web_search), coalesce(sum({cost}), 0),"
                f" sum({cost} IS NULL AND u.ctx NOT IN"
                f" (SELECT id FROM contexts WHERE model = {_SYNTHETIC_SQL})), count(*)")
        inner = f"FROM usage u WHERE {' AND '.join(where)}"
        if by == "quarter":
            sql = f"SELECT u.ts_ms / {QUARTER_MS}, {sums} {inner} GROUP BY 1 ORDER BY 1"
        elif by == "context":
            sql = (f"SELECT c.source, c.session_id, c.project, c.model, s.* FROM"
                   f" (SELECT u.device AS device, {sums}, u.ctx AS ctx {inner}"
                   f" GROUP BY u.ctx, u.device) s JOIN contexts c ON c.id = s.ctx")
        else:
            raise ValueError(by)
        try:
            rows = self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from None
        if by == "context":  # drop the trailing ctx id
            rows = [row[:-1] for row in rows]
        return rows

    def timestamps(self, since_ms: int, source: str = "claude") -> list[int]:
        """Times of one source's rows since ``since_ms``, read from the time index alone."""
        where, args = _filter(since_ms, None, [source], by_context_id=True,
                              devices=self.scope)
        return [r[0] for r in self.db.execute(
            f"SELECT u.ts_ms FROM usage u WHERE {' AND '.join(where)} ORDER BY u.ts_ms", args)]

    def io_tokens(self, since_ms: int, source: str = "claude") -> list[tuple[int, int]]:
        """(time, input + output tokens) of one source's counted rows since ``since_ms``,
        in time order."""
        where, args = _filter(since_ms, None, [source], by_context_id=True,
                              devices=self.scope)
        return self.db.execute(f"SELECT u.ts_ms, u.input + u.output FROM usage u"
                               f" WHERE {' AND '.join(where)} ORDER BY u.ts_ms", args).fetchall()

    def last_before(self, ts_ms: int, source: str = "claude") -> int | None:
        where, args = _filter(None, ts_ms, [source], by_context_id=True, devices=self.scope)
        row = self.db.execute(f"SELECT max(u.ts_ms) FROM usage u WHERE {' AND '.join(where)}",
                              args).fetchone()
        return None if row[0] is None else int(row[0])

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Inside write(): when the usage table is empty, build its indexes once at the end
        instead of updating them row by row (a cold scan of a long history)."""
        (empty,) = self.db.execute("SELECT NOT EXISTS (SELECT 1 FROM usage)").fetchone()
        built: list[str] = []
        if empty:
            built = [name for (name,) in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage'")
                if name in USAGE_INDEXES]
            for name in built:
                self.db.execute(f"DROP INDEX {name}")
            # Every row is new: the change row reaches back to the first, without the
            # trigger firing for each streamed copy merged on the way.
            self.db.execute("DROP TRIGGER IF EXISTS usage_changed")
            self.note_change(0)
        try:
            yield
        finally:
            if empty:
                for name in built:
                    self.db.execute(USAGE_INDEXES[name])
                self.db.execute(CHANGE_TRIGGER)

    def usage(
        self,
        since_ms: int | None = None,
        until_ms: int | None = None,
        sources: Iterable[str] | None = None,
        devices: Iterable[int] | None = None,
    ) -> Iterator[StoredUsage]:
        where, args = _filter(since_ms, until_ms, sources, by_context_id=False,
                              devices=self.scope if devices is None else devices)
        sql = (
            "SELECT u.ts_ms, c.source, c.session_id, c.project, c.model, u.input, u.output,"
            " u.cache_5m, u.cache_1h, u.cache_read, u.web_search, u.cost_usd, u.flags,"
            " u.device FROM usage u JOIN contexts c ON c.id = u.ctx WHERE "
            + " AND ".join(where)
            + " ORDER BY u.ts_ms"
        )
        try:
            for row in self.db.execute(sql, args):
                yield StoredUsage(*row)
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from None

    def counts(self) -> dict[str, int]:
        files, malformed = self.db.execute(
            "SELECT count(*), coalesce(sum(malformed), 0) FROM files"
        ).fetchone()
        (rows,) = self.db.execute("SELECT count(*) FROM usage").fetchone()
        # A read-only ledger of an older schema has not run the quarantine migration.
        (has_quarantine,) = self.db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'quarantine'"
        ).fetchone()
        (quarantined,) = self.db.execute("SELECT count(*) FROM quarantine").fetchone() \
            if has_quarantine else (0,)
        return {"files": files, "malformed_lines": malformed, "usage_rows": rows,
                "quarantined": quarantined}

    def device_sums(self, since_ms: int | None = None, cost_mode: str = "auto"
                    ) -> dict[int, tuple[int, int, float, int]]:
        """Per device: (requests, tokens, cost, unpriced rows) of counted rows since
        ``since_ms`` (None: all)."""
        cost = costmode.SQL[cost_mode]
        where, args = _filter(since_ms, None, None, by_context_id=True)
        return {row[0]: (row[1], row[2], row[3], row[4]) for row in self.db.execute(
            f"SELECT u.device, count(*), sum(u.input + u.output + u.cache_5m + u.cache_1h"
            f" + u.cache_read), coalesce(sum({cost}), 0), sum({cost} IS NULL AND u.ctx NOT IN"
            f" (SELECT id FROM contexts WHERE model = {_SYNTHETIC_SQL}))"
            f" FROM usage u WHERE {' AND '.join(where)} GROUP BY u.device", args)}

    def device_names(self, hexadecimal: bool = False) -> dict[Any, str]:
        """Device id (or its 16 hex digits) -> name, for every device seen."""
        try:
            found = self.db.execute("SELECT id, name FROM devices").fetchall()
        except sqlite3.OperationalError:  # a read-only ledger of an older schema
            return {}
        return {(f"{i:016x}" if hexadecimal else i): name for i, name in found}

    def set_meta(self, key: str, value: str) -> None:
        if self.readonly:
            return
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])


def _native_writer() -> tuple[ModuleType | None, str]:
    """The compiled writer, watching for the connection about to open, or None and why the
    twin writes: TOKLINE_PURE, not built, or TOKLINE_WRITER=python (benchmarks and tests
    compare the two with it)."""
    if os.environ.get("TOKLINE_WRITER") == "python":
        return None, "TOKLINE_WRITER=python"
    module = switch.compiled("writer")
    if module is None:
        return None, _writer_py.REASON
    module.watch()
    return module, ""


def _remove_if_empty(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        try:
            if os.path.getsize(path + suffix) == 0:
                os.unlink(path + suffix)
        except OSError:
            pass


@contextmanager
def opening_lock(path: str) -> Iterator[None]:
    """Shared hold on the ledger's lock file while a connection opens: a rebuild moving
    the ledger and its -wal aside (exclusive) never lets an open pair one with the other.
    Without a lock file that can be made (a read-only directory) it goes on unlocked."""
    try:
        fd = os.open(path + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        try:
            fd = os.open(path + LOCK_SUFFIX, os.O_RDONLY)
        except OSError:
            yield
            return
    try:
        import fcntl  # noqa: PLC0415 - a builtin module, POSIX only

        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def now_ms() -> int:
    return time.time_ns() // 1_000_000
