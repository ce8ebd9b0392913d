"""Hostile log lines (issue 14, validation at the edge): generated here, not checked in.

Each line goes through the compiled scanner, its twin and the json.loads reference of
tests/test_scan_differential.py (they must agree), then a home full of them goes through
the installed ``tokline``'s commands as subprocesses: no traceback, sane exit codes, and
the ledger holds exactly the valid lines' tokens.  tokline/engine/validate.py owns the
bounds; TOKLINE_LATEST_MS pins the latest valid time so "now + 1 day ± 1 s" is exact.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import twins
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_scan_differential import reference

from tokline.engine import _claude_py, validate
from tokline.ledger import schema
from tokline.ledger.store import Ledger
from tokline.sources import codex

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
NOW_MS = int(time.time() * 1000) // 1000 * 1000
LATEST_MS = NOW_MS + validate.FUTURE_MS  # what TOKLINE_LATEST_MS pins in these tests
DAY_MS = 86_400_000


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


# --- the corpus -----------------------------------------------------------------------

def claude_line(i: int, ts: str = "", usage: str = "", extra: str = "") -> bytes:
    """A Claude usage line; ``usage`` is the usage object's members as raw JSON text."""
    ts = ts or _iso(NOW_MS - 3_600_000)
    usage = usage or '"input_tokens":10,"output_tokens":5'
    return (f'{{"type":"assistant","timestamp":"{ts}","sessionId":"s","requestId":"r{i}",'
            f'"message":{{"id":"m{i}","model":"claude-sonnet-4-5","usage":{{{usage}}}}}{extra}}}'
            ).encode()


def hostile_claude() -> list[tuple[str, bytes, int | None]]:
    """(case, line, its input+output tokens if valid else None)."""
    cases: list[tuple[str, bytes, int | None]] = []
    n = iter(range(10_000))

    def add(name: str, valid_tokens: int | None, **kw: str) -> None:
        cases.append((name, claude_line(next(n), **kw), valid_tokens))

    for stamp, ok in (("9999-12-31T23:59:59Z", False), ("0000-01-01T00:00:00Z", False),
                      ("9999-06-01T00:00:00Z", False), ("1999-12-31T23:59:59Z", False),
                      ("2000-01-01T00:00:00Z", True), (_iso(LATEST_MS - 1000), True),
                      (_iso(LATEST_MS), True), (_iso(LATEST_MS + 1000), False)):
        add(f"time {stamp}", 15 if ok else None, ts=stamp)
    for number, ok in (("1e309", None), (str(2**70), None), (str(10**10), None),
                       ("-5", None), ('"5"', None), ("1.5", None), ("true", None),
                       ("[]", None), ("NaN", None), ("Infinity", None), ("-Infinity", None),
                       ("2.0", 7), ("1e1", 15), ("-0", 5), ("null", 5), (str(10**10 - 1), None)):
        tokens = ok if number != str(10**10 - 1) else 10**10 - 1 + 5
        add(f"input {number}", tokens, usage=f'"input_tokens":{number},"output_tokens":5')
    add("cache read 2**70", None, usage=f'"input_tokens":1,"cache_read_input_tokens":{2**70}')
    add("split 1e309", None,
        usage='"input_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":1e309}')
    add("web search -1", None,
        usage='"input_tokens":1,"server_tool_use":{"web_search_requests":-1}')
    add("duplicate key, bad last", None, usage='"input_tokens":3,"input_tokens":1e309')
    add("duplicate key, good last", 8,
        usage='"input_tokens":1e309,"input_tokens":3,"output_tokens":5')
    for cost, ok in (("-1", False), ("1e309", False), ('"0.5"', False), ("50000", False),
                     ("0.25", True), ("null", True)):
        add(f"costUSD {cost}", 15 if ok else None, extra=f',"costUSD":{cost}')
    cases.append(("NUL in a string", claude_line(next(n), extra=',"cwd":"a\u0000b"').replace(
        b"\\u0000", b"\x00"), 15))
    cases.append(("invalid UTF-8", claude_line(next(n), extra=',"cwd":"\xff\xfe"').replace(
        "\xff\xfe".encode(), b"\xff\xfe"), 15))
    cases.append(("raw NUL outside strings", claude_line(next(n)) + b"\x00", None))
    deep = "[" * 100_000 + "]" * 100_000
    cases.append(("100k-deep nesting", claude_line(next(n), extra=f',"content":{deep}'), None))
    return cases


