"""Issue 20: the running-total sources, Factory Droid, Goose and Crush (formats.md §10.5,
§10.8, §10.9), and the mechanism they share (tokline/sources/totals.py): each session's
cumulative totals become the increases between reads, kept in the ledger so that a
restart, ``scan --rebuild``, a deleted file or a sync loses nothing and counts nothing
twice.

The samples are built here from the documented shapes: Droid's settings JSON (as the
real Droid 0.215 writes it: tests/test_sources_totals.py's last test runs it), Goose's
``sessions`` table as its ``create_schema`` has it (two generations: without and with the
cache and cost columns), Crush's ``sessions``/``messages`` from its initial migration
plus the columns later migrations add.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokline import cli
from tokline.commands.scan import _keep_running_totals
from tokline.engine.refresh import refresh
from tokline.ledger import backups
from tokline.ledger.schema import SCHEMA_VERSION
from tokline.ledger.store import Ledger
from tokline.sources import crush, droid, goose, totals
from tokline.sync import exchange
from tokline.sync.device import local_id
from tokline.sync.targets import DirectoryTarget

# --- samples ------------------------------------------------------------------------

_mtime = [1_790_000_000_000_000_000]


def _touch(path: Path) -> None:
    """A later mtime on every write: two writes of one size within the file system's
    clock tick would otherwise look unchanged (as for every source read whole)."""
    _mtime[0] += 1_000_000_000
    os.utime(path, ns=(_mtime[0], _mtime[0]))


def droid_settings(root: Path, session: str, tokens: tuple[int, int, int, int, int],
                   model: str | None = "claude-opus-4-5-20251101", folder: str = "-home-u-proj",
                   extra: dict[str, Any] | None = None, touch: bool = True) -> Path:
    """``<folder>/<session>.settings.json`` as Droid writes it (keys of a real 0.215 file);
    tokens: input (uncached), output, cache creation, cache read, thinking."""
    inp, out, write, read, think = tokens
    doc: dict[str, Any] = {
        "assistantActiveTimeMs": 1725, "reasoningEffort": "none", "interactionMode": "auto",
        "autonomyLevel": "low", "autonomyMode": "auto-low", "tags": [{"name": "exec"}],
        "tokenUsage": {"inputTokens": inp, "outputTokens": out, "cacheCreationTokens": write,
                       "cacheReadTokens": read, "thinkingTokens": think, "factoryCredits": 0},
        "inclusiveTokenUsage": {"inputTokens": inp, "outputTokens": out,
                                "cacheCreationTokens": write, "cacheReadTokens": read,
                                "thinkingTokens": think, "factoryCredits": 0},
        "childInclusiveTokenUsageBySessionId": {},
        "providerLock": "anthropic", "providerLockTimestamp": "2026-10-17T20:20:30.671Z"}
    if model is not None:
        doc["model"] = model
    doc.update(extra or {})
    path = root / folder / f"{session}.settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    if touch:
        _touch(path)
    return path


# Goose's ``sessions`` as its create_schema makes it (crates/goose/src/session/
# session_manager.rs): an older generation, and one with the cache and cost columns,
# goose_mode, archived_at, project_id, parent_session_id and the usage_ledger table.
GOOSE_OLD = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY,
    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
    user_set_name BOOLEAN DEFAULT FALSE, session_type TEXT NOT NULL DEFAULT 'user',
    working_dir TEXT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, extension_data TEXT DEFAULT '{}',
    total_tokens INTEGER, input_tokens INTEGER, output_tokens INTEGER,
    accumulated_total_tokens INTEGER, accumulated_input_tokens INTEGER,
    accumulated_output_tokens INTEGER, schedule_id TEXT, recipe_json TEXT,
    user_recipe_values_json TEXT, provider_name TEXT, model_config_json TEXT,
    tenant_id TEXT, user_id TEXT);
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT,
    session_id TEXT NOT NULL REFERENCES sessions(id), role TEXT NOT NULL,
    content_json TEXT NOT NULL, created_timestamp INTEGER NOT NULL,
    timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP, tokens INTEGER, metadata_json TEXT);
CREATE INDEX idx_sessions_updated ON sessions(updated_at DESC);
"""
GOOSE_NEW = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY,
    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
    user_set_name BOOLEAN DEFAULT FALSE, session_type TEXT NOT NULL DEFAULT 'user',
    working_dir TEXT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, extension_data TEXT DEFAULT '{}',
    total_tokens INTEGER, input_tokens INTEGER, output_tokens INTEGER,
    cache_read_tokens INTEGER, cache_write_tokens INTEGER,
    accumulated_total_tokens INTEGER, accumulated_input_tokens INTEGER,
    accumulated_output_tokens INTEGER, accumulated_cache_read_tokens INTEGER,
    accumulated_cache_write_tokens INTEGER, accumulated_cost REAL,
    schedule_id TEXT, recipe_json TEXT, user_recipe_values_json TEXT,
    provider_name TEXT, model_config_json TEXT, goose_mode TEXT NOT NULL DEFAULT 'auto',
    archived_at TIMESTAMP, project_id TEXT, parent_session_id TEXT);
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT,
    session_id TEXT NOT NULL REFERENCES sessions(id), role TEXT NOT NULL,
    content_json TEXT NOT NULL, created_timestamp INTEGER NOT NULL,
    timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP, tokens INTEGER, metadata_json TEXT);
CREATE TABLE usage_ledger (id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_timestamp INTEGER NOT NULL, model TEXT, input_tokens INTEGER,
    output_tokens INTEGER, total_tokens INTEGER, cache_read_tokens INTEGER,
    cache_write_tokens INTEGER, cost REAL, cost_source TEXT, is_compaction INTEGER DEFAULT 0);
