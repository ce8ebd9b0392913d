"""Gemini CLI, OpenCode and Copilot CLI: fixtures worked out by hand."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import FIXTURES

from tokline import cli
from tokline.engine.refresh import refresh
from tokline.ledger.store import Ledger, StoredUsage


def _copy(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, dest)


def _rows(ledger: Ledger, source: str) -> list[StoredUsage]:
    return sorted(ledger.usage(sources=[source]), key=lambda r: r.ts_ms)


def _tokens(row: StoredUsage) -> int:
    return row.input + row.output + row.cache_5m + row.cache_1h + row.cache_read


def test_gemini_jsonl_last_record_per_message(home: Path, ledger: Ledger) -> None:
    # formats.md §3: 11 gemini records with tokens but 6 ids; naive Σtotal 373,199,
    # last record per id 206,879 (total = input + output + thoughts + tool).
    _copy(FIXTURES / "gemini" / "vibecodingtracker" / "gemini.jsonl",
          home / ".gemini" / "tmp" / "proj" / "chats" / "session-2026-04-23T12-52-0ab84937.jsonl")
    refresh(ledger, {"HOME": str(home)})
    rows = _rows(ledger, "gemini")
    assert len(rows) == 6
    assert sum(_tokens(r) for r in rows) == 206_879
    assert {r.session_id for r in rows} == {"0ab84937-9fe7-4284-986a-33c832af0b6a"}


def test_gemini_legacy_json(home: Path, ledger: Ledger) -> None:
    base = FIXTURES / "gemini" / "toktrack"
    for name in ("tmp123/chats/session-abc123.json", "tmp456/chats/session-no-session-model.json"):
        _copy(base / name, home / ".gemini" / "tmp" / name)
    refresh(ledger, {"HOME": str(home)})
    got = [(r.session_id, r.model, r.input, r.cache_read, r.output)
           for r in _rows(ledger, "gemini")]
    # input counts the cached part, so uncached = input - cached; thoughts bill as output
    assert got == [
        ("abc123", "gemini-2.5-pro", 80, 20, 80), ("abc123", "gemini-2.5-pro", 200, 50, 250),
        ("no-session-model", "gemini-2.5-pro", 500, 0, 100),
        ("no-session-model", "gemini-2.5-flash", 190, 10, 70)]


def test_gemini_rewritten_legacy_file_updates_its_rows(home: Path, ledger: Ledger) -> None:
    path = home / ".gemini" / "tmp" / "p" / "chats" / "session-x.json"
    doc = {"sessionId": "x", "model": "gemini-2.5-pro", "messages": [
        {"id": "m1", "type": "gemini", "timestamp": "2026-11-01T10:00:00Z",
         "tokens": {"input": 10, "output": 5}}]}
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    refresh(ledger, {"HOME": str(home)})
    doc["messages"][0]["tokens"] = {"input": 10, "output": 9}
    doc["messages"].append({"id": "m2", "type": "gemini", "timestamp": "2026-11-01T10:01:00Z",
                            "tokens": {"input": 3, "output": 1}})
    path.write_text(json.dumps(doc, indent=1))
    refresh(ledger, {"HOME": str(home)})
    assert [(r.input, r.output) for r in _rows(ledger, "gemini")] == [(10, 9), (3, 1)]


def test_opencode_legacy_json_messages(home: Path, ledger: Ledger) -> None:
    storage = home / ".local" / "share" / "opencode" / "storage" / "message"
    for path in (FIXTURES / "opencode" / "toktrack" / "storage" / "message" / "ses_test").glob("*"):
        _copy(path, storage / "ses_test" / path.name)
    tokscale = FIXTURES / "opencode" / "tokscale" / "storage" / "message" / "test-project"
    _copy(tokscale / "msg_test001.json", storage / "test-project" / "msg_test001.json")
    refresh(ledger, {"HOME": str(home)})
    rows = _rows(ledger, "opencode")
    # msg_003 has no tokens; reasoning (150) is billed on top of output (800)
    assert [(r.input, r.output, r.cache_5m, r.cache_read, r.cost_usd) for r in rows] == [
        (1000, 500, 100, 200, None), (1000, 500, 50, 100, 0.05), (2000, 950, 100, 200, 0.12)]


def _opencode_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE session(id TEXT PRIMARY KEY, directory TEXT);
        CREATE TABLE message(id TEXT PRIMARY KEY, session_id TEXT, time_created INTEGER,
                             time_updated INTEGER, data TEXT);
        CREATE TABLE session_v2(id TEXT PRIMARY KEY, fork_session_id TEXT,
                                fork_boundary INTEGER);
        CREATE TABLE session_message(id TEXT PRIMARY KEY, session_id TEXT, type TEXT,
                                     seq INTEGER, time_created INTEGER, time_updated INTEGER,
                                     data TEXT);
        INSERT INTO session VALUES ('s1', '/repo');
    """)

    def data(model: str, inp: int, ts: int, v2: bool = False) -> str:
        body: dict[str, object] = {"role": "assistant", "time": {"created": ts},
                                   "tokens": {"input": inp, "output": 10,
                                              "cache": {"read": 0, "write": 0}}}
        if v2:
            body["model"] = {"id": model, "providerID": "anthropic"}
        else:
            body["modelID"] = model
        return json.dumps(body)

    db.execute("INSERT INTO message VALUES ('m1','s1',1,1,?)",
               (data("claude-sonnet-4-5", 100, 1762000000000),))
    db.execute("INSERT INTO message VALUES ('m2','s1',2,2,?)",
               (json.dumps({"role": "user", "time": {"created": 1}}),))
    db.executemany("INSERT INTO session_message VALUES (?,?,?,?,?,?,?)", [
        ("a1", "p", "assistant", 1, 3, 3, data("claude-opus-4-5", 200, 1762000100000, True)),
        ("a2", "p", "assistant", 2, 4, 4, data("claude-opus-4-5", 300, 1762000200000, True)),
        # the fork copies the parent's two messages with new ids, then adds its own
        ("c1", "f", "assistant", 1, 5, 5, data("claude-opus-4-5", 200, 1762000100000, True)),
        ("c2", "f", "assistant", 2, 6, 6, data("claude-opus-4-5", 300, 1762000200000, True)),
        ("c3", "f", "assistant", 3, 7, 7, data("claude-opus-4-5", 50, 1762000300000, True)),
    ])
    db.execute("INSERT INTO session_v2 VALUES ('f', 'p', 2)")
    db.commit()
    db.close()


