"""The offset ledger: appends, rewrites, truncation, deletion, concurrency and crashes."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import FIXTURES, claude_projects, do_refresh, rows_by_key, totals
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokline.errors import LedgerError
from tokline.ledger.schema import SCHEMA_VERSION
from tokline.ledger.store import Ledger

SPOTTER_DIR = FIXTURES / "claude" / "spotter" / "projects" / (
    "-home-USER-projects-spotter-worktrees-spotter-4te")
MAIN = SPOTTER_DIR / "ae4a77f8-aedd-4bc1-888f-c94edc91af04.jsonl"
SUBAGENT = (SPOTTER_DIR / "ae4a77f8-aedd-4bc1-888f-c94edc91af04" / "subagents"
            / "agent-aac57f5.jsonl")
EXPECTED = (2445, 2034, 197529, 335139, 14)


def _install(home: Path, name: str, data: bytes) -> Path:
    path = claude_projects(home) / "proj" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _spotter_into(home: Path) -> None:
    dest = claude_projects(home) / SPOTTER_DIR.name
    shutil.copytree(SPOTTER_DIR, dest)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=60_000), min_size=1, max_size=12),
       st.lists(st.integers(min_value=1, max_value=20_000), min_size=1, max_size=6))
def test_chunked_appends_equal_one_scan(main_cuts: list[int], sub_cuts: list[int]) -> None:
    """Bytes arriving in arbitrary pieces (mid-line included), with a refresh after each,
    end in exactly the ledger one scan of the whole files gives."""
    main, sub = MAIN.read_bytes(), SUBAGENT.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        main_path = _install(home, "main.jsonl", b"")
        sub_path = _install(home, "main/subagents/agent-x.jsonl", b"")
        with Ledger(Path(tmp) / "chunked.sqlite3") as chunked:
            pos_main = pos_sub = 0
            steps = max(len(main_cuts), len(sub_cuts))
            for i in range(steps + 1):
                if i < len(main_cuts) and i < steps:
                    nxt = min(len(main), pos_main + main_cuts[i])
                else:
                    nxt = len(main)
                with main_path.open("ab") as fh:
                    fh.write(main[pos_main:nxt])
                pos_main = nxt
                nxt = min(len(sub), pos_sub + sub_cuts[i]) if i < len(sub_cuts) else len(sub)
                with sub_path.open("ab") as fh:
                    fh.write(sub[pos_sub:nxt])
                pos_sub = nxt
                do_refresh(chunked, home)
            got = rows_by_key(chunked)
        with Ledger(Path(tmp) / "once.sqlite3") as once:
            do_refresh(once, home)
            assert rows_by_key(once) == got
            assert len(got) == 13  # the oracle's 14 keys less the compaction call


def test_unchanged_files_are_not_read_again(home: Path, ledger: Ledger) -> None:
    _spotter_into(home)
    first = do_refresh(ledger, home)
    second = do_refresh(ledger, home)
    assert first.files_scanned == 3 and second.files_scanned == 0
    assert totals(ledger) == EXPECTED


def test_append_scans_only_new_bytes(home: Path, ledger: Ledger) -> None:
    main = MAIN.read_bytes()
    half = main.rfind(b"\n", 0, len(main) // 2) + 1
    path = _install(home, "s.jsonl", main[:half])
    do_refresh(ledger, home)
    with path.open("ab") as fh:
        fh.write(main[half:])
    report = do_refresh(ledger, home)
    assert report.bytes_scanned == len(main) - half
    assert report.files_rescanned == 0


def test_rewritten_file_is_rescanned_without_double_counting(home: Path, ledger: Ledger) -> None:
    _spotter_into(home)
    do_refresh(ledger, home)
    main = claude_projects(home) / SPOTTER_DIR.name / MAIN.name
    # Same content written through a new inode (an editor's save, a sync tool)
    tmp = main.with_suffix(".tmp")
    tmp.write_bytes(main.read_bytes())
    os.replace(tmp, main)
    report = do_refresh(ledger, home)
    assert report.files_rescanned == 1 or report.files_scanned == 1
    assert totals(ledger) == EXPECTED


def test_truncated_and_regrown_file(home: Path, ledger: Ledger) -> None:
    main = MAIN.read_bytes()
    path = _install(home, "s.jsonl", main)
    do_refresh(ledger, home)
    before = totals(ledger)
    path.write_bytes(main[:1000])  # truncated in place: same inode, smaller
    report = do_refresh(ledger, home)
    assert report.files_rescanned == 1
    assert totals(ledger) == before  # history kept, nothing doubled
    path.write_bytes(main)
    do_refresh(ledger, home)
    assert totals(ledger) == before


def test_head_rewritten_same_size_is_detected(home: Path, ledger: Ledger) -> None:
    first = (b'{"type":"assistant","timestamp":"2026-01-01T00:00:00Z","requestId":"r1",'
             b'"message":{"id":"m1","model":"x","usage":{"input_tokens":5}}}\n')
    second = first.replace(b'"r1"', b'"r2"').replace(b'"m1"', b'"m2"')
    path = _install(home, "s.jsonl", first)
    do_refresh(ledger, home)
    st = path.stat()
    path.write_bytes(second)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    do_refresh(ledger, home)
    assert totals(ledger)[0] == 10  # both responses: the rewrite was read from the start


def test_deleted_logs_keep_their_history(home: Path, ledger: Ledger) -> None:
    _spotter_into(home)
    do_refresh(ledger, home)
    shutil.rmtree(claude_projects(home))
    do_refresh(ledger, home)
    assert totals(ledger) == EXPECTED


def test_copies_in_another_file_update_one_row(home: Path, ledger: Ledger) -> None:
    """A resumed session copies earlier responses (same ids) into a new file."""
    _spotter_into(home)
    do_refresh(ledger, home)
    _install(home, "resumed.jsonl", MAIN.read_bytes())
    do_refresh(ledger, home)
    assert totals(ledger) == EXPECTED


def test_sidechain_replay_is_shadowed_by_the_main_response(home: Path, ledger: Ledger) -> None:
    main = (b'{"type":"assistant","timestamp":"2026-01-01T00:00:00Z","requestId":"r1",'
            b'"sessionId":"s","message":{"id":"m1","model":"x","usage":{"input_tokens":7}}}\n')
    replay = main.replace(b'"r1"', b'"r9"').replace(b'"type"', b'"isSidechain":true,"type"')
    _install(home, "side.jsonl", replay)
    do_refresh(ledger, home)
    assert totals(ledger)[0] == 7  # alone, the sidechain copy counts
    _install(home, "main.jsonl", main)
    do_refresh(ledger, home)
    assert totals(ledger)[0] == 7 and totals(ledger)[4] == 1


def test_failed_refresh_leaves_the_ledger_as_committed(home: Path, ledger: Ledger,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _spotter_into(home)
    calls = {"n": 0}
    original = Ledger.save_files

    def boom(self: Ledger, states: object) -> None:
        calls["n"] += 1
        original(self, states)  # type: ignore[arg-type]
        raise RuntimeError("power cut")

    monkeypatch.setattr(Ledger, "save_files", boom)
    with pytest.raises(RuntimeError):
        do_refresh(ledger, home)
    monkeypatch.setattr(Ledger, "save_files", original)
    assert totals(ledger) == (0, 0, 0, 0, 0)
    do_refresh(ledger, home)
    assert totals(ledger) == EXPECTED


def _scan_cmd(home: Path, ledger_path: Path) -> list[str]:
    code = ("import sys; from pathlib import Path; from tokline.ledger.store import Ledger;"
            "from tokline.engine.refresh import refresh;"
            f"l = Ledger(Path({str(ledger_path)!r})); refresh(l, {{'HOME': {str(home)!r}}})")
    return [sys.executable, "-c", code]


def test_concurrent_refreshes_count_once(home: Path, tmp_path: Path) -> None:
    _spotter_into(home)
    path = tmp_path / "shared.sqlite3"
    procs = [subprocess.Popen(_scan_cmd(home, path)) for _ in range(6)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    with Ledger(path) as led:
        assert totals(led) == EXPECTED
        (files,) = led.db.execute("SELECT count(*) FROM files").fetchone()
        assert files == 3


def test_killed_scan_loses_nothing_committed(tmp_path: Path) -> None:
    from conftest import GENCORPUS

    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, str(GENCORPUS), "--out", str(corpus), "--size", "12M",
                    "--seed", "5", "--end", "2026-11-20T12:00:00Z"], check=True,
                   capture_output=True)
    path = tmp_path / "k.sqlite3"
    import time

    for delay in (0.05, 0.15, 0.3):
        proc = subprocess.Popen(_scan_cmd(corpus, path))
        time.sleep(delay)
        proc.kill()
        proc.wait()
    with Ledger(path) as led:
        do_refresh(led, corpus)
        with Ledger(tmp_path / "clean.sqlite3") as clean:
            do_refresh(clean, corpus)
            assert totals(led) == totals(clean)
            assert rows_by_key(led) == rows_by_key(clean)


def test_corrupt_ledger_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match="tokline scan --rebuild"):
        Ledger(path)


def test_ledger_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite3"
    Ledger(path).close()
    assert path.stat().st_mode & 0o077 == 0
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unreadable_file_is_reported_and_the_rest_counted(home: Path, ledger: Ledger) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    _spotter_into(home)
    bad = _install(home, "locked.jsonl", MAIN.read_bytes())
    bad.chmod(0)
    report = do_refresh(ledger, home)
    assert any("locked.jsonl" in p for p in report.problems)
    assert totals(ledger) == EXPECTED


def test_schema_2_ledger_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema', '2');
        CREATE TABLE files(path TEXT PRIMARY KEY, source TEXT NOT NULL, dev INTEGER NOT NULL,
            ino INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
            head_len INTEGER NOT NULL, head_crc INTEGER NOT NULL, offset INTEGER NOT NULL,
            malformed INTEGER NOT NULL DEFAULT 0, state TEXT);
        CREATE TABLE contexts(id INTEGER PRIMARY KEY, source TEXT NOT NULL,
            session_id TEXT NOT NULL, project TEXT NOT NULL, model TEXT NOT NULL,
            UNIQUE(source, session_id, project, model));
        CREATE TABLE usage(key INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,
            ctx INTEGER NOT NULL, input INTEGER NOT NULL, output INTEGER NOT NULL,
            cache_5m INTEGER NOT NULL, cache_1h INTEGER NOT NULL, cache_read INTEGER NOT NULL,
            web_search INTEGER NOT NULL, cost_usd REAL, flags INTEGER NOT NULL);
        CREATE INDEX usage_ts ON usage(ts_ms);
        INSERT INTO contexts VALUES (1, 'claude', 's', '/p', 'claude-opus-4-5');
        INSERT INTO usage VALUES (7, 1700000000000, 1, 10, 20, 0, 0, 0, 0, NULL, 0);
    """)
    db.commit()
    db.close()
    with Ledger(path) as led:
        assert totals(led) == (10, 20, 0, 0, 1)
        assert led.get_meta("schema") == str(SCHEMA_VERSION)