CREATE INDEX idx_sessions_updated ON sessions(updated_at DESC);
"""


class GooseDB:
    """A Goose ``sessions.db``, written as Goose writes it: a session row made, then every
    call's usage added to the accumulated columns with ``updated_at = datetime('now')``
    (here a chosen time), the per-call columns overwritten."""

    def __init__(self, path: Path, schema: str = GOOSE_NEW, wal: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.new = schema is GOOSE_NEW
        db = sqlite3.connect(path)
        if wal:
            db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
        db.commit()
        db.close()
        _touch(path)

    def create(self, ident: str, at: str = "2026-10-26 09:00:00", cwd: str = "/home/u/proj",
               model: str | None = "claude-sonnet-4-5", provider: str = "anthropic") -> None:
        config = json.dumps({"model_name": model, "context_limit": 200000}) if model else None
        with sqlite3.connect(self.path) as db:
            db.execute("INSERT INTO sessions (id, working_dir, created_at, updated_at,"
                       " provider_name, model_config_json) VALUES (?,?,?,?,?,?)",
                       (ident, cwd, at, at, provider, config))
        _touch(self.path)

    def call(self, ident: str, at: str, inp: int, out: int, read: int = 0, write: int = 0,
             reasoning: int = 0, cost: float | None = None) -> None:
        """One call: ``inp`` is Goose's input, cache included (its formats add it in)."""
        total = inp + out + reasoning
        with sqlite3.connect(self.path) as db:
            if self.new:
                db.execute(
                    "UPDATE sessions SET total_tokens=?, input_tokens=?, output_tokens=?,"
                    " cache_read_tokens=?, cache_write_tokens=?,"
                    " accumulated_total_tokens = COALESCE(accumulated_total_tokens,0) + ?,"
                    " accumulated_input_tokens = COALESCE(accumulated_input_tokens,0) + ?,"
                    " accumulated_output_tokens = COALESCE(accumulated_output_tokens,0) + ?,"
                    " accumulated_cache_read_tokens ="
                    "   COALESCE(accumulated_cache_read_tokens,0) + ?,"
                    " accumulated_cache_write_tokens ="
                    "   COALESCE(accumulated_cache_write_tokens,0) + ?,"
                    " accumulated_cost = CASE WHEN ? IS NULL THEN accumulated_cost"
                    "   ELSE COALESCE(accumulated_cost,0) + ? END, updated_at = ? WHERE id = ?",
                    (total, inp, out, read, write, total, inp, out, read, write, cost, cost,
                     at, ident))
            else:
                db.execute(
                    "UPDATE sessions SET total_tokens=?, input_tokens=?, output_tokens=?,"
                    " accumulated_total_tokens = COALESCE(accumulated_total_tokens,0) + ?,"
                    " accumulated_input_tokens = COALESCE(accumulated_input_tokens,0) + ?,"
                    " accumulated_output_tokens = COALESCE(accumulated_output_tokens,0) + ?,"
                    " updated_at = ? WHERE id = ?",
                    (total, inp, out, total, inp, out, at, ident))
        _touch(self.path)

    def compact(self, ident: str, at: str) -> None:
        """Compaction: the per-call columns (the context) rewritten, smaller."""
        with sqlite3.connect(self.path) as db:
            db.execute("UPDATE sessions SET total_tokens=10, input_tokens=8, output_tokens=2,"
                       " updated_at=? WHERE id=?", (at, ident))
        _touch(self.path)

    def delete(self, ident: str) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute("DELETE FROM sessions WHERE id=?", (ident,))
        _touch(self.path)


# Crush's initial migration (internal/db/migrations/20250424200609_initial.sql), the parts
# read, with its triggers, and columns that later migrations add.
CRUSH_SCHEMA = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, parent_session_id TEXT, title TEXT NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    prompt_tokens INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cost REAL NOT NULL DEFAULT 0.0 CHECK (cost >= 0.0),
    updated_at INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE TRIGGER update_sessions_updated_at AFTER UPDATE ON sessions BEGIN
    UPDATE sessions SET updated_at = strftime('%s', 'now') WHERE id = new.id; END;
CREATE TABLE messages (
    id TEXT PRIMARY KEY, session_id TEXT NOT NULL, role TEXT NOT NULL,
    parts BLOB NOT NULL default '[]', model TEXT, created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL, finished_at INTEGER,
    FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE);
CREATE TRIGGER update_session_message_count_on_insert AFTER INSERT ON messages BEGIN
    UPDATE sessions SET message_count = message_count + 1 WHERE id = new.session_id; END;
