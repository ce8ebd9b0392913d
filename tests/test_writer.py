"""The compiled ledger writer (SQLite's C API on the sqlite3 module's own connection,
ext/_writer_c.pyx) and its twin (executemany, tokline/ledger/_writer_py.py) make the same
ledger: the same rows, the same merges, the same errors; a kill in the middle of either
leaves the last commit."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import twins
from conftest import GENCORPUS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokline.accounting.pricing import PriceBook, bundled_table
from tokline.engine.refresh import refresh
from tokline.ledger import _writer_py
from tokline.ledger.store import Ledger

PURE = os.environ.get("TOKLINE_PURE") == "1"
COMPILED = None if PURE else twins.compiled_module("writer")
needs_capi = pytest.mark.skipif(COMPILED is None, reason="the compiled writer is not in use")


@contextlib.contextmanager
def writing_with(writer: str) -> Iterator[None]:
    """Ledgers opened inside write with ``writer``: "python" (the twin) or the default."""
    before = os.environ.get("TOKLINE_WRITER")
    os.environ["TOKLINE_WRITER"] = writer
    try:
        yield
    finally:
        if before is None:
            del os.environ["TOKLINE_WRITER"]
        else:
            os.environ["TOKLINE_WRITER"] = before


def open_ledger(path: Path, writer: str) -> Ledger:
    with writing_with(writer):
        return Ledger(path)


def contents(ledger: Ledger | Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of a ledger, rows in order, without what differs between any two
    ledgers (the device id each makes for itself)."""
    db = ledger.db if isinstance(ledger, Ledger) else sqlite3.connect(ledger)
    out: dict[str, list[tuple[Any, ...]]] = {}
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                               " ORDER BY name").fetchall():
        columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")
                   if c[1] != "device" and (table, c[1]) != ("devices", "id")]
        out[table] = db.execute(f"SELECT {', '.join(columns)} FROM {table}"
                                " ORDER BY 1, 2").fetchall()
    out["indexes"] = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                                " ORDER BY name").fetchall()
    if not isinstance(ledger, Ledger):
        db.close()
    return out


def test_the_twin_writes_where_asked(tmp_path: Path) -> None:
    with open_ledger(tmp_path / "a.sqlite3", "python") as led:
        assert led.writer == "python" and led.writer_reason == "TOKLINE_WRITER=python"
    if PURE:
        with open_ledger(tmp_path / "b.sqlite3", "") as led:
            assert led.writer == "python" and led.writer_reason == _writer_py.REASON


@needs_capi
def test_the_compiled_writer_writes_a_ledger_it_opened(tmp_path: Path) -> None:
    """Which path runs, as tokline doctor says it."""
    with open_ledger(tmp_path / "a.sqlite3", "") as led:
        assert led.writer == "capi" and led.writer_reason is None
        batch = led.usage_batch()
        assert type(batch).__module__ == "tokline.ledger._writer_c"
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(tmp_path / "c"))
    env.pop("TOKLINE_WRITER", None)
    out = subprocess.run([sys.executable, "-m", "tokline", "doctor"], env=env,
                         capture_output=True, text=True).stdout
    assert "ledger writer: capi" in out, out
    env["TOKLINE_WRITER"] = "python"
    out = subprocess.run([sys.executable, "-m", "tokline", "doctor"], env=env,
                         capture_output=True, text=True).stdout
    assert "ledger writer: python (TOKLINE_WRITER=python)" in out, out


@needs_capi
def test_a_connection_it_did_not_see_open_is_left_to_the_twin(tmp_path: Path) -> None:
    """The C API is used only on a connection whose opening the auto-extension saw: one
    opened before watch(), or anything else, gets a reason, and the twin writes."""
    code = ("import sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1])\n"
            "from tokline.ledger import _writer_c as w\n"
            "assert w.watch() is None\n"
            "print(w.open_handle(db))\n"
            "print(type(w.open_handle(sqlite3.connect(sys.argv[1]))).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.sqlite3")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0].startswith("the connection's handle was not seen opening"), out
    assert out[1] == "Handle"
    assert COMPILED.open_handle(object()) == "not a sqlite3.Connection"  # type: ignore[union-attr]