def test_unreadable_file_is_reported_once(home: Path, ledger: Ledger,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import tokline.engine.filescan as logscan

    _spotter_into(home)
    bad = _install(home, "locked.jsonl", MAIN.read_bytes())
    real_open = os.open

    def deny(path: str, *args: object, **kwargs: object) -> int:
        if str(path) == str(bad):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(logscan.os, "open", deny)
    # the compiled scan_path opens files itself (tests/test_scan_differential.py holds its
    # errors to os.open's): the Python bookkeeping here, for os.open to deny
    monkeypatch.setattr(logscan, "scan_path", None)
    first = do_refresh(ledger, home)
    assert any("locked.jsonl" in p for p in first.new_problems)
    assert totals(ledger) == EXPECTED
    second = do_refresh(ledger, home)
    assert any("locked.jsonl" in p for p in second.problems) and second.new_problems == []


def test_changes_tell_the_oldest_time_written_since_a_change(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from tokline.ledger import store as ledger_mod

    def row(key: int, ts: int, out: int) -> tuple[int, ...]:
        return (key, ts, 1, 10, out, 0, 0, 0, 0, None, 0, None, 0)

    with Ledger(tmp_path / "l.sqlite3") as led:
        with led.write():
            ctx = led.context_id("claude", "s", "p", "m")
            assert ctx == 1
            led.upsert_usage([row(1, 5_000, 1), row(2, 9_000, 1)])  # type: ignore[list-item]
        first, _ = led.changes_since(None)
        assert led.changes_since(first) == (first, None)
        with led.write():  # a later copy of row 1 changes a row from t=5000
            led.upsert_usage([row(1, 20_000, 2), row(3, 30_000, 1)])  # type: ignore[list-item]
        second, since = led.changes_since(first)
        assert second == first + 1 and since == 5_000
        with led.write():  # marking replays moves no time but changes a row
            led.note_change(ledger_mod.NO_CHANGE_MS)
            assert led.changes_since(second) == (second + 1, ledger_mod.NO_CHANGE_MS)
            led.db.execute("UPDATE usage SET flags = 32 WHERE key = 3")
        assert led.changes_since(second)[1] == 30_000
        with led.write():
            led.upsert_usage([row(4, 40_000, 1)])  # type: ignore[list-item]
            led.db.execute("UPDATE usage SET flags = 0 WHERE key = 2")
        assert led.changes_since(second + 1)[1] == 9_000
        assert led.changes_since(None)[1] == 0  # unknown: everything may have changed
        monkeypatch.setattr(ledger_mod, "CHANGES_KEPT", 1)
        with led.write():
            led.upsert_usage([row(5, 50_000, 1)])  # type: ignore[list-item]
        newest, since = led.changes_since(second)
        assert since == 0  # the changes after ``second`` were pruned: nothing can be told
        assert led.changes_since(newest) == (newest, None)


@pytest.mark.parametrize(("value", "threads"), [(None, 2), ("", 2), ("1", 1), ("4", 4),
                                                ("0", 2), ("-1", 2), ("x", 2), ("99", 2)])
def test_scan_threads_setting(value: str | None, threads: int) -> None:
    from tokline.engine.refresh import _scan_threads

    assert _scan_threads(value) == threads


def test_malformed_lines_count_once_whichever_decoder_finds_them(home: Path,
                                                                 ledger: Ledger) -> None:
    """A line the compiled parser rejects, and one it leaves to the twin's decoder (an
    escaped key) that has no valid time, are both counted, and only once a refresh."""
    good = (b'{"type":"assistant","timestamp":"2026-01-01T00:00:00Z","requestId":"r1",'
            b'"message":{"id":"m1","model":"x","usage":{"input_tokens":5}}}\n')
    broken = b'{"type":"assistant","message":{"usage":{"input_tokens":5}\n'
    slow = (b'{"typ\\u0065":"assistant","timestamp":"yesterday","requestId":"r2",'
            b'"message":{"id":"m2","model":"x","usage":{"input_tokens":7}}}\n')
    proj = claude_projects(home) / "p"
    proj.mkdir()
    log = proj / "s.jsonl"
    log.write_bytes(good + broken + slow)
    report = do_refresh(ledger, home)
    assert report.malformed == 2
    assert totals(ledger)[0] == 5
    assert ledger.counts()["malformed_lines"] == 2
    with log.open("ab") as fh:
        fh.write(good.replace(b"r1", b"r3").replace(b"m1", b"m3"))
    report = do_refresh(ledger, home)
    assert report.malformed == 0 and ledger.counts()["malformed_lines"] == 2
    assert totals(ledger)[0] == 10