ALTER TABLE sessions ADD COLUMN summary_message_id TEXT;
ALTER TABLE messages ADD COLUMN provider TEXT;
ALTER TABLE messages ADD COLUMN is_summary_message INTEGER DEFAULT 0 NOT NULL;
"""


class CrushDB:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with sqlite3.connect(path) as db:
            db.executescript(CRUSH_SCHEMA)
        _touch(path)
        self.n = 0

    def session(self, ident: str, parent: str | None = None, title: str = "t") -> None:
        with sqlite3.connect(self.path) as db:
            db.execute("INSERT INTO sessions (id, parent_session_id, title, updated_at,"
                       " created_at) VALUES (?,?,?,strftime('%s','now'),strftime('%s','now'))",
                       (ident, parent, title))
        _touch(self.path)

    def step(self, ident: str, cost: float, model: str = "claude-sonnet-4-5",
             parent: str | None = None, last_tokens: tuple[int, int] = (900, 40)) -> None:
        """One call: its message, the session's tokens assigned (the last call's), its cost
        added; a sub-agent session's cost is added to its parent's too."""
        self.n += 1
        with sqlite3.connect(self.path) as db:
            db.execute("INSERT INTO messages (id, session_id, role, model, provider, created_at,"
                       " updated_at) VALUES (?,?,?,?,?,?,?)",
                       (f"m{self.n}", ident, "assistant", model, "anthropic", self.n, self.n))
            db.execute("UPDATE sessions SET prompt_tokens=?, completion_tokens=?,"
                       " cost = cost + ? WHERE id=?", (*last_tokens, cost, ident))
            if parent is not None:
                db.execute("UPDATE sessions SET cost = cost + ? WHERE id=?", (cost, parent))
        _touch(self.path)


# --- helpers ------------------------------------------------------------------------

class Box:
    """One machine: a HOME with the assistants' logs and a ledger beside it, refreshed
    in-process; ``restart`` opens the ledger anew, ``rebuild`` does what
    ``tokline scan --rebuild`` does (the ledger moved aside, a new one made from the logs
    with the running totals carried over)."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.path = root / "data" / "ledger.sqlite3"
        self.ledger = Ledger(self.path)
        self.env = {"HOME": str(self.home)}

    @property
    def droid(self) -> Path:
        return self.home / ".factory" / "sessions"

    @property
    def goose(self) -> Path:
        return self.home / ".local" / "share" / "goose" / "sessions" / "sessions.db"

    def refresh(self, **kw: Any) -> None:
        report = refresh(self.ledger, self.env, **kw)
        assert report.problems == [], report.problems

    def restart(self) -> None:
        self.ledger.close()
        self.ledger = Ledger(self.path)

    def rebuild(self) -> None:
        self.ledger.close()
        aside = backups.move_aside(str(self.path))
        self.ledger = Ledger(self.path)
        report = refresh(self.ledger, self.env,
                         carry=_keep_running_totals(aside) if aside else None)
        assert report.problems == [], report.problems

    def sums(self, source: str) -> tuple[int, int, int, int, float]:
        row = self.ledger.db.execute(
            "SELECT coalesce(sum(u.input),0), coalesce(sum(u.output),0),"
            " coalesce(sum(u.cache_5m),0), coalesce(sum(u.cache_read),0),"
            " coalesce(sum(u.cost_usd),0) FROM usage u JOIN contexts c ON c.id = u.ctx"
            " WHERE c.source = ?", (source,)).fetchone()
        return (int(row[0]), int(row[1]), int(row[2]), int(row[3]), round(float(row[4]), 9))

    def rows(self, source: str) -> list[Any]:
        return sorted(self.ledger.usage(sources=[source]), key=lambda r: (r.ts_ms, r.input))


@pytest.fixture
def box(tmp_path: Path) -> Any:
    b = Box(tmp_path)
    yield b
    b.ledger.close()


def _ms(text: str) -> int:
    ms = goose.time_ms(text)
    assert ms is not None
    return ms


# --- Factory Droid --------------------------------------------------------------------

def test_droid_increases_between_reads(box: Box) -> None:
    transcript = box.droid / "-home-u-proj" / "s1.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_text(json.dumps({"type": "session_start", "id": "s1",
                                      "cwd": "/home/u/proj"}) + "\n")
    first = droid_settings(box.droid, "s1", (1000, 40, 300, 2000, 15))
    box.refresh()
    # thinking is inside the output (checked against the real Droid: see the last test)
    assert box.sums("droid") == (1000, 40, 300, 2000, 0.0)
    (row,) = box.rows("droid")
    assert (row.session_id, row.project, row.model) == ("s1", "/home/u/proj",
                                                        "claude-opus-4-5-20251101")
    assert row.ts_ms == os.stat(first).st_mtime_ns // 1_000_000
    # Droid rewrites the file for other settings: the same totals are no spend
    droid_settings(box.droid, "s1", (1000, 40, 300, 2000, 15), extra={"autonomyLevel": "high"})
    box.refresh()
    assert len(box.rows("droid")) == 1
    droid_settings(box.droid, "s1", (1600, 90, 300, 5000, 20))
    box.refresh()
    assert [(r.input, r.output, r.cache_5m, r.cache_read) for r in box.rows("droid")] == [
        (1000, 40, 300, 2000), (600, 50, 0, 3000)]
    assert box.sums("droid") == (1600, 90, 300, 5000, 0.0)


def test_droid_session_in_two_folders_keeps_the_larger(box: Box) -> None:
    droid_settings(box.droid, "s1", (100, 10, 0, 0, 0), folder="-a")
    box.refresh()
    droid_settings(box.droid, "s1", (80, 8, 0, 0, 0), folder="-b")  # an older copy
    box.refresh()
    assert box.sums("droid")[:2] == (100, 10)
    droid_settings(box.droid, "s1", (150, 12, 0, 0, 0), folder="-b")  # the copy went on
    box.refresh()
    assert box.sums("droid")[:2] == (150, 12)
    droid_settings(box.droid, "s1", (120, 11, 0, 0, 0), folder="-a")  # not past the larger
    box.refresh()
    assert box.sums("droid")[:2] == (150, 12)


def test_droid_older_file_restored_adds_nothing(box: Box) -> None:
    droid_settings(box.droid, "s1", (500, 50, 0, 0, 0))
    box.refresh()
    droid_settings(box.droid, "s1", (300, 30, 0, 0, 0))  # an older copy put back
    box.refresh()
    assert box.sums("droid")[:2] == (500, 50)
    droid_settings(box.droid, "s1", (520, 49, 0, 0, 0))  # it goes on: past what was counted
    box.refresh()
    assert box.sums("droid")[:2] == (520, 50)