@needs_capi
def test_a_closed_connection_or_another_thread_is_refused(tmp_path: Path) -> None:
    led = open_ledger(tmp_path / "a.sqlite3", "")
    batch = led.usage_batch()
    batch.extend([(1, 2, 1, 0, 0, 0, 0, 0, 0, None, 0, None, 0)])
    errors: list[BaseException] = []

    def elsewhere() -> None:
        try:
            batch.write()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert isinstance(errors[0], sqlite3.ProgrammingError), errors
    led.close()
    batch.extend([(1, 2, 1, 0, 0, 0, 0, 0, 0, None, 0, None, 0)])
    with pytest.raises(sqlite3.ProgrammingError):
        batch.write()
    batch.close()


KEYS = st.one_of(st.sampled_from([1, 2, -5, 2**62, -(2**63), 2**63 - 1]),
                 st.integers(-(2**63), 2**63 - 1))
COUNT = st.one_of(st.integers(0, 20), st.integers(0, 10**10 - 1))
MONEY = st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False, allow_infinity=False))
ROW = st.tuples(KEYS, st.integers(0, 2**50), st.integers(1, 4), COUNT, COUNT, COUNT, COUNT,
                COUNT, st.integers(0, 30), MONEY, st.integers(0, 63), MONEY,
                st.integers(0, 1))


@pytest.mark.skipif(COMPILED is None, reason="the compiled writer is not in use")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(ROW, max_size=30), min_size=1, max_size=4), st.booleans())
def test_batches_make_the_same_ledger(batches: list[list[tuple[Any, ...]]], bulk: bool
                                      ) -> None:
    """Rows with repeated keys (streamed copies, replays) merge alike, batch after
    batch, into an empty ledger (indexes built at the end) or a ledger with rows."""
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        for writer in ("python", ""):
            with open_ledger(Path(tmp) / f"{writer or 'c'}.sqlite3", writer) as led:
                if not bulk:
                    with led.write():
                        led.upsert_usage([(7, 1, 1, 1, 1, 1, 1, 1, 1, None, 0, None, 0)])
                with led.write(), led.bulk_load():
                    for rows in batches:
                        led.upsert_usage(rows)  # type: ignore[arg-type]
                made.append(contents(led))
    assert made[0] == made[1]


@needs_capi
@pytest.mark.parametrize("bad", ["null", "check"])
def test_errors_are_the_sqlite3_modules(tmp_path: Path, bad: str) -> None:
    """A failing step raises what executemany raises: class, message, result code."""
    raised = []
    for writer in ("python", ""):
        with open_ledger(tmp_path / f"{writer or 'c'}.sqlite3", writer) as led:
            led.db.execute("CREATE TABLE t(key INTEGER PRIMARY KEY, ts, ctx NOT NULL, a, b,"
                           " c, d, e, f, g, h CHECK (h < 5), i, j)")
            sql = "INSERT INTO t VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
            batch = (_writer_py.Batch(led.db, sql) if writer else
                     COMPILED.Batch(led._writer, sql))  # type: ignore[union-attr]
            row = (1, 1, None if bad == "null" else 1, 0, 0, 0, 0, 0, 0, None,
                   9 if bad == "check" else 0, None, 0)
            batch.extend([row, (0, 1, 1, 0, 0, 0, 0, 0, 0, None, 0, None, 0)])
            with pytest.raises(sqlite3.Error) as caught:
                batch.write()
            exc = caught.value
            raised.append((type(exc), str(exc), getattr(exc, "sqlite_errorcode", None),
                           getattr(exc, "sqlite_errorname", None),
                           led.db.execute("SELECT count(*) FROM t").fetchone()))
            batch.close()
    assert raised[0] == raised[1]
    assert raised[0][0] is sqlite3.IntegrityError and raised[0][4] == (1,)


