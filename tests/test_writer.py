"""The compiled ledger writer (SQLite's C API on the sqlite3 module's own connection,
ext/_writer_c.pyx) and its twin (executemany, tokline/ledger/_writer_py.py) make the same
ledger: the same rows, the same merges, the same errors; a kill in the middle of either
leaves the last commit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import struct
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
from test_scan_differential import LATEST, any_line

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
@pytest.mark.parametrize("library", ["loaded, without SQLite", "not loaded"])
def test_where_sqlites_functions_cannot_be_found_the_twin_writes(tmp_path: Path,
                                                                 library: str) -> None:
    """The functions are found through the _sqlite3 module's library at run time: a
    library without them (or none loaded) leaves the writing to the twin, with the
    reason, and the ledger is written all the same."""
    stand_in = ("tokline.engine._keys_c.__file__" if library.startswith("loaded")
                else repr(str(tmp_path / "missing.so")))
    code = ("import _sqlite3, sys, tokline.engine._keys_c\n"
            f"_sqlite3.__file__ = {stand_in}\n"
            "from tokline.ledger.store import Ledger\n"
            "with Ledger(sys.argv[1]) as led, led.write():\n"
            "    led.upsert_usage([(1, 2, 1, 3, 4, 0, 0, 0, 0, None, 0, None, 0)])\n"
            "    print(led.writer, led.writer_reason)\n")
    env = {k: v for k, v in os.environ.items() if k != "TOKLINE_WRITER"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "l.sqlite3")], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == ("python not found: sqlite3_libversion_number" if library.startswith("loaded")
                   else "python not found: the _sqlite3 module's library (dlopen)"), out
    with Ledger(tmp_path / "l.sqlite3") as led:
        assert led.db.execute("SELECT key, input FROM usage").fetchall() == [(1, 3)]


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


# Rows built in C (ext/_claude_c.pyx Pending.rows) --------------------------------------

ROW_BYTES = 13 * 8 + 8  # ext/_rows.pxd tl_row: 13 values, then the real and null masks


def unpack(packed: bytes) -> list[tuple[Any, ...]]:
    """The rows of ``add_packed`` bytes as UsageRow tuples."""
    rows = []
    for at in range(0, len(packed), ROW_BYTES):
        raw = packed[at:at + ROW_BYTES]
        real, null = struct.unpack_from("<II", raw, 13 * 8)
        rows.append(tuple(
            None if null >> k & 1 else struct.unpack_from("<d" if real >> k & 1 else "<q",
                                                          raw, 8 * k)[0]
            for k in range(13)))
    return rows


class Contexts:
    """A context_id that hands out ids in the order asked and remembers the order."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str, str, str], int] = {}
        self.asked: list[tuple[str, str, str, str]] = []

    def __call__(self, source: str, session: str, project: str, model: str) -> int:
        key = (source, session, project, model)
        self.asked.append(key)
        return self.ids.setdefault(key, len(self.ids) + 1)


PRICES = PriceBook(bundled_table())
MODELS = st.sampled_from([*sorted(bundled_table())[:40], "claude-4-sonnet-20250514",
                          "claude-opus-4-6", "claude-sonnet-4-5", "<synthetic>",
                          "not-a-model", "", "Claude-Opus-4-5", "cl\u00e4ude"])
IDS = st.one_of(st.sampled_from(["msg_01", "msg_02", "req_1", "", "\u00e9t\u00e9"]),
                st.text(st.characters(blacklist_categories=("Cs", "Cc"),
                                      blacklist_characters='"\\'), max_size=6))
PATHS = st.sampled_from([
    "/h/.claude/projects/-w-p/0d5d4bd6.jsonl",
    "/h/.claude/projects/-w-p/sess/subagents/agent-1.jsonl",
    "/h/.claude/projects/-w-\u00e9/s\u00e9ss.jsonl", "relative.jsonl"])
BIG = st.one_of(st.integers(0, 300), st.integers(0, 10**10 - 1), st.just(200_001))


@st.composite
def priced_line(draw: st.DrawFn) -> bytes:
    """A Claude usage line as Claude Code writes it, with the fields the ledger's rows
    take apart: ids (repeated, for merges; missing; non-ASCII), models of every price
    shape (tiered, fast, synthetic, none), counts up to the bounds, costUSD."""
    usage: dict[str, Any] = {"input_tokens": draw(BIG), "output_tokens": draw(BIG),
                             "cache_creation_input_tokens": draw(BIG),
                             "cache_read_input_tokens": draw(BIG)}
    if draw(st.booleans()):
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": draw(BIG),
                                   "ephemeral_1h_input_tokens": draw(BIG)}
    if draw(st.booleans()):
        usage["server_tool_use"] = {"web_search_requests": draw(st.integers(0, 9))}
    if draw(st.booleans()):
        usage["speed"] = draw(st.sampled_from(["fast", "standard"]))
    message: dict[str, Any] = {"usage": usage, "model": draw(MODELS)}
    if draw(st.integers(0, 5)):
        message["id"] = draw(IDS)
    line: dict[str, Any] = {"type": "assistant", "message": message,
                            "timestamp": "2026-11-23T10:00:00.000Z"}
    for key, values in (("requestId", IDS), ("sessionId", IDS), ("cwd", IDS)):
        if draw(st.integers(0, 4)):
            line[key] = draw(values)
    if draw(st.booleans()):
        line["isSidechain"] = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        line["costUSD"] = draw(st.floats(0, 9999, allow_nan=False))
    text = json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode()
    if draw(st.integers(0, 9)) == 0:  # invalid UTF-8 in an id: decoded with replacement
        text = text.replace(b'"msg_0', b'"msg_\xff', 1)
    return text