def test_droid_models_env_and_odd_files(box: Box, tmp_path: Path) -> None:
    assert droid.normalize_model("custom:Claude-Opus-4.5-Thinking-[Anthropic]-0") == \
        "claude-opus-4.5-thinking"
    assert droid.normalize_model("gpt-5.3-codex") == "gpt-5.3-codex"
    assert droid.normalize_model("custom:GLM 4.6 [Z.AI]-3") == "glm-4.6"
    elsewhere = tmp_path / "elsewhere"
    droid_settings(elsewhere, "a", (10, 1, 0, 0, 0), model=None)
    (elsewhere / "-home-u-proj" / "a.jsonl").write_text(
        '{"type":"session_start","id":"a"}\n{"type":"message","text":"Model: GPT-5.1 Codex"}\n')
    droid_settings(elsewhere, "b", (10, 1, 0, 0, 0), model=None)
    (elsewhere / "-home-u-proj" / "c.settings.json").write_text("{not json")
    (elsewhere / "-home-u-proj" / "d.settings.json").write_text('{"model": "x"}')
    (elsewhere / "-home-u-proj" / "e.settings.json").write_text(
        '{"tokenUsage": {"inputTokens": -5}}')
    # the settings' backup copy Droid keeps, and the transcripts: not usage files
    shutil.copy(elsewhere / "-home-u-proj" / "a.settings.json",
                elsewhere / "-home-u-proj" / "a.settings.json.bak")
    box.env["DROID_SESSIONS_DIR"] = f"{tmp_path / 'missing'}, {elsewhere}"
    report = refresh(box.ledger, box.env)
    assert report.malformed == 2  # the torn file and the negative count
    assert {r.session_id: r.model for r in box.rows("droid")} == {
        "a": "gpt-5.1-codex", "b": "anthropic-unknown"}
    assert box.rows("claude") == []  # Droid's transcripts are not Claude Code's


# --- Goose ----------------------------------------------------------------------------

def test_goose_accumulated_totals(box: Box) -> None:
    g = GooseDB(box.goose)
    g.create("20261026_1")
    g.call("20261026_1", "2026-10-26 09:01:00", inp=12000, out=300, read=9000, write=1000,
           cost=0.05)
    g.create("20261026_2", model="gemini-2.5-pro", provider="google")
    g.call("20261026_2", "2026-10-26 09:05:00", inp=500, out=100, reasoning=60)
    box.refresh()
    rows = {r.session_id: r for r in box.rows("goose")}
    one, two = rows["20261026_1"], rows["20261026_2"]
    # input includes the cache: uncached = input - read - write; Goose's cost is used
    assert (one.input, one.output, one.cache_5m, one.cache_read, one.cost_usd) == (
        2000, 300, 1000, 9000, 0.05)
    assert (one.model, one.project, one.ts_ms) == ("claude-sonnet-4-5", "/home/u/proj",
                                                   _ms("2026-10-26 09:01:00"))
    # total - input - output is reasoning, billed as output; no cost: tokline prices it
    assert (two.input, two.output, two.cost_usd, two.model) == (500, 160, None, "gemini-2.5-pro")
    box.refresh()  # the same totals read again: nothing
    g.compact("20261026_1", "2026-10-26 09:10:00")  # per-call columns only: nothing
    box.refresh()
    assert len(box.rows("goose")) == 2
    g.call("20261026_1", "2026-10-27 10:00:00", inp=3000, out=50, read=2500, cost=0.01)
    box.refresh()
    grown = [r for r in box.rows("goose") if r.ts_ms == _ms("2026-10-27 10:00:00")]
    assert [(r.input, r.output, r.cache_read, r.cost_usd) for r in grown] == [
        (500, 50, 2500, pytest.approx(0.01))]
    assert box.sums("goose")[:4] == (2500 + 500, 350 + 160, 1000, 11500)


def test_goose_uncached_input_dipping_is_no_new_session(box: Box) -> None:
    g = GooseDB(box.goose)
    g.create("20261026_1")
    g.call("20261026_1", "2026-10-26 09:01:00", inp=100, out=10, read=50)
    box.refresh()
    # a provider whose input left the cache out: input less cache falls, the sum grows
    g.call("20261026_1", "2026-10-26 09:02:00", inp=10, out=10, read=80)
    box.refresh()
    g.call("20261026_1", "2026-10-26 09:03:00", inp=200, out=10, read=0)
    box.refresh()
    assert box.sums("goose")[:4] == (310 - 130, 30, 0, 130)


def test_goose_id_given_again_after_a_deletion_is_a_new_session(box: Box) -> None:
    g = GooseDB(box.goose, GOOSE_OLD)
    g.create("20261026_3", at="2026-10-26 09:00:00")
    g.call("20261026_3", "2026-10-26 09:01:00", inp=1000, out=100)
    box.refresh()
    g.delete("20261026_3")
    box.refresh()  # a deleted session's rows stay
    assert box.sums("goose")[:2] == (1000, 100)
    g.create("20261026_3", at="2026-10-26 11:00:00")  # Goose numbers the day's sessions
    g.call("20261026_3", "2026-10-26 11:01:00", inp=1500, out=150)
    box.refresh()
    assert box.sums("goose")[:2] == (2500, 250)