@needs_capi
def test_rows_it_cannot_bind_are_refused(tmp_path: Path) -> None:
    with open_ledger(tmp_path / "a.sqlite3", "") as led:
        batch = led.usage_batch()
        with pytest.raises(TypeError):
            batch.extend([(1, 2, 3)])
        with pytest.raises(TypeError):
            batch.extend([(1, 2, "ctx", 0, 0, 0, 0, 0, 0, None, 0, None, 0)])
        with pytest.raises(OverflowError):
            batch.extend([(2**64, 2, 1, 0, 0, 0, 0, 0, 0, None, 0, None, 0)])
        with pytest.raises(ValueError):
            batch.add_packed(b"x")
        assert len(batch) == 0 and batch.min_ts is None
        batch.close()


def _corpus(tmp_path: Path, size: str, seed: int) -> Path:
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, str(GENCORPUS), "--out", str(corpus), "--size", size,
                    "--seed", str(seed), "--end", "2026-11-20T12:00:00Z"], check=True,
                   capture_output=True)
    return corpus


def test_a_refresh_makes_the_same_ledger_with_either_writer(tmp_path: Path) -> None:
    """A cold scan, then appended lines (streamed copies merging into rows of the first
    scan), priced as tokline scan prices them: every table the same."""
    corpus = _corpus(tmp_path, "6M", 11)
    prices = PriceBook(bundled_table())
    env = {"HOME": str(corpus)}
    ledgers = {w: open_ledger(tmp_path / f"{w or 'c'}.sqlite3", w) for w in ("python", "")}
    try:
        for led in ledgers.values():
            refresh(led, env, prices=prices)
        assert contents(ledgers["python"]) == contents(ledgers[""])
        subprocess.run([sys.executable, str(GENCORPUS), "--out", str(corpus), "--append-mb",
                        "0.5", "--end", "2026-11-20T12:30:00Z"], check=True, capture_output=True)
        for led in ledgers.values():
            refresh(led, env, prices=prices)
        assert contents(ledgers["python"]) == contents(ledgers[""])
    finally:
        for led in ledgers.values():
            led.close()


def _scan(corpus: Path, ledger: Path, writer: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, HOME=str(corpus), TOKLINE_LEDGER=str(ledger), TOKLINE_WRITER=writer,
               XDG_STATE_HOME=str(ledger.parent / "state"),
               XDG_CONFIG_HOME=str(ledger.parent / "config"))
    return subprocess.Popen([sys.executable, "-m", "tokline", "scan", "-q"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_kill_in_the_middle_of_the_write_leaves_the_last_commit(tmp_path: Path) -> None:
    """kill -9 while the writer steps rows (of a cold load, then of a refresh after
    appends): the ledger is sound, and the scan that follows makes the ledger an
    uninterrupted scan makes, nothing lost and nothing counted twice."""
    corpus = _corpus(tmp_path, "24M", 3)
    killed, clean = tmp_path / "k" / "ledger.sqlite3", tmp_path / "c" / "ledger.sqlite3"
    for path in (killed, clean):
        path.parent.mkdir()
    start = time.perf_counter()
    assert _scan(corpus, clean, "python").wait(timeout=300) == 0
    took = time.perf_counter() - start
    for round_, fraction in enumerate((0.3, 0.5, 0.7, 0.85, 0.95)):
        if round_ == 3:
            assert _scan(corpus, killed, "").wait(timeout=300) == 0
            subprocess.run([sys.executable, str(GENCORPUS), "--out", str(corpus),
                            "--append-mb", "4", "--end", "2026-11-20T12:30:00Z"], check=True,
                           capture_output=True)
        proc = _scan(corpus, killed, "")
        time.sleep(took * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        db = sqlite3.connect(killed)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
    assert _scan(corpus, killed, "").wait(timeout=300) == 0
    assert _scan(corpus, clean, "python").wait(timeout=300) == 0
    got, want = contents(killed), contents(clean)
    for table in ("usage", "contexts", "files", "quarantine", "indexes"):
        assert got[table] == want[table], table