def codex_rollout() -> tuple[bytes, int]:
    """A rollout with valid and hostile token rows, and the valid rows' input+output."""
    head = [{"timestamp": _iso(NOW_MS - 7_200_000), "type": "session_meta",
             "payload": {"id": "sess", "cwd": "/p"}},
            {"timestamp": _iso(NOW_MS - 7_200_000), "type": "turn_context",
             "payload": {"model": "gpt-5"}}]
    lines = [json.dumps(h).encode() for h in head]
    total = [0, 0]
    expected = 0

    def row(ts: str, last: dict[str, Any], cumulative: dict[str, Any]) -> bytes:
        return json.dumps({"timestamp": ts, "type": "event_msg", "payload": {
            "type": "token_count", "info": {"total_token_usage": cumulative,
                                            "last_token_usage": last}}}).encode()

    def usage(inp: Any, out: Any) -> dict[str, Any]:
        return {"input_tokens": inp, "cached_input_tokens": 0, "output_tokens": out,
                "reasoning_output_tokens": 0, "total_tokens": 0}

    for k in range(3):  # valid rows
        total[0] += 100
        total[1] += 10
        lines.append(row(_iso(NOW_MS - 3_600_000 + k * 1000), usage(100, 10),
                         usage(total[0], total[1])))
        expected += 110
    for ts in ("9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", _iso(LATEST_MS + 1000),
               "1999-12-31T23:59:59Z"):
        lines.append(row(ts, usage(5, 5), usage(total[0] + 5, total[1] + 5)))
    for bad in (1e309, 2**70, 10**10, -5, "5", 1.5):
        lines.append(row(_iso(NOW_MS - 1_800_000), usage(bad, 1), usage(bad, total[1] + 1)))
    lines.append(row(_iso(NOW_MS - 1_800_000), usage(5, 5),
                     usage(total[0] + 5, total[1] + 5)).replace(b"5,", b"NaN,", 1))
    return b"\n".join(lines) + b"\n", expected


# --- scanners agree -------------------------------------------------------------------

def _claude_scanners() -> list[Any]:
    return [m for m in (twins.compiled_module("claude"), twins.pure_module("claude"))
            if m is not None]


def _codex_readers() -> list[Any]:
    """(data) -> items for codex.parse: the compiled codex_events and the twin's lines."""
    readers = [lambda data: twins.pure_module("codex").candidate_lines(
        data, 0, len(data), codex._NEEDLES)]
    compiled = twins.compiled_module("codex")
    if compiled is not None:
        readers.append(lambda data: compiled.codex_events(data, 0, len(data), codex._NEEDLES))
    return readers


def test_compiled_bounds_are_validate_bounds() -> None:
    """The compiled scanner's C constants are validate.py's (one definition, checked)."""
    compiled = twins.built(twins.compiled_module("claude"))
    assert compiled.LIMITS == validate.LIMITS


@pytest.mark.parametrize("scanner", twins.each("claude"))
def test_hostile_lines_agree(scanner: Any) -> None:
    scanner = twins.built(scanner)
    for name, line, tokens in hostile_claude():
        data = line + b"\n"
        got = scanner.scan(data, 0, LATEST_MS)
        assert got == _claude_py.scan(data, 0, LATEST_MS), name
        ref = reference(data, LATEST_MS)
        if name != "100k-deep nesting":  # json.loads' recursion limit: malformed too
            assert got == ref, name
        if tokens is None:
            assert got[0] == [] and got[2] == 1, name
        else:
            assert got[2] == 0 and len(got[0]) == 1, name
            assert got[0][0][7] + got[0][0][8] == tokens, name


