"""Roo Code, Cline (classic task files and SDK sessions), Kilo Code (legacy task files and
kilo.db) and Amp (formats.md §10.2, §10.3): the Cline SDK fixture against its oracle
(§10.10), and, where no public sample exists, files built here from the documented shapes,
each counting rule worked out by hand.  Kilo's database as the real Kilo CLI writes it:
tests/test_real_kilo.py."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from tokline import cli
from tokline.engine.refresh import refresh
from tokline.ledger.store import Ledger, StoredUsage
from tokline.sources import amp, cline, kilo, roo

BEFORE = 1_761_000_000_000  # 2025-10-20: Roo's tokensIn still without the cache
AFTER = 1_762_000_000_000  # 2025-11-01: with it (Roo PR #8954, 2025-10-31)
ROO, CLINE, KILO = roo.EXTENSION, cline.EXTENSION, kilo.EXTENSION

Values = tuple[int, int, int, int]  # ledger terms: uncached input, output, cache write, read


def _rows(ledger: Ledger, source: str) -> list[StoredUsage]:
    return sorted(ledger.usage(sources=[source]), key=lambda r: r.ts_ms)


def _values(row: StoredUsage) -> Values:
    return row.input, row.output, row.cache_5m, row.cache_read


def _total(rows: list[StoredUsage]) -> tuple[float, ...]:
    return (*(sum(col) for col in zip(*map(_values, rows), strict=True)),
            round(sum(r.cost_usd or 0 for r in rows), 9))


def _api(ts: int, tokens_in: int | None, out: int | None = None, writes: int | None = 0,
         reads: int | None = 0, cost: float | None = None, say: str = "api_req_started",
         **more: Any) -> dict[str, Any]:
    """A ``say`` row with a ClineApiReqInfo text (None leaves a field out)."""
    info: dict[str, Any] = {"apiProtocol": "anthropic"}
    for key, value in (("tokensIn", tokens_in), ("tokensOut", out), ("cacheWrites", writes),
                       ("cacheReads", reads), ("cost", cost)):
        if value is not None:
            info[key] = value
    info.update(more)
    return {"ts": ts, "type": "say", "say": say, "text": json.dumps(info)}


def _in_flight(ts: int) -> dict[str, Any]:
    return {"ts": ts, "type": "say", "say": "api_req_started",
            "text": json.dumps({"request": "<task>hi</task>", "apiProtocol": "anthropic"})}


def _user(ts: int, model: str | None = None, workspace: str | None = None) -> dict[str, Any]:
    """An api_conversation_history.json user message with Roo's environment details."""
    details = "<environment_details>\n# Current Time\n2025-11-01T00:00:00Z"
    if workspace:
        details += f"\n\n# Current Workspace Directory ({workspace}) Files\nsrc/a.py"
    if model:
        details += ("\n\n# Current Mode\n<slug>code</slug>\n<name>Code</name>\n"
                    f"<model>{model}</model>")
    details += "\n</environment_details>"
    return {"role": "user", "content": [{"type": "text", "text": "<task>do it</task>"},
                                        {"type": "text", "text": details}], "ts": ts}


def _task_dir(home: Path, extension: str, task: str, host: str = "Code") -> Path:
    return home / ".config" / host / "User" / "globalStorage" / extension / "tasks" / task


