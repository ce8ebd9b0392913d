"""The ledger's tables, and the named migrations that bring an older ledger up to date.

A new ledger is created at the newest schema (``CURRENT``) in one script.  An older one
runs the migrations it has not seen, in order, in the style of ``llm``'s named
migrations: each is a named step from one schema number to the next, so a new tokline
keeps the history an old one gathered.  ``meta.schema`` holds the number reached.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from tokline.engine import validate
from tokline.errors import LedgerError
from tokline.sync.device import local_id

# usage.flags bits: tokline/engine/records.py (F_*), the scanner's and the ledger's own.

# The time index covers what the snapshot sums: a period's totals are read from the index
# alone, in time order, instead of row by row from a table kept in key order.
TIME_INDEX = """CREATE INDEX IF NOT EXISTS usage_time ON usage(ts_ms, ctx, flags, input, output,
    cache_5m, cache_1h, cache_read, web_search, cost_usd, cost_calc)"""

# Rows not priced yet (price_pending) and rows not exported yet (tokline/sync), found
# without a scan of the table.  The second only where rows are exported: the first export
# makes it (tokline/sync/exchange.py).  Elsewhere it held every row (each is unexported)
# and cost every refresh: its keys are hashes, so a refresh's new rows changed pages all
# over it (a third of a 5 MiB append's WAL) and a cold scan built it for nothing.
UNPRICED_INDEX = "CREATE INDEX IF NOT EXISTS usage_unpriced ON usage(ts_ms) WHERE priced = 0"
UNSYNCED_INDEX = "CREATE INDEX IF NOT EXISTS usage_unsynced ON usage(key) WHERE synced = 0"
# The usage table's indexes by name: a load into an empty table builds those it has once
# at the end (Ledger.bulk_load) instead of row by row.
USAGE_INDEXES = {"usage_time": TIME_INDEX, "usage_unpriced": UNPRICED_INDEX,
                 "usage_unsynced": UNSYNCED_INDEX}

# Every write of usage rows opens a row here with the oldest time it touched (the trigger
# adds the old and new time of each changed row), so the snapshot re-sums only periods
# that changed since the change it last saw (formats.md has no say: this is ours).
CHANGES_TABLE = """
CREATE TABLE IF NOT EXISTS changes(seq INTEGER PRIMARY KEY, since_ms INTEGER NOT NULL);
"""
CHANGE_TRIGGER = """CREATE TRIGGER IF NOT EXISTS usage_changed
AFTER UPDATE OF ts_ms, ctx, input, output, cache_5m, cache_1h, cache_read, web_search, cost_usd,
    flags, cost_calc ON usage
BEGIN
    UPDATE changes SET since_ms = min(since_ms, OLD.ts_ms, NEW.ts_ms)
    WHERE seq = (SELECT max(seq) FROM changes);
