"""Pure-Python twin of the compiled ledger writer (ext/_writer_c.pyx): usage rows upserted
by ``executemany``, in key order (a stable sort: copies of one key still merge in the order
they came).  Same names as the compiled module; its ``open_handle`` always says why the C
API is not used, and its ``Batch`` takes the connection itself.  tests/test_writer.py holds
the two to the same ledger.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from typing import Any

REASON = "the pure twin (executemany)"


def watch() -> str | None:
    """Nothing to watch: the twin writes through the sqlite3 module."""
    return REASON


def open_handle(conn: sqlite3.Connection) -> str:
    """Why the C API does not serve ``conn``: this is the twin."""
    return REASON


def _key(row: Any) -> int:
    key: int = row[0]
    return key


class Batch:
    """Usage rows (UsageRow tuples) waiting to be written; ``write`` upserts them with
    ``sql`` in key order and holds none."""

    def __init__(self, conn: sqlite3.Connection, sql: str) -> None:
        self.conn = conn
        self.sql = sql
        self.rows: list[Any] = []

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def min_ts(self) -> int | None:
        """The earliest ts_ms of the rows held; None when none are."""
        return min((row[1] for row in self.rows), default=None)

    def extend(self, rows: list[Any]) -> None:
        self.rows.extend(rows)

    def write(self, sort: bool = True) -> None:
        """Upsert the rows held, in key order (``sort`` False: as they came, which
        benchmarks compare), and hold none.  In key order, B-tree inserts touch
        neighbouring pages instead of random ones (keys are hashes)."""
        rows, self.rows = self.rows, []
        self.conn.executemany(self.sql, sorted(rows, key=_key) if sort else rows)

    def close(self) -> None:
        self.rows = []
