"""The team server's tables (SQLAlchemy Core) and its database: PostgreSQL, or an
embedded SQLite file when no ``--database`` is given.

One schema for both; the Alembic migrations under tokline/server/migrations make it
(``tokline server migrate``, or at start).  Times are epoch milliseconds, days are UTC
days since 1970-01-01 (``day``).  ``usage`` holds each user's rows keyed by the same
64-bit key as a ledger's; ``daily`` sums them per user, day, model, source and device and
is what the leaderboard and the pages read (recomputed for the days a push touched);
``monthly`` and ``totals`` roll it up per month and for all time, per user and model.
"""

from __future__ import annotations

import os

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine

metadata = MetaData()
TOKENS = ("input", "output", "cache_5m", "cache_1h", "cache_read", "web_search")


def _tokens() -> list[Column[int]]:
    """The token counts a usage row and every sum of them carry (new columns each call:
    a column belongs to one table)."""
    return [Column(name, BigInteger, nullable=False) for name in TOKENS]


users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", Text),  # None until the invite is taken
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("visibility", String(16), nullable=False, default="team"),  # private|team|public
    Column("show_projects", Boolean, nullable=False, default=False),
    Column("created_ms", BigInteger, nullable=False),
)
invites = Table(
    "invites", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("used_ms", BigInteger),
)
api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_used_ms", BigInteger),
)
web_sessions = Table(
    "web_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)
device_codes = Table(
    "device_codes", metadata,
    Column("device_hash", String(64), primary_key=True),
    Column("user_code", String(16), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE")),
    Column("status", String(16), nullable=False, default="pending"),  # approved|denied|used
    Column("label", String(128), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("interval_s", Integer, nullable=False),
    Column("last_poll_ms", BigInteger),
)
devices = Table(
    "devices", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("device", BigInteger, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("last_push_ms", BigInteger),
)
usage = Table(
    "usage", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("key", BigInteger, primary_key=True, autoincrement=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("day", Integer, nullable=False),
    Column("source", String(32), nullable=False),
    Column("session", String(1024), nullable=False),
    Column("project", String(1024), nullable=False),
    Column("model", String(1024), nullable=False),
    *_tokens(),
    Column("cost_usd", Float),  # the cost the log gave
    Column("cost_calc", Float),  # computed from the price table at push; None: unpriced
    Column("flags", Integer, nullable=False),
    Column("device", BigInteger, nullable=False),
    Index("usage_user_day", "user_id", "day"),
)
segments = Table(
    "segments", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("device", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    # None until the merger has merged its rows into usage (tokline/server/merger.py)
    Column("merged_ms", BigInteger),
    Index("segments_unmerged", "received_ms", postgresql_where=text("merged_ms IS NULL"),
          sqlite_where=text("merged_ms IS NULL")),
)
daily = Table(
    "daily", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("model", String(1024), primary_key=True),
    Column("source", String(32), primary_key=True),
    Column("device", BigInteger, primary_key=True),
    *_tokens(),
    Column("cost_usd", Float, nullable=False),
    Column("requests", Integer, nullable=False),
    Column("unpriced", Integer, nullable=False),
    Index("daily_day", "day", "user_id"),
)


def _sums() -> list[Column]:  # type: ignore[type-arg]
    return [Column(name, BigInteger, nullable=False) for name in
            ("input", "output", "cache_5m", "cache_1h", "cache_read", "web_search")] + [
        Column("cost_usd", Float, nullable=False), Column("requests", BigInteger, nullable=False),
        Column("unpriced", BigInteger, nullable=False)]


# ``daily`` rolled up, kept with it (tokline/server/ingest.py refresh_daily): the
# leaderboard's month and all time read a few thousand rows, not every day of everyone.
monthly = Table(
    "monthly", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("month", Integer, primary_key=True),  # the day of its first day
    Column("model", String(1024), primary_key=True),
    *_sums(),
    Index("monthly_month", "month", "user_id"),
)
totals = Table(
    "totals", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("model", String(1024), primary_key=True),
    *_sums(),
)


def default_url() -> str:
    """The embedded SQLite file under the XDG data directory."""
    from tokline.prompt.statefiles import data_dir  # noqa: PLC0415

    path = os.path.join(data_dir(), "server.sqlite3")
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    return f"sqlite:///{path}"


def engine_for(url: str | None) -> Engine:
    """An engine with a connection pool; ``postgresql://`` URLs use psycopg 3."""
    url = url or default_url()
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True,
                             pool_recycle=1800)
    if not url.startswith("sqlite"):
        raise ValueError(f"unsupported database URL (postgresql:// or sqlite:///): "
                         f"{url.split('://', 1)[0]}://…")
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # SQLAlchemy says when a transaction begins (below), not the driver: the driver
        # would BEGIN only at the first write, after the reads that decided it
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        # A write transaction takes the write lock at once (waiting up to the timeout):
        # one that read first and then wrote after another connection's commit would
        # fail at once with SQLITE_BUSY (its snapshot is stale), and between a check
        # (is this segment known?) and the write it decides, nobody else writes.
        write = conn.get_execution_options().get(WRITE_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


WRITE_OPTION = "tokline_write"


def writer(engine: Engine) -> Engine:
    """The engine for transactions that write: ``writer(engine).begin()``.  On SQLite they
    take the write lock when they begin; on PostgreSQL it is the same engine (row locks
    and constraints do that work there)."""
    return engine.execution_options(**{WRITE_OPTION: True})


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