def _write_task(directory: Path, messages: list[dict[str, Any]],
                history: list[dict[str, Any]] | None = None, **extra: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if history is not None:
        (directory / "api_conversation_history.json").write_text(json.dumps(history))
    for name, doc in extra.items():
        (directory / f"{name}.json").write_text(json.dumps(doc))
    path = directory / "ui_messages.json"
    path.write_text(json.dumps(messages))
    return path


def _replace(path: Path, messages: list[dict[str, Any]]) -> None:
    """Rewrite a task file as its client does (a new file put in place: new inode)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(messages, indent=1))
    os.replace(tmp, path)


def _scan(ledger: Ledger, home: Path, **env: str) -> None:
    report = refresh(ledger, {"HOME": str(home), **env})
    assert report.problems == [] and report.malformed == 0


# ---------------------------------------------------------------------------- Roo Code


def test_roo_rows_by_the_date_rule(home: Path, ledger: Ledger) -> None:
    task = _task_dir(home, ROO, "3f6c0f6e-8d0a-4f0e-9a51-1b2c3d4e5f60")
    _write_task(task, [
        {"ts": BEFORE - 10, "type": "say", "say": "text", "text": "do it"},
        # before 2025-10-31 tokensIn is the uncached input
        _api(BEFORE, 1200, 80, 0, 900, 0.0041),
        _in_flight(BEFORE + 1),  # a call that never ended: no row
        # from then on it includes the cache: 2100 - 1800 - 100
        _api(AFTER, 2100, 50, 100, 1800, 0.003),
        # ... unless it is smaller than the cache, which only a disjoint count can be
        _api(AFTER + 1000, 30, 20, 0, 5000, 0.002),
        _api(AFTER + 2000, 500, 0, 0, 0, 0.001, cancelReason="user_cancelled"),
        _api(AFTER + 3000, 0, 0, 0, 0, 0),  # nothing used: no row
        {"ts": AFTER + 4000, "type": "say", "say": "condense_context",
         "contextCondense": {"cost": 0.05, "prevContextTokens": 90_000,
                             "newContextTokens": 8_000, "summary": "..."}},
        _api(AFTER + 5000, 100, 10, 0, 0, 0),  # no cost of Roo's own: tokline prices it
        {"ts": AFTER + 6000, "type": "say", "say": "api_req_retried"},
    ], history=[
        _user(BEFORE + 10, "claude-sonnet-4-5", workspace="/home/u/first"),
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}], "ts": BEFORE + 20},
        _user(AFTER + 10, "claude-opus-4-1"),
        _user(AFTER + 4500, "gpt-5"),
    ], history_item={"id": "x", "workspace": "/home/u/proj"})
    _scan(ledger, home)
    got = [(r.ts_ms, r.model, *_values(r), r.cost_usd) for r in _rows(ledger, "roo")]
    assert got == [
        (BEFORE, "claude-sonnet-4-5", 1200, 80, 0, 900, 0.0041),
        (AFTER, "claude-opus-4-1", 200, 50, 100, 1800, 0.003),
        (AFTER + 1000, "gpt-5", 30, 20, 0, 5000, 0.002),
        (AFTER + 2000, "gpt-5", 500, 0, 0, 0, 0.001),
        (AFTER + 4000, "gpt-5", 0, 0, 0, 0, 0.05),
        (AFTER + 5000, "gpt-5", 100, 10, 0, 0, None),
    ]
    rows = _rows(ledger, "roo")
    assert {r.project for r in rows} == {"/home/u/proj"}  # history_item.json's workspace
    assert {r.session_id for r in rows} == {task.name}


def test_roo_project_and_model_without_history_item(home: Path, ledger: Ledger) -> None:
    task = _task_dir(home, ROO, "t2", host="Cursor")
    _write_task(task, [_api(AFTER, 10, 1, cost=0.01) | {"modelInfo": {"modelId": "glm-4.6"}},
                       _api(AFTER + 1, 10, 1, cost=0.01)],
                history=[_user(AFTER + 5, "kimi-k2", workspace="/srv/repo")])
    _scan(ledger, home)
    assert [(r.model, r.project) for r in _rows(ledger, "roo")] == [
        ("glm-4.6", "/srv/repo"), ("kimi-k2", "/srv/repo")]


def test_roo_rewritten_file_merges_into_its_rows(home: Path, ledger: Ledger) -> None:
    path = _write_task(_task_dir(home, ROO, "t"), [
        _api(AFTER, 2100, 50, 100, 1800, 0.003), _in_flight(AFTER + 1000)])
    _scan(ledger, home)
    assert len(_rows(ledger, "roo")) == 1
    # the call in flight ends (its row updated in place), and the file is written anew
    _replace(path, [_api(AFTER, 2100, 50, 100, 1800, 0.003),
                    _api(AFTER + 1000, 300, 7, 0, 0, 0.001)])
    _scan(ledger, home)
    _replace(path, [_api(AFTER, 2100, 50, 100, 1800, 0.003),
                    _api(AFTER + 1000, 300, 7, 0, 0, 0.001)])
    _scan(ledger, home)
    assert [_values(r) for r in _rows(ledger, "roo")] == [(200, 50, 100, 1800), (300, 7, 0, 0)]


def _restore_scenario() -> tuple[list[list[dict[str, Any]]], tuple[float, ...]]:
    """A Roo task's file at four reads: two calls; a checkpoint restore that deletes the
    second (api_req_deleted with its sum); a third call; a restore deleting it and the
    first aggregate (Roo's sum leaves that aggregate out).  And every call's total."""
    a = _api(AFTER + 100, 1100, 10, 0, 1000, 0.01)
    b = _api(AFTER + 200, 2200, 20, 200, 1800, 0.02)
    c = _api(AFTER + 500, 3300, 30, 0, 3000, 0.03)
    condense = {"ts": AFTER + 600, "type": "say", "say": "condense_context",
                "contextCondense": {"cost": 0.04}}
    d1 = _api(AFTER + 300, 2200, 20, 200, 1800, 0.02, say="api_req_deleted")
    d2 = _api(AFTER + 700, 3300, 30, 0, 3000, 0.07, say="api_req_deleted")
    files = [[a, b], [a, d1], [a, d1, c, condense], [a, d2]]
    return files, (100 + 200 + 300, 60, 200, 1000 + 1800 + 3000, 0.1)


def test_roo_deleted_calls_count_once(home: Path, tmp_path: Path) -> None:
    files, want = _restore_scenario()
    path = _task_dir(home, ROO, "t") / "ui_messages.json"
    with Ledger(tmp_path / "read-along.sqlite3") as ledger:
        for i, messages in enumerate(files):
            if i == 0:
                _write_task(path.parent, messages)
            else:
                _replace(path, messages)  # smaller, and a new inode: the state still comes
            _scan(ledger, home)
        rows = _rows(ledger, "roo")
        assert _total(rows) == want
        # the deleted calls' own rows stay: the aggregates add nothing
        assert [r.ts_ms - AFTER for r in rows] == [100, 200, 500, 600]
    with Ledger(tmp_path / "fresh.sqlite3") as ledger:  # only the last file seen: its sums
        _scan(ledger, home)
        rows = _rows(ledger, "roo")
        # what Roo's second sum holds (the first one's calls are gone from the file)
        assert [r.ts_ms - AFTER for r in rows] == [100, 700]
        assert _total(rows) == (100 + 300, 40, 0, 1000 + 3000, 0.08)


# ---------------------------------------------------------------------------- Cline classic


def test_cline_classic_disjoint_subagents_and_models(home: Path, ledger: Ledger) -> None:
    sonnet = {"modelId": "anthropic/claude-sonnet-4.5", "providerId": "cline", "mode": "act"}
    _write_task(_task_dir(home, CLINE, "1762000000000"), [
        # Cline's tokensIn never holds the cache, whatever the date
        _api(AFTER, 2100, 50, 100, 1800, 0.003),
        _api(AFTER + 1000, 40, 9, 0, 0, 0.001) | {"modelInfo": sonnet},
        _in_flight(AFTER + 1500),
        _api(AFTER + 2000, 1000, 200, 0, 3000, 0.02, say="subagent_usage", source="subagents"),
        _api(AFTER + 3000, 70, 5, 0, 0, 0.004),
    ], task_metadata={"files_in_context": [], "model_usage": [
        {"ts": AFTER - 5000, "model_id": "claude-sonnet-4-5", "model_provider_id": "anthropic",
         "mode": "act"},
        {"ts": AFTER + 2500, "model_id": "gpt-5", "model_provider_id": "openai", "mode": "act"},
    ]}, api_conversation_history=[
        {"role": "user", "content": [{"type": "text", "text": "<environment_details>\n"
                                      "# Current Working Directory (/home/u/cl) Files\n"}]}])
    _scan(ledger, home)
    got = [(r.model, *_values(r), r.cost_usd, r.project) for r in _rows(ledger, "cline")]
    assert got == [
        ("claude-sonnet-4-5", 2100, 50, 100, 1800, 0.003, "/home/u/cl"),
        ("anthropic/claude-sonnet-4.5", 40, 9, 0, 0, 0.001, "/home/u/cl"),
        ("claude-sonnet-4-5", 1000, 200, 0, 3000, 0.02, "/home/u/cl"),
        ("gpt-5", 70, 5, 0, 0, 0.004, "/home/u/cl")]


def test_cline_deleted_sums_hold_earlier_sums(home: Path, tmp_path: Path) -> None:
    a = _api(AFTER + 100, 100, 10, 0, 1000, 0.01)
    b = _api(AFTER + 200, 200, 20, 200, 1800, 0.02)
    s = _api(AFTER + 250, 1000, 200, 0, 3000, 0.05, say="subagent_usage")
    c = _api(AFTER + 500, 300, 30, 0, 3000, 0.03)
    d1 = _api(AFTER + 300, 1200, 220, 200, 4800, 0.07, say="deleted_api_reqs")  # b + s
    d2 = _api(AFTER + 700, 1500, 250, 200, 7800, 0.1, say="deleted_api_reqs")  # d1 + c
    files = [[a, b, s], [a, d1], [a, d1, c], [a, d2]]
    want = (1600, 260, 200, 8800, 0.11)
    path = _task_dir(home, CLINE, "1762000000000") / "ui_messages.json"
    with Ledger(tmp_path / "read-along.sqlite3") as ledger:
        for i, messages in enumerate(files):
            if i == 0:
                _write_task(path.parent, messages)
            else:
                _replace(path, messages)
            _scan(ledger, home)
        assert _total(_rows(ledger, "cline")) == want
    with Ledger(tmp_path / "fresh.sqlite3") as ledger:
        _scan(ledger, home)
        assert _total(_rows(ledger, "cline")) == want


# Operations on a Cline task between reads: a call, a subagent batch, a checkpoint
# restore to the n-th message from the end (all after it deleted, their sum said), a read.
_OPS = st.lists(st.one_of(
    st.tuples(st.just("call"), st.integers(0, 5000), st.integers(0, 500),
              st.integers(0, 3000)),
    st.tuples(st.just("subagents"), st.integers(0, 5000), st.integers(0, 500),
              st.integers(0, 3000)),
    st.tuples(st.just("restore"), st.integers(1, 6), st.just(0), st.just(0)),
    st.tuples(st.just("read"), st.just(0), st.just(0), st.just(0))), max_size=30)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_cline_any_read_points_give_every_call_once(tmp_path_factory: pytest.TempPathFactory,
                                                    ops: list[tuple[str, int, int, int]]
                                                    ) -> None:
    path = tmp_path_factory.mktemp("task") / "1762000000000" / "ui_messages.json"
    path.parent.mkdir()
    messages: list[dict[str, Any]] = []
    made = [0, 0, 0, 0]
    ledger: dict[str, list[int]] = {}  # the ledger's merge: each field's maximum
    state: str | None = None
    ts = AFTER

    def read() -> None:
        nonlocal state
        found, malformed, state = cline.parse_state(str(path), json.dumps(messages).encode(),
                                                    state)
        assert malformed == 0
        for key, u in found.items():
            into = ledger.setdefault(key, [0, 0, 0, 0])
            for i, v in enumerate((u.input, u.output, u.cache_write, u.cache_read)):
                into[i] = max(into[i], v)

    for op, inp, out, read_tokens in ops:
        ts += 1000
        if op == "read":
            read()
        elif op == "restore":
            kept = max(0, len(messages) - inp)
            deleted = messages[kept:]
            del messages[kept:]
            sums = [0, 0, 0, 0]
            for m in deleted:  # getApiMetrics over the deleted messages
                info = json.loads(m["text"])
                for i, k in enumerate(("tokensIn", "tokensOut", "cacheWrites", "cacheReads")):
                    sums[i] += info[k]
            messages.append(_api(ts, sums[0], sums[1], sums[2], sums[3], 0,
                                 say="deleted_api_reqs"))
        else:
            say = "subagent_usage" if op == "subagents" else "api_req_started"
            messages.append(_api(ts, inp, out, 0, read_tokens, 0, say=say))
            for i, v in enumerate((inp, out, 0, read_tokens)):
                made[i] += v
    read()
    assert [sum(col) for col in zip(*ledger.values(), strict=True)] == made if ledger \
        else made == [0, 0, 0, 0]


# ---------------------------------------------------------------------------- Cline SDK

SDK_SESSION = "1784094124598_rruoq"
SDK_FIXTURE = FIXTURES / "cline" / "cline-sdk" / "data" / "sessions" / SDK_SESSION


def _sdk_session(data: Path, session: str = SDK_SESSION) -> Path:
    """The fixture as Cline keeps it: ``sessions/<id>/<id>.messages.json`` and ``<id>.json``
    (upstream's test data names them session.*)."""
    directory = data / "sessions" / session
    directory.mkdir(parents=True)
    shutil.copy(SDK_FIXTURE / "session.json", directory / f"{session}.json")
    shutil.copy(SDK_FIXTURE / "session.messages.json", directory / f"{session}.messages.json")
    return directory


def test_cline_sdk_fixture_oracle(home: Path, ledger: Ledger) -> None:
    # formats.md §10.10: 16 assistant metrics, Σ inputTokens 630 254 with the cache,
    # cacheRead 534 435, so 95 819 uncached; output 4 395; cost $2.036
    _sdk_session(home / ".cline" / "data")
    _scan(ledger, home)
    rows = _rows(ledger, "cline")
    assert len(rows) == 16
    assert sum(r.input + r.cache_read + r.cache_5m for r in rows) == 630_254
    assert sum(r.cache_read for r in rows) == 534_435
    assert sum(r.input for r in rows) == 95_819
    assert sum(r.output for r in rows) == 4_395
    assert sum(r.cost_usd or 0 for r in rows) == pytest.approx(2.036, abs=5e-4)
    # the model changes mid-session
    assert [r.model for r in rows][-2:] == ["anthropic/claude-opus-4.8-fast",
                                            "mistralai/voxtral-small-24b-2507"]
    assert {r.project for r in rows} == {"/Users/example/dev/cline"}
    assert {r.session_id for r in rows} == {SDK_SESSION}


def test_cline_sdk_fork_copies_merge_and_rewrites_add_nothing(home: Path, tmp_path: Path,
                                                              ledger: Ledger) -> None:
    # The fixture is itself a fork: its messages are its parent's, copied with their ids,
    # times and metrics.  Parent and fork together count each call once.
    data = tmp_path / "cline-data"
    fork = _sdk_session(data)
    parent = _sdk_session(data, "1784094053271_p8pzo")
    doc = json.loads((parent / "1784094053271_p8pzo.messages.json").read_text())
    doc["sessionId"] = "1784094053271_p8pzo"
    (parent / "1784094053271_p8pzo.messages.json").write_text(json.dumps(doc))
    _scan(ledger, home, CLINE_DATA_DIR=str(data))
    before = _total(_rows(ledger, "cline"))
    assert len(_rows(ledger, "cline")) == 16
    # the session goes on: the file is rewritten with one more reply
    doc = json.loads((fork / f"{SDK_SESSION}.messages.json").read_text())
    doc["messages"].append({"id": "msg_new", "role": "assistant", "ts": 1783463099000,
                            "modelInfo": {"id": "mistralai/voxtral-small-24b-2507"},
                            "metrics": {"inputTokens": 12300, "outputTokens": 9,
                                        "cacheReadTokens": 12238, "cacheWriteTokens": 0,
                                        "cost": 0.0001}})
    (fork / f"{SDK_SESSION}.messages.json").write_text(json.dumps(doc, indent=2))
    _scan(ledger, home, CLINE_DATA_DIR=str(data))
    after = _total(_rows(ledger, "cline"))
    assert after[:4] == (before[0] + 62, before[1] + 9, before[2], before[3] + 12238)


# ---------------------------------------------------------------------------- Kilo Code


def test_kilo_legacy_tasks_inclusive_when_they_can_be(home: Path, ledger: Ledger) -> None:
    _write_task(_task_dir(home, KILO, "k1"), [
        _api(BEFORE, 2100, 50, 100, 1800, 0.003),  # at least the cache: includes it
        _api(BEFORE + 1000, 30, 20, 0, 5000, 0.002),  # less: disjoint
        _api(BEFORE + 2000, 900, 3, 0, 0, 0.001),
        _api(BEFORE + 3000, 900, 3, 0, 0, 0.001, say="api_req_deleted"),
    ], history=[_user(BEFORE + 5, "minimax/minimax-m2")])
    _scan(ledger, home)
    assert [(r.model, *_values(r)) for r in _rows(ledger, "kilo")] == [
        ("minimax/minimax-m2", 200, 50, 100, 1800), ("minimax/minimax-m2", 30, 20, 0, 5000),
        ("minimax/minimax-m2", 900, 3, 0, 0), ("minimax/minimax-m2", 900, 3, 0, 0)]


def _kilo_db(path: Path) -> None:
    """A kilo.db in OpenCode's v1 schema: two messages, a user message, and a copy of
    the first that a fork made (new id, same creation time and counts, no cost)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE session(id TEXT PRIMARY KEY, directory TEXT);
        CREATE TABLE message(id TEXT PRIMARY KEY, session_id TEXT, time_created INTEGER,
                             time_updated INTEGER, data TEXT);
        INSERT INTO session VALUES ('s1', '/repo'), ('s2', '/repo');
    """)

    def data(inp: int, created: int, cost: float) -> str:
        return json.dumps({"role": "assistant", "modelID": "claude-sonnet-4-5",
                           "providerID": "anthropic", "time": {"created": created},
                           "cost": cost, "tokens": {"input": inp, "output": 10, "reasoning": 0,
                                                    "cache": {"read": 500, "write": 40}}})

    db.executemany("INSERT INTO message VALUES (?,?,?,?,?)", [
        ("msg_a", "s1", AFTER, AFTER + 5, data(12, AFTER, 0.01)),
        ("msg_b", "s1", AFTER + 100, AFTER + 105, data(13, AFTER + 100, 0.02)),
        ("msg_c", "s1", AFTER + 200, AFTER + 200, json.dumps({"role": "user"})),
        # the fork's copy: Kilo's has a cost of 0 (checked with the Kilo CLI 7.7)
        ("msg_z", "s2", AFTER, AFTER + 900, data(12, AFTER, 0)),
    ])
    db.commit()
    db.close()


def test_kilo_db_read_as_opencode(home: Path, ledger: Ledger) -> None:
    path = home / ".local" / "share" / "kilo" / "kilo.db"
    _kilo_db(path)
    _scan(ledger, home)
    rows = _rows(ledger, "kilo")
    assert [(*_values(r), r.cost_usd, r.project) for r in rows] == [
        (12, 10, 40, 500, 0.01, "/repo"), (13, 10, 40, 500, 0.02, "/repo")]
    # read again from the newest update: a later change to one message, nothing added
    db = sqlite3.connect(path)
    db.execute("UPDATE message SET time_updated = ?, data = json_set(data, '$.tokens.output',"
               " 99) WHERE id = 'msg_b'", (AFTER + 2000,))
    db.commit()
    db.close()
    _scan(ledger, home)
    assert [r.output for r in _rows(ledger, "kilo")] == [10, 99]


def test_kilo_db_override(home: Path, tmp_path: Path, ledger: Ledger) -> None:
    _kilo_db(tmp_path / "elsewhere" / "custom.db")
    _kilo_db(home / ".local" / "share" / "kilo" / "kilo-beta.db")
    _scan(ledger, home, KILO_DB=str(tmp_path / "elsewhere" / "custom.db"))
    assert len(_rows(ledger, "kilo")) == 2
    assert kilo.candidate_roots({"HOME": str(home), "KILO_DB": "kilo-dev.db"})[0] == \
        str(home / ".local" / "share" / "kilo")


# ---------------------------------------------------------------------------- Amp


def _thread() -> dict[str, Any]:
    usage = {"model": "claude-sonnet-4-5", "inputTokens": 10, "outputTokens": 178,
             "cacheCreationInputTokens": 986, "cacheReadInputTokens": 11372,
             "totalInputTokens": 12368, "timestamp": "2026-01-19T11:42:10.652Z"}
    return {"id": "T-5d2c1b7e-0f4a-4c3e-9b1a-2e8f7d6c5b4a", "created": 1768822900000,
            "messages": [
                {"role": "user", "messageId": 0, "content": [{"type": "text", "text": "hi"}]},
                {"role": "assistant", "messageId": 1, "usage": usage},
                {"role": "assistant", "messageId": 3, "usage": dict(
                    usage, inputTokens=5, outputTokens=42, cacheCreationInputTokens=0,
                    cacheReadInputTokens=12000, timestamp="2026-01-19T11:43:00.000Z")},
                # no ledger event stands for this one: its own usage, at its own time
                {"role": "assistant", "messageId": 5, "usage": dict(
                    usage, inputTokens=7, outputTokens=30, cacheCreationInputTokens=100,
                    cacheReadInputTokens=12500, timestamp="2026-01-19T12:00:00.000Z")},
                {"role": "assistant", "messageId": 7, "usage": dict(
                    usage, inputTokens=0, outputTokens=0, cacheCreationInputTokens=0,
                    cacheReadInputTokens=0)},
            ],
            "usageLedger": {"events": [
                {"id": "ev-1", "timestamp": "2026-01-19T11:42:10.700Z",
                 "model": "claude-sonnet-4-5", "credits": 1.2, "operationType": "inference",
                 "tokens": {"input": 10, "output": 178, "total": 188},
                 "fromMessageId": 0, "toMessageId": 1},
                # no toMessageId: stands for the message with its model, input and output
                {"id": "ev-2", "timestamp": "2026-01-19T11:43:00.100Z",
                 "model": "claude-sonnet-4-5", "tokens": {"input": 5, "output": 42}},
                {"id": "ev-3", "timestamp": "2026-01-19T11:50:00.000Z", "model": "gpt-5",
                 "tokens": {"total": 345}},  # a total alone: output
                {"id": "ev-4", "timestamp": "2026-01-19T11:51:00.000Z", "model": "gpt-5",
                 "tokens": {"input": 0, "output": 0}},
            ]}}


def test_amp_ledger_events_and_unclaimed_messages(home: Path, ledger: Ledger) -> None:
    doc = _thread()
    path = home / ".local" / "share" / "amp" / "threads" / f"{doc['id']}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    _scan(ledger, home)
    got = [(r.model, *_values(r), r.session_id) for r in _rows(ledger, "amp")]
    assert got == [("claude-sonnet-4-5", 10, 178, 986, 11372, doc["id"]),
                   ("claude-sonnet-4-5", 5, 42, 0, 12000, doc["id"]),
                   ("gpt-5", 0, 345, 0, 0, doc["id"]),
                   ("claude-sonnet-4-5", 7, 30, 100, 12500, doc["id"])]
    stamps = [r.ts_ms for r in _rows(ledger, "amp")]
    assert stamps[0] == 1768822930700 and stamps[-1] == 1768824000000
    # the thread goes on: rewritten whole with one more inference
    doc["messages"].append({"role": "assistant", "messageId": 9, "usage": {
        "model": "claude-sonnet-4-5", "inputTokens": 3, "outputTokens": 11,
        "cacheReadInputTokens": 13000, "timestamp": "2026-01-19T12:10:00.000Z"}})
    doc["usageLedger"]["events"].append({"id": "ev-5", "timestamp": "2026-01-19T12:10:00.500Z",
                                         "model": "claude-sonnet-4-5", "toMessageId": 9,
                                         "tokens": {"input": 3, "output": 11}})
    path.write_text(json.dumps(doc, indent=2))
    _scan(ledger, home)
    rows = _rows(ledger, "amp")
    assert len(rows) == 5 and _values(rows[-1]) == (3, 11, 0, 13000)


def test_amp_messages_only_and_override(home: Path, tmp_path: Path, ledger: Ledger) -> None:
    doc = _thread()
    del doc["usageLedger"]
    # a total beside a cache count is not output: only a total alone is
    doc["messages"].append({"role": "assistant", "messageId": 9, "usage": {
        "model": "claude-sonnet-4-5", "cacheReadInputTokens": 5000, "totalTokens": 5000,
        "timestamp": "2026-01-19T12:30:00.000Z"}})
    threads = tmp_path / "amp-data" / "threads"
    threads.mkdir(parents=True)
    (threads / f"{doc['id']}.json").write_text(json.dumps(doc))
    (threads / "settings.json").write_text("{}")  # not a thread
    _scan(ledger, home, AMP_DATA_DIR=str(tmp_path / "amp-data"))
    assert [_values(r) for r in _rows(ledger, "amp")] == [
        (10, 178, 986, 11372), (5, 42, 0, 12000), (7, 30, 100, 12500), (0, 0, 0, 5000)]


# ---------------------------------------------------------------------------- where and how


def test_default_locations(home: Path) -> None:
    env = {"HOME": "/h"}
    assert roo.editor_user_dirs(env, "linux")[:2] == ["/h/.config/Code/User",
                                                      "/h/.config/Code - Insiders/User"]
    mac = roo.editor_user_dirs(env, "darwin")
    assert mac[0] == "/h/Library/Application Support/Code/User"
    assert "/h/Library/Application Support/Windsurf/User" in mac
    assert "/h/.vscode-server/data/User" in mac
    assert roo.editor_user_dirs({"HOME": "/h", "VSCODE_PORTABLE": "/p"})[-1] == \
        "/p/user-data/User"
    assert roo.candidate_roots(env)[0] == \
        "/h/.config/Code/User/globalStorage/rooveterinaryinc.roo-cline/tasks"
    assert roo.candidate_roots({"HOME": "/h", "ROO_TASKS_DIR": "/a/tasks, /b"}) == \
        ["/a/tasks", "/b"]
    assert cline.candidate_roots(env)[:3] == [
        "/h/.cline/data/sessions", "/h/.cline/data/tasks",
        "/h/.config/Code/User/globalStorage/saoudrizwan.claude-dev/tasks"]
    assert cline.candidate_roots({"HOME": "/h", "CLINE_DIR": "/c"})[:2] == \
        ["/c/data/sessions", "/c/data/tasks"]
    assert cline.candidate_roots({"HOME": "/h", "CLINE_DATA_DIR": "/d",
                                  "CLINE_SESSION_DATA_DIR": "/s"})[:2] == ["/s", "/d/tasks"]
    assert kilo.candidate_roots(env)[:2] == [
        "/h/.local/share/kilo", "/h/.config/Code/User/globalStorage/kilocode.kilo-code/tasks"]
    assert amp.candidate_roots(env) == ["/h/.local/share/amp/threads"]
    assert amp.candidate_roots({"HOME": "/h", "XDG_DATA_HOME": "/x"}) == ["/x/amp/threads"]


def test_absent_sources_are_silent_and_doctor_lists_them(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_task(_task_dir(home, ROO, "t", host="VSCodium"), [_api(AFTER, 10, 1, cost=0.01)])
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"roo logs: {_task_dir(home, ROO, 't', host='VSCodium').parent}" in out
    for name in ("cline", "kilo", "amp"):
        assert f"{name} logs: none found in {home}" in out


def test_reports_and_status_fields_name_the_sources(home: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    now = int(time.time() * 1000) - 60_000
    _write_task(_task_dir(home, ROO, "t"), [_api(now, 1000, 10, 0, 0, 1.25)])
    _write_task(home / ".cline" / "data" / "tasks" / "1", [_api(now, 500, 10, 0, 0, 0.5)])
    assert cli.main(["daily", "--json", "--source", "roo"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["totals"]["sources"]) == {"roo"} and out["totals"]["cost_usd"] == 1.25
    assert cli.main(["status", "--format", "{source.roo.today} {source.cline.today}",
                     "--target", "plain"]) == 0
    assert capsys.readouterr().out.strip() == "$1.25 $0.50"