def test_goose_path_root_and_wal_read_live(box: Box, tmp_path: Path) -> None:
    root = tmp_path / "gooseroot"
    box.env["GOOSE_PATH_ROOT"] = str(root)
    assert goose.candidate_roots(box.env) == [str(root / "data" / "sessions")]
    g = GooseDB(root / "data" / "sessions" / "sessions.db", wal=True)
    g.create("20261026_1")
    writer = sqlite3.connect(g.path, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint=0")  # the commits stay in the -wal
    writer.execute("UPDATE sessions SET accumulated_input_tokens=700,"
                   " accumulated_output_tokens=70, accumulated_total_tokens=770,"
                   " updated_at='2026-10-26 09:30:00'")
    writer.execute("BEGIN IMMEDIATE")  # and a writer busy
    writer.execute("UPDATE sessions SET accumulated_input_tokens=900")
    try:
        assert os.path.getsize(str(g.path) + "-wal") > 0
        box.refresh()
        assert box.sums("goose")[:2] == (700, 70)
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_goose_damaged_or_empty_database(box: Box) -> None:
    box.goose.parent.mkdir(parents=True)
    box.goose.write_bytes(b"SQLite format 3\x00" + b"\x07" * 4000)
    report = refresh(box.ledger, box.env)
    assert len(report.problems) == 1 and report.problems[0].startswith(
        f"cannot read {box.goose}")
    box.goose.unlink()
    sqlite3.connect(box.goose).close()  # Goose about to make its tables: nothing yet
    box.refresh()
    assert box.rows("goose") == []


def test_goose_times_and_places() -> None:
    assert goose.time_ms("2026-10-26 09:00:00") == goose.time_ms("2026-10-26T09:00:00Z") \
        == goose.time_ms("2026-10-26T11:00:00+02:00") == 1_793_005_200_000
    assert goose.time_ms("2026-10-26 09:00:00.5") == 1_793_005_200_500
    assert goose.time_ms("") is goose.time_ms(None) is goose.time_ms("soon") is None
    assert goose.candidate_roots({"HOME": "/h"}) == [
        "/h/.local/share/goose/sessions", "/h/.local/share/Block/goose/sessions"]
    assert crush.time_ms(1_793_005_200) == crush.time_ms(1_793_005_200_000) == 1_793_005_200_000
    assert crush.global_dir({"HOME": "/h", "XDG_DATA_HOME": "relative"}) == \
        "/h/.local/share/crush"


# --- Crush ----------------------------------------------------------------------------

def _crush_projects(glob: Path, *projects: tuple[Path, str]) -> None:
    glob.mkdir(parents=True, exist_ok=True)
    (glob / "projects.json").write_text(json.dumps({"projects": [
        {"path": str(p), "data_dir": d, "last_accessed": "2026-10-26T09:00:00Z"}
        for p, d in projects]}, indent=2))
    now = max(time.time_ns(), _mtime[0] + 1_000_000_000)  # live: Crush wrote it just now
    _mtime[0] = now
    os.utime(glob / "projects.json", ns=(now, now))


def test_crush_root_session_costs(box: Box, tmp_path: Path) -> None:
    glob = box.home / ".local" / "share" / "crush"
    one, two = tmp_path / "proj1", tmp_path / "proj2"
    _crush_projects(glob, (one, ".crush"), (two, str(tmp_path / "two-data")))
    a = CrushDB(one / ".crush" / "crush.db")
    b = CrushDB(tmp_path / "two-data" / "crush.db")
    a.session("root")
    a.step("root", 0.25)
    a.session("child", parent="root")
    a.step("child", 0.10, model="claude-haiku-4-5", parent="root")  # rolled into the root
    a.step("root", 0.05, model="claude-opus-4-5", last_tokens=(50, 5))
    b.session("other")
    b.step("other", 1.5, model="gpt-5")
    assert set(crush.roots(box.env)) == {str(glob), str(one / ".crush"),
                                         str(tmp_path / "two-data")}
    box.refresh()
    rows = {r.session_id: r for r in box.rows("crush")}
    assert set(rows) == {"root", "other"}  # sub-agent sessions: in their root's cost
    assert (rows["root"].cost_usd, rows["root"].model, rows["root"].project) == (
        pytest.approx(0.40), "claude-opus-4-5", str(one))
    assert (rows["root"].input, rows["root"].output, rows["root"].cache_read) == (0, 0, 0)
    assert (rows["other"].cost_usd, rows["other"].project) == (1.5, str(tmp_path / "two-data"))
    box.refresh()
    a.step("root", 0.2)
    box.refresh()
    assert box.sums("crush")[4] == pytest.approx(2.1)
    assert len(box.rows("crush")) == 3
    # the status line shows the client's cost
    got = box.ledger.sums(0, source="crush")
    assert sum(v[5] for v in got.values()) == pytest.approx(2.1)


def test_crush_new_project_found_by_the_incremental_refresh(box: Box, tmp_path: Path) -> None:
    glob = tmp_path / "crushglobal"
    box.env["CRUSH_GLOBAL_DATA"] = str(glob)
    one = tmp_path / "p1"
    _crush_projects(glob, (one, ".crush"))
    a = CrushDB(one / ".crush" / "crush.db")
    a.session("s")
    a.step("s", 0.5)
    box.refresh(incremental=True)  # no manifest yet: a full walk
    box.refresh(incremental=True)
    assert box.sums("crush")[4] == 0.5
    two = tmp_path / "p2"
    b = CrushDB(two / ".crush" / "crush.db")
    b.session("t")
    b.step("t", 0.25)
    _crush_projects(glob, (one, ".crush"), (two, ".crush"))
    box.refresh(incremental=True)
    assert box.sums("crush")[4] == 0.75


# --- the mechanism ----------------------------------------------------------------------

def test_migration_8_adds_the_running_totals(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with Ledger(path) as led:
        led.db.execute("DROP TABLE running_totals")
        led.db.execute("UPDATE meta SET value='7' WHERE key='schema'")
    with Ledger(path) as led:
        assert led.get_meta("schema") == str(SCHEMA_VERSION)
        assert led.db.execute("SELECT count(*) FROM running_totals").fetchone() == (0,)


def test_deleted_file_and_restart_lose_nothing(box: Box) -> None:
    path = droid_settings(box.droid, "s1", (100, 10, 0, 0, 0))
    box.refresh()
    path.unlink()
    box.restart()
    box.refresh()
    assert box.sums("droid")[:2] == (100, 10)
    droid_settings(box.droid, "s1", (100, 10, 0, 0, 0))  # back as it was: nothing new
    box.refresh()
    assert len(box.rows("droid")) == 1
    droid_settings(box.droid, "s1", (160, 11, 0, 0, 0))
    box.restart()
    box.refresh()
    assert box.sums("droid")[:2] == (160, 11)


def test_rebuild_keeps_history_and_counts_growth_once(box: Box) -> None:
    gone = droid_settings(box.droid, "gone", (70, 7, 0, 0, 0))
    droid_settings(box.droid, "s1", (100, 10, 0, 0, 0))
    g = GooseDB(box.goose)
    g.create("20261026_1")
    g.call("20261026_1", "2026-10-26 09:01:00", inp=1000, out=100, cost=0.5)
    box.refresh()
    before = (box.rows("droid"), box.rows("goose"))
    gone.unlink()
    box.rebuild()
    assert (box.rows("droid"), box.rows("goose")) == before
    droid_settings(box.droid, "s1", (130, 13, 0, 0, 0))
    g.call("20261026_1", "2026-10-27 09:01:00", inp=1000, out=100, cost=0.25)
    box.rebuild()
    assert box.sums("droid")[:2] == (200, 20)
    assert box.sums("goose") == (2000, 200, 0, 0, 0.75)


def test_rebuild_through_the_command(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = home / ".factory" / "sessions"
    droid_settings(root, "s1", (100, 10, 0, 0, 0))
    assert cli.main(["scan", "-q"]) == 0
    droid_settings(root, "s1", (150, 15, 0, 0, 0))
    assert cli.main(["scan", "--rebuild", "-q"]) == 0
    assert cli.main(["daily", "--json", "--source", "droid"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"]["total_tokens"] == 165
    assert out["totals"]["requests"] == 2  # the history kept: two increases


def test_rebuild_from_an_unreadable_ledger_starts_again(box: Box,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    droid_settings(box.droid, "s1", (100, 10, 0, 0, 0))
    box.refresh()
    droid_settings(box.droid, "s1", (150, 15, 0, 0, 0))
    box.refresh()
    box.ledger.close()
    aside = backups.move_aside(str(box.path))
    assert aside is not None
    Path(aside).write_bytes(b"not a database" * 100)
    box.ledger = Ledger(box.path)
    refresh(box.ledger, box.env, carry=_keep_running_totals(aside))
    assert "could not be kept" in capsys.readouterr().err
    assert [(r.input, r.output) for r in box.rows("droid")] == [(150, 15)]


def test_a_crash_in_the_refresh_neither_loses_nor_doubles(box: Box,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    droid_settings(box.droid, "s1", (100, 10, 0, 0, 0))
    box.refresh()
    droid_settings(box.droid, "s1", (180, 18, 0, 0, 0))

    def crash(*_a: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(Ledger, "save_files", crash)  # after the totals moved on
    with pytest.raises(OSError):
        refresh(box.ledger, box.env)
    monkeypatch.undo()
    box.refresh()
    assert box.sums("droid")[:2] == (180, 18)
    assert len(box.rows("droid")) == 2


def test_a_new_process_reads_the_totals_the_last_one_left(home: Path) -> None:
    root = home / ".factory" / "sessions"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKLINE_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"),
               XDG_CONFIG_HOME=str(home / ".config"), XDG_STATE_HOME=str(home / ".local"
                                                                        / "state"))
    for var in ("TOKLINE_PURE", "TOKLINE_STRICT_BUILD"):
        if var in os.environ:
            env[var] = os.environ[var]
    for tokens in ((100, 10, 0, 0, 0), (100, 10, 0, 0, 0), (250, 30, 0, 0, 0)):
        droid_settings(root, "s1", tokens)
        done = subprocess.run([sys.executable, "-m", "tokline", "scan", "-q"], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
    with Ledger(home / ".local" / "share" / "tokline" / "ledger.sqlite3", readonly=True) as led:
        rows = list(led.usage(sources=["droid"]))
    assert [(r.input, r.output) for r in rows] == [(100, 10), (150, 20)]


def test_sync_each_device_keeps_its_own_increases(tmp_path: Path) -> None:
    """Two machines with sessions of the same ids (Goose numbers them per day): each one's
    increases are its own rows; the other device gets them once, also after a rebuild of
    the first, whose own segments come back."""
    share = tmp_path / "share"
    share.mkdir()
    boxes = [Box(tmp_path / "one"), Box(tmp_path / "two")]
    for n, b in enumerate(boxes, start=1):
        g = GooseDB(b.goose)
        g.create("20261026_1")
        g.call("20261026_1", "2026-10-26 09:01:00", inp=1000 * n, out=100 * n)
        b.refresh()

    def sync(b: Box) -> None:
        report, _ = exchange.sync(b.ledger, DirectoryTarget(str(share)),
                                  local_id(str(b.path)), str(b.path), "name", lambda *a: None)
        assert not report.rejected

    for _ in range(2):
        for b in boxes:
            sync(b)
    assert boxes[0].sums("goose")[:2] == boxes[1].sums("goose")[:2] == (3000, 300)
    g1 = GooseDB.__new__(GooseDB)  # the first machine's database, as it is
    g1.path, g1.new = boxes[0].goose, True
    g1.call("20261026_1", "2026-10-27 09:01:00", inp=500, out=50)
    boxes[0].refresh()
    sync(boxes[0])  # the growth went out as the first machine's second row
    boxes[0].rebuild()  # its own segments come back into the new ledger
    g1.call("20261026_1", "2026-10-28 09:01:00", inp=200, out=20)
    boxes[0].refresh()
    for _ in range(2):
        for b in boxes:
            sync(b)
    assert boxes[0].sums("goose")[:2] == boxes[1].sums("goose")[:2] == (3700, 370)
    assert len(boxes[1].rows("goose")) == 4
    for b in boxes:
        b.ledger.close()


def test_status_report_and_doctor_know_the_sources(home: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    droid_settings(home / ".factory" / "sessions", "s1", (1000, 100, 0, 0, 0), touch=False)
    assert cli.main(["scan", "-q"]) == 0
    assert cli.main(["status", "--format", "{source.droid.today}", "--target", "plain"]) == 0
    assert capsys.readouterr().out.strip().startswith("$0.0")
    assert cli.main(["daily", "--json", "--source", "droid"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["total_tokens"] == 1100
    cli.main(["doctor"])
    out = capsys.readouterr().out
    assert f"droid logs: {home / '.factory' / 'sessions'}" in out
    assert "goose logs: none found in" in out and "crush logs: none found in" in out


def test_missing_sources_are_silent(box: Box) -> None:
    report = refresh(box.ledger, box.env)
    assert report.problems == [] and report.files_seen == 0
    assert droid.roots(box.env) == goose.roots(box.env) == crush.roots(box.env) == []


# --- properties -------------------------------------------------------------------------

ACTIONS = st.sampled_from(["none", "read", "read", "restart", "rebuild", "delete", "rewrite",
                           "copy"])
GROWTH = st.tuples(*(st.integers(0, 5000) for _ in range(4)))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(GROWTH, ACTIONS), min_size=1, max_size=8))
def test_droid_any_read_points_give_one_reads_sum(tmp_path_factory: pytest.TempPathFactory,
                                                  steps: list[Any]) -> None:
    box = Box(tmp_path_factory.mktemp("droid"))
    try:
        now = [0, 0, 0, 0]
        deleted = False
        for growth, action in steps:
            now = [a + b for a, b in zip(now, growth, strict=True)]
            if not deleted:
                droid_settings(box.droid, "s1", (*now, 0), folder="-p")  # type: ignore[arg-type]
            if action == "delete" and not deleted:
                (box.droid / "-p" / "s1.settings.json").unlink()
                deleted = True
            elif action == "rewrite":
                droid_settings(box.droid, "s1", (*now, 0), folder="-p",  # type: ignore[arg-type]
                               extra={"assistantActiveTimeMs": len(steps)})
                deleted = False
            elif action == "copy":  # an older copy of the session under another folder
                droid_settings(box.droid, "s1", (*(n // 2 for n in now), 0),  # type: ignore[arg-type]
                               folder="-q")
            if action == "restart":
                box.restart()
            if action == "rebuild":
                box.rebuild()
            elif action != "none":
                box.refresh()
        droid_settings(box.droid, "s1", (*now, 0), folder="-p")  # type: ignore[arg-type]
        box.refresh()
        assert box.sums("droid") == (now[0], now[1], now[2], now[3], 0.0)
    finally:
        box.ledger.close()


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(calls=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 9000), st.integers(0, 900),
                                st.integers(0, 8), st.sampled_from([None, 0.01, 0.5, 3.0]),
                                ACTIONS), min_size=1, max_size=8))
def test_goose_and_crush_any_read_points_give_one_reads_sum(
        tmp_path_factory: pytest.TempPathFactory, calls: list[Any]) -> None:
    tmp = tmp_path_factory.mktemp("db")
    box = Box(tmp)
    try:
        g = GooseDB(box.goose)
        glob = box.home / ".local" / "share" / "crush"
        _crush_projects(glob, (tmp / "proj", ".crush"))
        c = CrushDB(tmp / "proj" / ".crush" / "crush.db")
        want = {"in": 0, "out": 0, "read": 0, "cost": 0.0, "crush": 0.0}
        made: set[int] = set()
        for n, (session, inp, out, tenth, cost, action) in enumerate(calls):
            ident = f"20261026_{session}"
            if session not in made:
                g.create(ident)
                c.session(ident)
                made.add(session)
            read = inp * tenth // 10
            g.call(ident, f"2026-10-26 10:{n:02d}:00", inp=inp, out=out, read=read, cost=cost)
            c.step(ident, cost or 0.125)
            want["in"] += inp - read
            want["out"] += out
            want["read"] += read
            want["crush"] += cost or 0.125
            if action == "restart":
                box.restart()
            if action == "rebuild":
                box.rebuild()
            elif action in ("read", "rewrite", "delete"):
                box.refresh()
        box.refresh()
        got = box.sums("goose")
        assert got[:4] == (want["in"], want["out"], 0, want["read"])
        assert box.sums("crush")[4] == pytest.approx(want["crush"], abs=1e-9)
        # the client's cost where Goose gave one: each session's rows add up to its total
        with sqlite3.connect(g.path) as db:
            totals_cost = sum(r[0] or 0 for r in db.execute(
                "SELECT accumulated_cost FROM sessions"))
        assert got[4] <= totals_cost + 1e-9
    finally:
        box.ledger.close()


def test_row_keys_differ_per_device_and_increase() -> None:
    keys = {totals.row_key("goose", "20261026_1", device, seq)
            for device in (1, 2) for seq in range(1, 2000)}
    assert len(keys) == 2 * 1999


# --- the real Droid ---------------------------------------------------------------------

@pytest.mark.scanner_independent  # Droid's files are read by Python in both legs
def test_real_droid_writes_what_tokline_counts(tmp_path: Path) -> None:
    """The real Droid (tests/real_clients.py pins it) in a private HOME, its custom models
    pointed at loopback stand-ins.  Droid rewrites the session's settings after every
    call: a session of two calls (a tool call, then the answer) is scanned while the
    second call is held at the stand-in and again after it, then ``scan --rebuild``; a
    second session goes through the Responses API with reasoning.  Droid stores
    ``inputTokens`` without the cached part and keeps the reasoning inside
    ``outputTokens`` (``thinkingTokens`` repeats it): the rows are the served calls
    exactly, one increase per scan."""
    from client_runs import TIMINGS, base_env, client, served_cost, tokline
    from real_clients import CLIENTS
    from standins import ChatCompletionsStandIn, Reply, ResponsesStandIn, chat_usage, openai_usage

    exe = client("droid", CLIENTS["droid"][1][0])
    home = tmp_path / "home"
    project = home / "proj"
    project.mkdir(parents=True)
    gate = threading.Event()

    class Gated(ChatCompletionsStandIn):
        def completions(self, h: Any, body: dict[str, Any]) -> None:
            if len(self.served) == 1:  # the second call waits for the test's scan
                gate.wait(120)
            super().completions(h, body)

    chat = [chat_usage(1200, 40, cached=200, reasoning=10), chat_usage(3000, 90, cached=1100)]
    responses = [openai_usage(2000, 60, cached=500, reasoning=25)]
    sessions = home / ".factory" / "sessions"
    with Gated(Reply(chat_usage(1, 1))) as stand, \
            ResponsesStandIn(Reply(openai_usage(1, 1))) as stand2:
        stand.script = [Reply(chat[0], tool={"name": "LS", "input": {"directory_path": "."}}),
                        Reply(chat[1], text="done")]
        stand2.script = [Reply(responses[0], text="done")]
        (home / ".factory").mkdir()
        (home / ".factory" / "settings.json").write_text(json.dumps({"customModels": [
            {"model": "gpt-5", "displayName": "GPT-5", "baseUrl": f"{stand.url}/v1",
             "apiKey": "stand-in", "provider": "generic-chat-completion-api",
             "maxOutputTokens": 1024},
            {"model": "gpt-5", "displayName": "GPT-5 R", "baseUrl": f"{stand2.url}/v1",
             "apiKey": "stand-in", "provider": "openai", "maxOutputTokens": 1024}]}))
        env = base_env(home, stand)
        start = time.monotonic()
        droid_run = subprocess.Popen(
            [str(exe), "exec", "--auto", "low", "-m", "custom:GPT-5-0", "list the files"],
            env=env, cwd=project, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while not (len(stand.served) == 1 and _droid_input(sessions) == 1000):
                assert time.monotonic() < deadline and droid_run.poll() is None, \
                    droid_run.communicate()
                time.sleep(0.1)
            tokline(home, "scan", "-q")  # between the two calls
        finally:
            gate.set()
            out, err = droid_run.communicate(timeout=240)
        TIMINGS.append(("droid exec", time.monotonic() - start, 0.0))
        assert droid_run.returncode == 0, (out[-2000:], err[-2000:])
        (first,) = sessions.glob("*/*.settings.json")
        tokline(home, "scan", "-q")
        done = subprocess.run([str(exe), "exec", "-m", "custom:GPT-5-R-1", "say hi"], env=env,
                              cwd=project, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=240, check=False)
        assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
        tokline(home, "scan", "-q")
        # Droid asks its own service too (refused by the stand-in, the proxy): nothing left
        tried = {p for method, p in stand.unknown + stand2.unknown if method == "CONNECT"}
        assert all(h.split(":")[0].endswith(".factory.ai") or h.startswith("otel-collector")
                   for h in tried), tried
        assert [s.usage for s in stand.served] == chat
        assert [s.usage for s in stand2.served] == responses
    session = first.name.removesuffix(".settings.json")
    usage = json.loads(first.read_text())["tokenUsage"]
    assert (usage["inputTokens"], usage["outputTokens"], usage["cacheReadTokens"]) == (
        2900, 130, 1300)
    (second,) = set(sessions.glob("*/*.settings.json")) - {first}
    usage = json.loads(second.read_text())["tokenUsage"]
    assert (usage["outputTokens"], usage["thinkingTokens"]) == (60, 25)

    def served(u: dict[str, Any]) -> tuple[int, ...]:
        if "prompt_tokens" in u:
            cached = u["prompt_tokens_details"]["cached_tokens"]
            return (u["prompt_tokens"] - cached, u["completion_tokens"], 0, 0, cached)
        cached = u["input_tokens_details"]["cached_tokens"]
        return (u["input_tokens"] - cached, u["output_tokens"], 0, 0, cached)

    # the model as Droid names the custom one (its display name): "GPT-5 R" -> gpt-5-r
    want = [(model, *served(u), sid, str(project)) for model, u, sid in (
        ("gpt-5", chat[0], session), ("gpt-5", chat[1], session),
        ("gpt-5-r", responses[0], second.name.removesuffix(".settings.json")))]

    def rows() -> list[tuple[Any, ...]]:
        with Ledger(home / "ledger.sqlite3", readonly=True) as led:
            return [(r.model, r.input, r.output, r.cache_5m, r.cache_1h, r.cache_read,
                     r.session_id, r.project)
                    for r in sorted(led.usage(sources=["droid"]), key=lambda r: r.ts_ms)]

    assert rows() == want
    tokline(home, "scan", "--rebuild", "-q")
    assert rows() == want
    out = json.loads(tokline(home, "session", "--json", "--source", "droid"))
    assert out["totals"]["cost_usd"] == pytest.approx(
        served_cost([("gpt-5", *w[1:6]) for w in want]), rel=1e-3)  # both priced as gpt-5


def _droid_input(sessions: Path) -> int | None:
    """The session's ``inputTokens`` as its settings file says now (None: not yet)."""
    for path in sessions.glob("*/*.settings.json"):
        try:
            return int(json.loads(path.read_text())["tokenUsage"]["inputTokens"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return None