@pytest.mark.parametrize("scanner", twins.each("claude"))
def test_latest_defaults_to_now_plus_a_day(scanner: Any, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    scanner = twins.built(scanner)
    monkeypatch.delenv(validate.LATEST_ENV, raising=False)
    now = int(time.time() * 1000)
    soon = claude_line(1, ts=_iso(now + validate.FUTURE_MS - 60_000)) + b"\n"
    late = claude_line(2, ts=_iso(now + validate.FUTURE_MS + 60_000)) + b"\n"
    assert len(scanner.scan(soon, 0)[0]) == 1
    assert scanner.scan(late, 0)[2] == 1
    monkeypatch.setenv(validate.LATEST_ENV, str(now + 2 * validate.FUTURE_MS))
    assert len(scanner.scan(late, 0)[0]) == 1


def test_huge_line(tmp_path: Path) -> None:
    """A 200 MB usage line: read by both scanners (it is valid), in reasonable time."""
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as fh:
        fh.write(claude_line(1, extra=',"content":"' + "x" * (200 << 20) + '"') + b"\n")
        fh.write(claude_line(2) + b"\n")
    data = path.read_bytes()
    for scanner in _claude_scanners():
        records, end, bad = scanner.scan(data, 0, LATEST_MS)
        assert (len(records), end, bad) == (2, len(data), 0)


# --- the CLI, end to end ----------------------------------------------------------------

def _tokline() -> list[str]:
    script = Path(sys.executable).with_name("tokline")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tokline"]


COMMANDS = [["scan"], ["refresh"], ["status"], ["graph"], ["export"], ["export", "--json"],
            *([c] for c in ("daily", "weekly", "monthly", "blocks", "session", "models",
                            "projects")),
            *([c, "--json"] for c in ("daily", "weekly", "monthly", "blocks", "session",
                                      "models", "projects")),
            ["daily", "--tz", "Pacific/Kiritimati"], ["daily", "--tz", "Etc/GMT+12"],
            ["blocks", "--tz", "Pacific/Kiritimati"], ["doctor"]]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*_tokline(), *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert "Traceback" not in proc.stderr, (args, proc.stderr)
    assert "Traceback" not in proc.stdout, (args, proc.stdout)
    return proc


def _daily_tokens(env: dict[str, str]) -> int:
    proc = _run(["daily", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    return sum(row["input_tokens"] + row["output_tokens"]
               for row in json.loads(proc.stdout)["rows"])


@pytest.fixture
def hostile_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, **{validate.LATEST_ENV: str(LATEST_MS),
                              "TOKLINE_LEDGER": str(home / "ledger.sqlite3")})
    return env


def test_cli_survives_hostile_logs(home: Path, hostile_env: dict[str, str]) -> None:
    project = home / ".claude" / "projects" / "-tmp-hostile"
    project.mkdir(parents=True)
    cases = [c for c in hostile_claude() if c[0] != f"input {10**10 - 1}"]
    (project / "s.jsonl").write_bytes(b"\n".join(line for _, line, _ in cases) + b"\n")
    rollout, codex_tokens = codex_rollout()
    day = home / ".codex" / "sessions" / "2026" / "01" / "01"
    day.mkdir(parents=True)
    (day / "rollout-2026-01-01T00-00-00-sess.jsonl").write_bytes(rollout)
    expected = sum(t for _, _, t in cases if t is not None) + codex_tokens
    for args in COMMANDS:
        proc = _run(args, hostile_env)
        # doctor: 1 when it found problems itself, 0 when an earlier command had
        assert proc.returncode in ((0, 1) if args == ["doctor"] else (0,)), (args, proc.stderr)
    assert _daily_tokens(hostile_env) == expected
    doctor = _run(["doctor"], hostile_env).stdout
    assert re.search(r"s\.jsonl:1: malformed line skipped \(timestamp out of range\)",
                     doctor + "".join(_problems(hostile_env))), doctor
    with Ledger(hostile_env["TOKLINE_LEDGER"]) as led:
        (files_bad,) = led.db.execute("SELECT sum(malformed) FROM files").fetchone()
        (worst,) = led.db.execute("SELECT max(input + output + cache_read) FROM usage").fetchone()
    assert files_bad == sum(1 for _, _, t in cases if t is None) + 11
    assert worst < 10**10
    # the log deleted: what was stored stays, and nothing absurd was stored
    (project / "s.jsonl").unlink()
    assert _run(["refresh"], hostile_env).returncode == 0
    assert _daily_tokens(hostile_env) == expected


def _problems(env: dict[str, str]) -> list[str]:
    with Ledger(env["TOKLINE_LEDGER"]) as led:
        seen = led.get_meta("problems")
    return json.loads(seen) if seen else []


def test_doctor_names_few_examples_per_file(home: Path, hostile_env: dict[str, str]) -> None:
    project = home / ".claude" / "projects" / "-tmp-many"
    project.mkdir(parents=True)
    lines = [claude_line(i, ts="9999-12-31T23:59:59Z") for i in range(500)]
    lines.insert(0, claude_line(1000))
    (project / "s.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    proc = _run(["doctor"], hostile_env)
    problems = [p for p in proc.stdout.splitlines() if "s.jsonl" in p]
    assert [p.split("s.jsonl")[1] for p in problems] == [
        ":2: malformed line skipped (timestamp out of range)",
        ":3: malformed line skipped (timestamp out of range)",
        ":4: malformed line skipped (timestamp out of range)",
        ": 497 more malformed lines skipped"]
    assert _daily_tokens(hostile_env) == 15


# --- the quarantine migration ------------------------------------------------------------

def _schema5_ledger(path: Path) -> None:
    """A ledger as tokline at schema 5 left it, with rows that are out of range now."""
    db = sqlite3.connect(path)
    db.executescript(schema.CURRENT.replace(schema.QUARANTINE_TABLE, "")
                     .replace(schema.DEVICE_TABLES, "")
                     .replace(",\n    device INTEGER NOT NULL DEFAULT @DEVICE@,"
                              "\n    synced INTEGER NOT NULL DEFAULT 0", ""))
    db.execute("INSERT INTO meta VALUES ('schema', '5')")
    db.execute("INSERT INTO contexts VALUES (1, 'claude', 's', '/p', 'claude-sonnet-4-5')")
    good = NOW_MS - 3_600_000
    rows = [(1, good, 10, 5, None), (2, 253402300799000, 10, 5, None),  # 9999-12-31
            (3, -62167219200000, 10, 5, None), (4, good, 2**53, 5, None),
            (5, good, 10, -3, None), (6, good, 10, 5, 1e12), (7, good, 20, 5, 0.5)]
    db.executemany("INSERT INTO usage VALUES (?,?,1,?,?,0,0,0,0,?,0,NULL,0)", rows)
    db.commit()
    db.close()


def test_quarantine_migration_moves_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _schema5_ledger(path)
    with Ledger(path) as led:
        assert led.get_meta("schema") == str(schema.SCHEMA_VERSION)
        kept = sorted(r[0] for r in led.db.execute("SELECT key FROM usage"))
        moved = dict(led.db.execute("SELECT key, reason FROM quarantine").fetchall())
    assert kept == [1, 7]
    assert moved == {2: validate.R_TIME, 3: validate.R_TIME, 4: validate.R_COUNT,
                     5: validate.R_COUNT, 6: validate.R_COST}
    with Ledger(path) as led:  # once only
        (count,) = led.db.execute("SELECT count(*) FROM quarantine").fetchone()
    assert count == 5


def test_reports_after_quarantine(home: Path, hostile_env: dict[str, str]) -> None:
    _schema5_ledger(Path(hostile_env["TOKLINE_LEDGER"]))
    for args in COMMANDS:
        proc = _run(args, hostile_env)
        # doctor: 1 when it found problems itself, 0 when an earlier command had
        assert proc.returncode in ((0, 1) if args == ["doctor"] else (0,)), (args, proc.stderr)
    assert _daily_tokens(hostile_env) == 15 + 25
    assert "5 usage row(s) quarantined" in _run(["doctor"], hostile_env).stdout


# --- fuzz: real fixture lines, mutated ---------------------------------------------------

def _fixture_lines(source: str, needle: bytes, limit: int) -> list[bytes]:
    found: list[bytes] = []
    for path in sorted((FIXTURES / source).rglob("*.jsonl")):
        found += [line for line in path.read_bytes().split(b"\n") if needle in line]
    random.Random(14).shuffle(found)
    return found[:limit]


CLAUDE_LINES = _fixture_lines("claude", b'"usage"', 300) if FIXTURES.is_dir() else []
CODEX_LINES = _fixture_lines("codex", b'"token_count"', 300) if FIXTURES.is_dir() else []
HOSTILE_VALUES = [b"1e309", str(2**70).encode(), str(10**10).encode(), b"-5", b'"5"', b"NaN",
                  b"Infinity", b"1.5", b"2.0", b"null", b"true", b"-0", b"9999999999",
                  b'"9999-12-31T23:59:59Z"', b'"0000-01-01T00:00:00Z"',
                  b'"1999-12-31T23:59:59Z"', b'"2000-01-01T00:00:00Z"', b"[[[[[[]]]]]]"]
NUMBER = re.compile(rb"(?<=:)-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
STAMP = re.compile(rb'"\d{4}-\d\d-\d\dT[^"]*"')


@st.composite
def mutated(draw: st.DrawFn, lines: list[bytes]) -> bytes:
    line = draw(st.sampled_from(lines))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.integers(0, 4))
        spots = list((NUMBER if how <= 1 else STAMP).finditer(line))
        if how <= 2 and spots:
            m = draw(st.sampled_from(spots))
            value = draw(st.sampled_from(HOSTILE_VALUES)) if how != 1 else \
                str(draw(st.integers(-10, 2**70))).encode()
            line = line[:m.start()] + value + line[m.end():]
        elif how == 3 and line:
            at = draw(st.integers(0, len(line) - 1))
            line = line[:at] + draw(st.binary(min_size=1, max_size=3)) + line[at + 1:]
        else:
            line = line[:draw(st.integers(0, len(line)))]
    return line.replace(b"\n", b" ")


def _examples() -> int:
    return 2000 if os.environ.get("CI") else 300


@pytest.mark.skipif(not CLAUDE_LINES, reason="no fixtures")
@settings(max_examples=_examples(), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(mutated(CLAUDE_LINES), min_size=1, max_size=3))
def test_fuzz_claude_lines(lines: list[bytes]) -> None:
    data = b"\n".join(lines) + b"\n"
    twin = _claude_py.scan(data, 0, LATEST_MS)
    assert twin == reference(data, LATEST_MS)
    for scanner in _claude_scanners():
        assert scanner.scan(data, 0, LATEST_MS) == twin
    for record in twin[0]:
        assert validate.TS_MIN_MS <= record[1] <= LATEST_MS
        assert all(0 <= v < validate.COUNT_LIMIT for v in record[7:13])


@pytest.mark.skipif(not CODEX_LINES, reason="no fixtures")
@settings(max_examples=_examples(), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(lines=st.lists(mutated(CODEX_LINES), min_size=1, max_size=3))
def test_fuzz_codex_lines(lines: list[bytes], monkeypatch_latest: None) -> None:
    data = b"\n".join(lines) + b"\n"
    results = []
    for reader in _codex_readers():
        state = codex.FileState(None, "x.jsonl")
        results.append(codex.parse(reader(data), state, lambda _ts, _limits: None))
    assert all(r == results[0] for r in results)
    events, bad = results[0]
    candidates = [line for line in lines if any(n in line for n in codex._NEEDLES)]
    assert bad == sum(1 for line in candidates if codex.line_problem(line, LATEST_MS))
    for event in events:
        assert validate.TS_MIN_MS <= event[0] <= LATEST_MS
        assert all(0 <= v < validate.COUNT_LIMIT for v in event[5])


@pytest.fixture(scope="module")
def monkeypatch_latest() -> Any:
    old = os.environ.get(validate.LATEST_ENV)
    os.environ[validate.LATEST_ENV] = str(LATEST_MS)
    yield
    if old is None:
        del os.environ[validate.LATEST_ENV]
    else:
        os.environ[validate.LATEST_ENV] = old