END"""
CHANGES_KEPT = 1000
NO_CHANGE_MS = 1 << 62  # a change row no usage row lowered yet

# Usage rows an older tokline stored although they are outside tokline/engine/validate.py's
# bounds (a year-9999 time, 2**53 tokens): moved here by m006_quarantine, with the reason,
# so no report sums or draws them; tokline doctor counts them.
QUARANTINE_TABLE = """
CREATE TABLE IF NOT EXISTS quarantine(
    key INTEGER, ts_ms INTEGER, ctx INTEGER, input INTEGER, output INTEGER,
    cache_5m INTEGER, cache_1h INTEGER, cache_read INTEGER, web_search INTEGER,
    cost_usd REAL, flags INTEGER, cost_calc REAL, priced INTEGER,
    reason TEXT NOT NULL
);
"""


def quarantine(db: sqlite3.Connection) -> int:
    """Move the usage rows outside validate's bounds into ``quarantine``; how many moved.
    The snapshot is told to sum again from the oldest time involved."""
    problem, args = validate.row_problem_sql(validate.latest_ms())
    db.executescript(QUARANTINE_TABLE)
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TEMP TABLE IF NOT EXISTS bad_rows(key INTEGER PRIMARY KEY, reason TEXT)")
        db.execute("DELETE FROM bad_rows")
        db.execute(f"INSERT INTO bad_rows SELECT key, r FROM (SELECT key, {problem} AS r"
                   " FROM usage) WHERE r IS NOT NULL", args)
        (moved, oldest) = db.execute(
            "SELECT count(*), min(u.ts_ms) FROM bad_rows b JOIN usage u USING (key)").fetchone()
        if moved:
            db.execute("INSERT INTO quarantine SELECT u.key, u.ts_ms, u.ctx, u.input, u.output,"
                       " u.cache_5m, u.cache_1h, u.cache_read, u.web_search, u.cost_usd,"
                       " u.flags, u.cost_calc, u.priced, b.reason"
                       " FROM bad_rows b JOIN usage u USING (key)")
            db.execute("DELETE FROM usage WHERE key IN (SELECT key FROM bad_rows)")
            db.execute("INSERT INTO changes(since_ms) VALUES (?)", (min(oldest, 0),))
        db.execute("DROP TABLE bad_rows")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return int(moved)


# Sync (tokline/sync): ``usage.device`` is the device that recorded a row (its default is
# this ledger's own id, so rows of the scan need not say), ``usage.synced`` whether this
# ledger has exported the row as it is now (the scan's upsert clears it).  ``devices``
# names every device seen, ``sync_files`` the segments imported, by name and size.
DEVICE_TABLES = """
CREATE TABLE IF NOT EXISTS devices(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    last_seen_ms INTEGER
);
CREATE TABLE IF NOT EXISTS sync_files(
    name TEXT PRIMARY KEY,
    device INTEGER NOT NULL,
    size INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    imported_ms INTEGER NOT NULL
);
"""


# Running totals (tokline/sources/totals.py): the cumulative totals this device counted
# for each session of a source that keeps only session totals (Droid, Goose, Crush), each
# field's largest read, the place (file, database) that last raised them, and how many
# increases were recorded (the next increase row's key).  Written in the transaction that
# writes the rows, so a crash can neither lose nor double an increase; kept across
# ``scan --rebuild`` with those rows.
RUNNING_TOTALS_TABLE = """
CREATE TABLE IF NOT EXISTS running_totals(
    source TEXT NOT NULL,
    session TEXT NOT NULL,
    place TEXT NOT NULL,
    seq INTEGER NOT NULL,
    input INTEGER NOT NULL,
    output INTEGER NOT NULL,
    cache_write INTEGER NOT NULL,
    cache_read INTEGER NOT NULL,
    cost REAL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY(source, session)
);
"""


def current(device: int) -> str:
    """The script that makes a new ledger, for the device id ``device``."""
    return CURRENT.replace("@DEVICE@", str(int(device)))


def m007_devices(db: sqlite3.Connection, path: str) -> None:
    device = local_id(path)
    db.executescript(f"""ALTER TABLE usage ADD COLUMN device INTEGER NOT NULL DEFAULT {device};
        ALTER TABLE usage ADD COLUMN synced INTEGER NOT NULL DEFAULT 0;""" + DEVICE_TABLES)


CURRENT = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    head_len INTEGER NOT NULL,
    head_crc INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    malformed INTEGER NOT NULL DEFAULT 0,
    state TEXT
);
CREATE TABLE IF NOT EXISTS contexts(
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    session_id TEXT NOT NULL,
    project TEXT NOT NULL,
    model TEXT NOT NULL,
    UNIQUE(source, session_id, project, model)
);
CREATE TABLE IF NOT EXISTS usage(
    key INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    ctx INTEGER NOT NULL,
    input INTEGER NOT NULL,
    output INTEGER NOT NULL,
    cache_5m INTEGER NOT NULL,
    cache_1h INTEGER NOT NULL,
    cache_read INTEGER NOT NULL,
    web_search INTEGER NOT NULL,
    cost_usd REAL,
    flags INTEGER NOT NULL,
    cost_calc REAL,
    priced INTEGER NOT NULL DEFAULT 0,
    device INTEGER NOT NULL DEFAULT @DEVICE@,
    synced INTEGER NOT NULL DEFAULT 0
);
""" + UNPRICED_INDEX + ";\n" + TIME_INDEX + ";" + CHANGES_TABLE + CHANGE_TRIGGER + ";" \
    + QUARANTINE_TABLE + DEVICE_TABLES + RUNNING_TOTALS_TABLE


# Schema N -> N+1, applied in order from FIRST_MIGRATABLE (schema 1 predates migrations).
FIRST_MIGRATABLE = 2
# A step is SQL (a script) or a function of the connection and the ledger's path.
MIGRATIONS: tuple[tuple[str, str | Callable[[sqlite3.Connection, str], object]], ...] = (
    ("m003_stored_costs", """ALTER TABLE usage ADD COLUMN cost_calc REAL;
        ALTER TABLE usage ADD COLUMN priced INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX IF NOT EXISTS usage_unpriced ON usage(ts_ms) WHERE priced = 0;"""),
    ("m004_covering_time_index", "DROP INDEX IF EXISTS usage_ts;" + TIME_INDEX + ";"),
    ("m005_changes_table", CHANGES_TABLE + CHANGE_TRIGGER + ";"),
    ("m006_quarantine", lambda db, _path: quarantine(db)),
    ("m007_devices", m007_devices),
    ("m008_running_totals", RUNNING_TOTALS_TABLE),
    # made again by the next export, where this ledger exports at all
    ("m009_unsynced_index_on_export", "DROP INDEX IF EXISTS usage_unsynced;"),
)
SCHEMA_VERSION = FIRST_MIGRATABLE + len(MIGRATIONS)


def migrate(db: sqlite3.Connection, path: str) -> None:
    """Create the tables, or run the migrations an older ledger has not seen."""
    row = None
    try:
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
    if row is None:
        db.executescript(current(local_id(path)))
    else:
        found = int(row[0])
        if found == SCHEMA_VERSION:
            return
        if not FIRST_MIGRATABLE <= found < SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger {path} has schema {found}, this tokline reads {SCHEMA_VERSION}; "
                "rebuild it with `tokline scan --rebuild`")
        for _name, script in MIGRATIONS[found - FIRST_MIGRATABLE:]:
            if callable(script):
                script(db, path)
            else:
                db.executescript(script)
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))


def check(db: sqlite3.Connection, path: str) -> None:
    """A ledger opened read-only must already be at this schema: nothing can migrate it."""
    row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    found = int(row[0]) if row is not None else 0
    if found != SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger {path} has schema {found}, this tokline reads {SCHEMA_VERSION}, "
            "and it cannot be written to be brought up to date")