def _rows_both_ways(ext: Any, data: bytes, base: int, path: str, priced: bool,
                    main: bool) -> None:
    from tokline.sources import claude

    pending = ext.scan_deferred(data, 0, LATEST)
    records = [(r[0] + base, *r[1:]) for r in pending.records()[0]]
    want_ctx, got_ctx = Contexts(), Contexts()
    want_side: set[str] = set()
    got_side: set[str] = set()
    want_main: set[str] | None = set() if main else None
    got_main: set[str] | None = set() if main else None
    want = claude.usage_rows(records, path, want_ctx, want_side, want_main,
                             PRICES.cost_of if priced else None)
    made = pending.rows(base, path, claude.file_identity(path)[0],
                        claude._context_of(path, got_ctx, PRICES.rates if priced else None),
                        got_side, got_main, priced)
    if pending.slow:
        assert made is None
        return
    assert made is not None
    packed, count = made
    assert count == len(records)
    assert unpack(packed) == want
    assert got_ctx.asked == sorted(set(want_ctx.asked), key=want_ctx.asked.index)
    assert got_ctx.ids == want_ctx.ids
    assert (got_side, got_main) == (want_side, want_main)


@pytest.mark.parametrize(("compiled", "pure"), twins.pair("claude"))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(priced_line(), max_size=10), st.sampled_from([0, 8 << 20, 2**33 + 5]),
       PATHS, st.booleans(), st.booleans(), st.integers(0, 3))
def test_rows_built_in_c_are_usage_rows(compiled: Any, pure: Any, lines: list[bytes],
                                        base: int, path: str, priced: bool, main: bool,
                                        repeat: int) -> None:
    """Keys, contexts (asked in the same order), computed costs to the last bit, merged
    copies, message ids for the sidechain rule: what usage_rows makes of records()."""
    ext = twins.built(compiled)
    if lines and repeat:  # a streamed response: copies of one line in a row
        lines = lines[:1] * repeat + lines
    _rows_both_ways(ext, b"\n".join(lines) + b"\n", base, path, priced, main)


@pytest.mark.parametrize(("compiled", "pure"), twins.pair("claude"))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_rows_built_in_c_from_hostile_lines(compiled: Any, pure: Any, data: Any) -> None:
    """The scanner's hostile lines (tests/test_scan_differential.py any_line): escapes
    (left to usage_rows), damage, odd types, NUL, surrogates."""
    ext = twins.built(compiled)
    lines = data.draw(st.lists(any_line(), max_size=12))
    _rows_both_ways(ext, b"\n".join(lines) + b"\n", data.draw(st.sampled_from([0, 4096])),
                    data.draw(PATHS), data.draw(st.booleans()), data.draw(st.booleans()))


@pytest.mark.parametrize(("compiled", "pure"), twins.pair("claude"))
@pytest.mark.parametrize("model", sorted(bundled_table()))
def test_every_price_computes_the_same_cost_in_c(compiled: Any, pure: Any, model: str) -> None:
    """Each model of the bundled table, below and above its tier, fast and not."""
    ext = twins.built(compiled)
    lines = []
    for i, (inp, c5, c1, read, speed) in enumerate([
            (3, 0, 0, 0, "standard"), (190_000, 4_000, 6_001, 5, "fast"),
            (9_999_999_999, 7, 3, 123_456_789, "standard"), (1, 1, 1, 272_000, "fast")]):
        usage = {"input_tokens": inp, "output_tokens": 97 * i + 1,
                 "cache_creation_input_tokens": c5 + c1, "cache_read_input_tokens": read,
                 "cache_creation": {"ephemeral_5m_input_tokens": c5,
                                    "ephemeral_1h_input_tokens": c1},
                 "server_tool_use": {"web_search_requests": i}, "speed": speed}
        lines.append(json.dumps({"type": "assistant", "requestId": f"r{i}",
                                 "timestamp": "2026-11-23T10:00:00Z", "message": {
                                     "id": f"m{i}", "model": model, "usage": usage}}).encode())
    _rows_both_ways(ext, b"\n".join(lines) + b"\n", 0, "/p/s.jsonl", True, False)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["m1", "m2", "m3", "m4"]), st.integers(0, 3),
                          st.integers(0, 63)), max_size=25),
       st.sets(st.sampled_from(["m1", "m2", "m3", "m5"])))
def test_sidechain_replays_are_shadowed_as_one_update_per_message(
        rows: list[tuple[str, int, int]], asked: set[str]) -> None:
    """shadow_sidechain_replays, one statement over a table of ranges, marks what one
    UPDATE per message id's range marked."""
    from tokline.engine.keys import group_range, key64
    from tokline.engine.records import F_SHADOWED, F_SIDECHAIN

    with tempfile.TemporaryDirectory() as tmp:
        made = []
        for one_by_one in (True, False):
            with Ledger(Path(tmp) / f"{one_by_one}.sqlite3") as led, led.write():
                led.upsert_usage([(key64(mid, f"r{n}"), 5, 1, 1, 1, 0, 0, 0, 0, None, flags, None,
                                   0) for mid, n, flags in rows])
                if one_by_one:
                    led.db.executemany(
                        f"UPDATE usage SET flags = flags | {F_SHADOWED} WHERE key BETWEEN ? AND"
                        f" ? AND flags & {F_SIDECHAIN} AND EXISTS (SELECT 1 FROM usage m"
                        f" WHERE m.key BETWEEN ? AND ? AND (m.flags & {F_SIDECHAIN}) = 0)",
                        [(*group_range(mid), *group_range(mid)) for mid in asked])
                else:
                    led.shadow_sidechain_replays(asked)
                made.append(led.db.execute("SELECT key, flags FROM usage ORDER BY key").fetchall())
        assert made[0] == made[1]
