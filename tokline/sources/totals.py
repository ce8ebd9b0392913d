"""Running totals: sources that keep only each session's cumulative counts (Factory Droid's
``tokenUsage``, Goose's ``accumulated_*``, Crush's ``cost``; formats.md §10.5, §10.8,
§10.9) become ledger rows of the increases between reads.

How it works, and why:

* **The last totals read live in the ledger** (table ``running_totals``, migration m008):
  per (source, session) the cumulative counts and client cost last read, the place they
  came from (the settings file, the database) and ``seq``, how many increase rows were
  made.  A read compares the session's totals with them and writes one row of the
  difference, **in the refresh's transaction** that also writes that row and the file's
  new state: a crash leaves both or neither, so an increase is never lost nor made twice.
  A restart (a new process) reads the same table: nothing is kept in memory.
* **Each increase is one row**, keyed by (source, session, this device's id, ``seq``):
  reading the same totals again makes no row (there is no increase), so rewrites with
  unchanged totals (Droid stores settings beside them) are not spend.  The row is dated
  when the totals moved as far as the source says: Goose's and Crush's ``updated_at``,
  the mtime of Droid's settings file (never later than now); its requests count is the
  number of increases seen, not the number of calls.
* **Each device's increases are its own rows**: the key holds the device id, so rows
  synced from another device (tokline/sync) never merge with this one's, even where two
  machines name sessions alike (Goose's ``20260426_1``).  A session whose files are
  copied to two machines is counted on each.
* **A total that goes down** adds nothing: what was counted is each field's largest value
  wherever it was read, so a lower total is an older copy (Droid lists a session under
  two folders and keeps a ``.bak``; a project copied with its ``.crush``; a file restored
  from a backup) and counts once it goes past what was counted, field by field.  A
  session is never made anew under the same id: Droid's and Crush's ids are UUIDs, and a
  Goose session is known by its id and creation time (Goose numbers sessions per day and
  gives a deleted one's number again).  One field dipping while others grow (Goose's
  uncached input is its input less the cache, which can grow faster) is not counted
  again when it comes back.  Goose's compaction rewrites only the per-call columns, which
  are not read.
* **A deleted file or session removes nothing**: its rows stay (as every source's do)
  and so do its totals, so the file coming back adds nothing.
* **``tokline scan --rebuild`` keeps the running totals and the rows they made** by
  copying them from the ledger it moved aside (``carry_over``) into the new one, in the
  rebuild's transaction, before the logs are read again: their history cannot be made
  again from logs that hold only the latest totals, and a new row holding a session's
  whole total would count twice against the old rows that ``tokline sync`` brings back
  from this device's segments.  What the user sees is the same history as before the
  rebuild plus what grew since.  Only when the old ledger cannot be read at all (it is
  corrupt) do the sessions start again from zero: each one's current total becomes one
  row dated at its last update (a warning says so; with sync, the old segments' rows of
  those sessions then count besides it).
"""

from __future__ import annotations

import os
import sqlite3
import time

from tokline.engine import validate
from tokline.engine.keys import key64
from tokline.ledger.store import CostFn, Ledger, UsageRow
from tokline.sources.documents import count

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

NAMES = ("droid", "goose", "crush")  # the sources that keep running totals
# Rows no log on disk can give again, so ``scan --rebuild`` carries them over: the
# increases of running totals, and Cursor's events (fetched from its web API, which
# answers only for the last 90 days).
UNREPEATABLE = (*NAMES, "cursor")
COST_EPSILON = 1e-9  # USD: a smaller change of a client's cost is rounding, not spend


class Reading:
    """One session's cumulative totals as one read found them, in the ledger's terms:
    uncached input, output (reasoning included), cache writes, cache reads, and the
    client's own cumulative cost in USD (None: it gives none).  ``identity`` names the
    session for the running totals (unique for the source); ``session`` is the id shown;
    ``ts_ms`` is when the totals last moved according to the source (None: unknown)."""

    __slots__ = ("cache_read", "cache_write", "cost", "identity", "input", "model",
                 "output", "project", "session", "ts_ms")

    def __init__(self, identity: str, session: str, project: str, model: str, input: object,
                 output: object, cache_write: object = 0, cache_read: object = 0,
                 cost: object = None, ts_ms: int | None = None) -> None:
        self.identity = identity
        self.session = session
        self.project = project
        self.model = model
        # Totals are held to the bounds of one request's counts (validate.py): a session
        # past 10**10 tokens or $10,000 is malformed rather than an increase that large.
        self.input = count(input)
        self.output = count(output)
        self.cache_write = count(cache_write)
        self.cache_read = count(cache_read)
        self.cost = validate.cost(cost)
        self.ts_ms = ts_ms

    def tokens(self) -> tuple[int, int, int, int]:
        return (self.input, self.output, self.cache_write, self.cache_read)


_devices: dict[str, int] = {}


def device_of(ledger: Ledger) -> int:
    """This ledger's device id (tokline/sync/device.py), read once per ledger path."""
    found = _devices.get(ledger.path)
    if found is None:
        from tokline.sync.device import local_id  # noqa: PLC0415 - with the first reading

        found = _devices[ledger.path] = local_id(ledger.path)
    return found


def row_key(source: str, identity: str, device: int, seq: int) -> int:
    """The ledger key of a session's ``seq``-th increase recorded by ``device``: the whole
    text in the 48-bit group part (a session's many increases must not share 16 bits)."""
    return key64(f"\x1b{source}\x1f{identity}\x1f{device:016x}\x1f{seq}", "")