def test_opencode_sqlite_v1_and_v2_without_fork_copies(home: Path, ledger: Ledger) -> None:
    root = home / ".local" / "share" / "opencode"
    root.mkdir(parents=True)
    _opencode_db(root / "opencode.db")
    refresh(ledger, {"HOME": str(home)})
    rows = _rows(ledger, "opencode")
    assert [r.input for r in rows] == [100, 200, 300, 50]
    assert rows[0].project == "/repo" and rows[0].model == "claude-sonnet-4-5"
    # a later write: only rows updated since the last read are read again
    db = sqlite3.connect(root / "opencode.db")
    db.execute("UPDATE session_message SET time_updated = 9, data = json_set(data,"
               " '$.tokens.output', 99) WHERE id = 'c3'")
    db.commit()
    db.close()
    refresh(ledger, {"HOME": str(home)})
    assert [(r.input, r.output) for r in _rows(ledger, "opencode")][-1] == (50, 99)
    assert len(_rows(ledger, "opencode")) == 4


def test_copilot_events(home: Path, ledger: Ledger) -> None:
    # six replies carry 2,848 output tokens; the shutdown's model metrics add the input
    # (186,809, of which 151,738 cache reads) without counting the output again.
    _copy(FIXTURES / "copilot" / "vibecodingtracker" / "copilot.jsonl",
          home / ".copilot" / "session-state" / "96ef38f0" / "events.jsonl")
    refresh(ledger, {"HOME": str(home)})
    rows = _rows(ledger, "copilot")
    assert sum(r.output for r in rows) == 2848
    assert sum(r.input + r.cache_read for r in rows) == 186_809
    assert sum(r.cache_read for r in rows) == 151_738
    assert {r.model for r in rows} == {"claude-sonnet-4.6"}
    assert {r.project for r in rows} == {"/home/wei/repo/VibeCodingTracker"}


def test_reports_filter_and_break_down_by_source(home: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _copy(FIXTURES / "copilot" / "vibecodingtracker" / "copilot.jsonl",
          home / ".copilot" / "session-state" / "x" / "events.jsonl")
    _copy(FIXTURES / "gemini" / "vibecodingtracker" / "gemini.jsonl",
          home / ".gemini" / "tmp" / "p" / "chats" / "session-a.jsonl")
    assert cli.main(["daily", "--json", "--source", "gemini"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"]["total_tokens"] == 206_879
    assert cli.main(["daily", "--json"]) == 0
    everything = json.loads(capsys.readouterr().out)
    assert set(everything["totals"]["sources"]) == {"gemini", "copilot"}
    assert everything["totals"]["sources"]["gemini"]["total_tokens"] == 206_879


def test_missing_sources_are_silent(home: Path, ledger: Ledger) -> None:
    report = refresh(ledger, {"HOME": str(home)})
    assert report.files_seen == 0 and report.problems == []


def test_status_per_source(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _copy(FIXTURES / "codex" / "vibecodingtracker" / "codex_session_rate_limits.jsonl",
          home / ".codex" / "sessions" / "2026" / "06" / "09" / "r.jsonl")
    _copy(FIXTURES / "gemini" / "vibecodingtracker" / "gemini.jsonl",
          home / ".gemini" / "tmp" / "p" / "chats" / "session-a.jsonl")
    assert cli.main(["scan", "-q"]) == 0
    assert cli.main(["status", "--json", "--source", "codex"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert {w["source"] for w in view["quota"]} == {"codex"}
    assert cli.main(["status", "--format", "{quota.codex.5h} {quota.codex.7d}",
                     "--target", "plain"]) == 0
    # read in June: older than Codex's cache time, so marked as an old value
    assert capsys.readouterr().out.strip() == "42%* 69%*"


def test_opencode_read_while_opencode_writes(home: Path, ledger: Ledger) -> None:
    root = home / ".local" / "share" / "opencode"
    root.mkdir(parents=True)
    _opencode_db(root / "opencode.db")
    writer = sqlite3.connect(root / "opencode.db", isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE message SET time_updated = 50 WHERE id = 'm1'")  # not committed
    try:
        report = refresh(ledger, {"HOME": str(home)})
        assert report.problems == []
        assert [r.input for r in _rows(ledger, "opencode")] == [100, 200, 300, 50]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