def _when(ts_ms: int | None, now: int) -> int:
    if ts_ms is None or ts_ms < validate.TS_MIN_MS:
        return now
    return min(ts_ms, now)


def rows(ledger: Ledger, source: str, place: str, readings: Iterable[Reading],
         cost_of: CostFn | None, now_ms: int | None = None) -> list[UsageRow]:
    """Inside the refresh's ``write()``: the rows of what grew since the totals stored,
    with the stored totals moved on to ``readings`` (read at ``place``)."""
    db = ledger.db
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    device = device_of(ledger)
    out: list[UsageRow] = []
    for r in readings:
        stored = db.execute(
            "SELECT place, seq, input, output, cache_write, cache_read, cost"
            " FROM running_totals WHERE source = ? AND session = ?",
            (source, r.identity)).fetchone()
        new = r.tokens()
        if stored is None:
            seq, base, base_cost, place_was = 0, (0, 0, 0, 0), None, None
        else:
            place_was, seq, *rest = stored
            base = (int(rest[0]), int(rest[1]), int(rest[2]), int(rest[3]))
            base_cost = rest[4]
        # What was counted is the largest value each field has had, wherever it was read:
        # a lower one is an older copy (another folder, a file restored), counted when it
        # goes past it; sessions are never made anew under an id (Droid's and Crush's are
        # UUIDs, Goose's hold their creation time).
        keep = (max(new[0], base[0]), max(new[1], base[1]), max(new[2], base[2]),
                max(new[3], base[3]))
        keep_cost = base_cost if r.cost is None else (
            r.cost if base_cost is None else max(r.cost, base_cost))
        keep_place = place if place_was is None or sum(new) > sum(base) or (
            r.cost is not None and r.cost > (base_cost or 0) + COST_EPSILON) else place_was
        grown = tuple(max(n - b, 0) for n, b in zip(new, base, strict=True))
        cost = _cost_grown(r.cost, base_cost, any(base))
        if any(grown) or cost is not None:
            seq += 1
            inp, out_, write, read = grown
            ctx = ledger.context_id(source, r.session, r.project, r.model)
            calc = cost_of(r.model, inp, out_, write, 0, read, 0, 0) if cost_of else None
            out.append((row_key(source, r.identity, device, seq), _when(r.ts_ms, now), ctx,
                        inp, out_, write, 0, read, 0, cost, 0, calc, 1 if cost_of else 0))
        if stored is None or keep != base or keep_cost != base_cost or keep_place != place_was:
            db.execute("INSERT OR REPLACE INTO running_totals VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (source, r.identity, keep_place, seq, *keep, keep_cost, now))
    return out


def _cost_grown(cost: float | None, base_cost: float | None, counted_before: bool
                ) -> float | None:
    """The client's cost of an increase: the growth of its cumulative cost, None (tokline
    prices the tokens) when it gives none, did not grow, or first appears in a session
    whose earlier increases tokline priced (a client upgraded mid-session)."""
    if cost is None:
        return None
    if base_cost is None:
        if counted_before:
            return None
        return cost if cost > COST_EPSILON else None
    grown = cost - base_cost
    return grown if grown > COST_EPSILON else None


def carry_over(old_path: str, ledger: Ledger) -> int:
    """Inside the new ledger's first ``write()`` (``tokline scan --rebuild``): copy the
    running totals and this device's rows of the UNREPEATABLE sources from the ledger
    at ``old_path``.  Returns the rows copied; raises sqlite3.Error when it cannot be read
    (the caller says so and the sessions count again from zero)."""
    quoted = old_path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    old = sqlite3.connect(f"file:{quoted}?mode=ro", uri=True, timeout=5)
    try:
        tables = {r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        # a ledger older than migration m008 has no running totals
        states = old.execute("SELECT source, session, place, seq, input, output, cache_write,"
                             " cache_read, cost, seen_ms FROM running_totals").fetchall() \
            if "running_totals" in tables else []
        marks = ",".join("?" * len(UNREPEATABLE))
        found = old.execute(
            "SELECT u.key, u.ts_ms, c.source, c.session_id, c.project, c.model, u.input,"
            " u.output, u.cache_5m, u.cache_1h, u.cache_read, u.web_search, u.cost_usd, u.flags"
            " FROM usage u JOIN contexts c ON c.id = u.ctx"
            f" WHERE c.source IN ({marks}) AND u.device = ?",
            (*UNREPEATABLE, device_of(ledger))).fetchall()
    finally:
        old.close()
    ledger.db.executemany("INSERT OR REPLACE INTO running_totals VALUES (?,?,?,?,?,?,?,?,?,?)",
                          states)
    if found:
        ledger.upsert_usage([
            (r[0], r[1], ledger.context_id(r[2], r[3], r[4], r[5]), *r[6:13], r[13], None, 0)
            for r in found])
    return len(found)


def place_of(path: str) -> str:
    """A database and its -wal are one place."""
    return path.removesuffix("-wal")


def open_db(path: str) -> sqlite3.Connection:
    """An assistant's SQLite database, read-only, never written (nor mapped: a writer may
    be active).  ``immutable`` only when a read-only open fails (no -shm can be made in a
    read-only directory) and no -wal holds commits the file lacks: with a live -wal,
    immutable would miss them."""
    quoted = path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    db = sqlite3.connect(f"file:{quoted}?mode=ro", uri=True, timeout=5)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.Error as exc:
        db.close()
        try:
            wal = os.path.getsize(path + "-wal")
        except OSError:
            wal = 0
        if wal or not isinstance(exc, sqlite3.OperationalError):
            raise
    return sqlite3.connect(f"file:{quoted}?mode=ro&immutable=1", uri=True, timeout=5)


def columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}

