"""Copilot CLI and OpenCode readers on the shapes their real releases write, trimmed
from logs of runs against the stand-ins: per-request usage records and per-run or running
shutdown totals (Copilot 1.0.60 and 1.0.102, pinned in tests/real_clients.py; 1.0.71 and
1.0.82, run once to find where each change came), an OpenAI reply's reasoning inside
output (OpenCode 1.1) and ``run --fork`` copies (OpenCode 1.1 legacy files, 1.18 SQLite)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tokline.sources import copilot, opencode
from tokline.sources.documents import Usage

SESSION = "2c98acb6-f798-402d-b7d9-439c8300dc12"
MODEL = "claude-sonnet-4.5"
# The two requests of a run and a --continue run: (input with cache, output, read, write).
FIRST, SECOND = (6392, 34, 5600, 780), (7403, 35, 6600, 790)


def _event(kind: str, data: dict[str, Any], second: int) -> dict[str, Any]:
    return {"type": kind, "data": data, "id": f"ev-{kind}-{second}",
            "timestamp": f"2026-11-30T16:08:{second:02d}.000Z", "parentId": None}


def _usage(values: tuple[int, int, int, int]) -> dict[str, int]:
    inp, out, read, write = values
    return {"inputTokens": inp, "outputTokens": out, "cacheReadTokens": read,
            "cacheWriteTokens": write}


def _shutdown(second: int, *runs: tuple[int, int, int, int], count: int = 1
              ) -> dict[str, Any]:
    summed = tuple(sum(v) for v in zip(*runs, strict=True))
    return _event("session.shutdown", {"shutdownType": "routine", "modelMetrics": {
        MODEL: {"requests": {"count": count, "cost": 0}, "usage": _usage(summed)}}}, second)


def _start(second: int) -> dict[str, Any]:
    return _event("session.start", {"sessionId": SESSION, "selectedModel": MODEL,
                                    "context": {"cwd": "/work"}}, second)


def _resume(second: int) -> dict[str, Any]:
    return _event("session.resume", {"selectedModel": MODEL, "context": {"cwd": "/work"}},
                  second)


def _reply(second: int, values: tuple[int, int, int, int] | None, call: str
           ) -> dict[str, Any]:
    data: dict[str, Any] = {"messageId": f"m-{call}", "content": "hi", "toolRequests": [],
                            "apiCallId": call}
    if values is not None:  # per-reply releases (to 1.0.7x) count the reply's output
        data["outputTokens"] = values[1]
    return _event("assistant.message", data, second)


def _record(second: int, values: tuple[int, int, int, int], call: str) -> dict[str, Any]:
    return _event("session.usage_record", {"usage": dict(
        _usage(values), model=MODEL, apiCallId=call, isByok=True,
        accounting={"sourceSessionId": SESSION, "sequence": 1, "usageId": call})}, second)


def _parse(events: list[dict[str, Any]]) -> list[tuple[int, int, int, int]]:
    data = "".join(json.dumps(e) + "\n" for e in events).encode()
    found, malformed = copilot.parse(f"/h/.copilot/session-state/{SESSION}/events.jsonl", data)
    assert malformed == 0
    assert {u.model for u in found.values()} <= {MODEL}
    return sorted((u.input, u.output, u.cache_write, u.cache_read) for u in found.values())


def _as_rows(*requests: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    """Per-request ledger rows: uncached input, output, cache writes, cache reads."""
    return sorted((inp - read - write, out, write, read) for inp, out, read, write in requests)


def _total(rows: list[tuple[int, int, int, int]]) -> tuple[int, ...]:
    return tuple(sum(column) for column in zip(*rows, strict=True))


def test_copilot_usage_records_are_the_rows() -> None:
    # 1.0.102: a record per request; the running shutdown totals add nothing more.
    events = [_start(1), _record(2, FIRST, "a"), _reply(3, None, "a"), _shutdown(4, FIRST),
              _resume(5), _record(6, SECOND, "b"), _reply(7, None, "b"),
              _shutdown(8, FIRST, SECOND, count=2)]
    assert _parse(events) == _as_rows(FIRST, SECOND)
    # A live session, before any shutdown, is counted as it goes.
    assert _parse(events[:2]) == _as_rows(FIRST)


def test_copilot_per_run_shutdowns_each_counted() -> None:
    # 1.0.60: each run's shutdown covers that run only; the first run's input and cache
    # used to be lost when the second shutdown took its place.
    events = [_start(1), _reply(2, FIRST, "a"), _shutdown(3, FIRST),
              _resume(4), _reply(5, SECOND, "b"), _shutdown(6, SECOND)]
    rows = _parse(events)
    assert _total(rows) == _total(_as_rows(FIRST, SECOND))
    assert sorted(out for _, out, _, _ in rows if out) == [34, 35]


def test_copilot_running_shutdowns_not_counted_twice() -> None:
    # 1.0.71: replies still carry outputTokens, but the second shutdown is the session's.
    events = [_start(1), _reply(2, FIRST, "a"), _shutdown(3, FIRST),
              _resume(4), _reply(5, SECOND, "b"), _shutdown(6, FIRST, SECOND, count=2)]
    assert _total(_parse(events)) == _total(_as_rows(FIRST, SECOND))
    # 1.0.82: no per-request counts at all, only the running totals.
    bare = [_start(1), _reply(2, None, "a"), _shutdown(3, FIRST),
            _resume(4), _reply(5, None, "b"), _shutdown(6, FIRST, SECOND, count=2)]
    assert _parse(bare) == [_total(_as_rows(FIRST, SECOND))]


def test_copilot_rows_only_grow_as_the_file_grows() -> None:
    # The ledger merges a file's rows field by field (maximum): a row read early must
    # never exceed what the whole file gives it.
    events = [_start(1), _reply(2, FIRST, "a"), _shutdown(3, FIRST),
              _resume(4), _reply(5, SECOND, "b"), _shutdown(6, SECOND)]
    whole = "".join(json.dumps(e) + "\n" for e in events).encode()
    final, _ = copilot.parse(f"/s/{SESSION}/events.jsonl", whole)
    for cut in range(1, len(events)):
        part = "".join(json.dumps(e) + "\n" for e in events[:cut]).encode()
        early, _ = copilot.parse(f"/s/{SESSION}/events.jsonl", part)
        for key, usage in early.items():
            later = final[key]
            assert (usage.input, usage.output, usage.cache_read, usage.cache_write) <= \
                (later.input, later.output, later.cache_read, later.cache_write)


# ---------------------------------------------------------------------------- OpenCode


def _message(ident: str, created: int, tokens: dict[str, Any], cost: float = 0.0,
             session: str = "ses_dd2be87c3ffez6XnyY7erTexU2") -> dict[str, Any]:
    return {"id": ident, "sessionID": session, "role": "assistant",
            "time": {"created": created, "completed": created + 109},
            "parentID": "msg_22d417e200014yNxvoujtW33J8", "modelID": "gpt-5",
            "providerID": "openai", "mode": "build", "agent": "build",
            "path": {"cwd": "/w", "root": "/"}, "cost": cost, "tokens": tokens,
            "finish": "stop"}


def _one(found: dict[str, Usage]) -> Usage:
    (usage,) = found.values()
    return usage


def test_opencode_reasoning_inside_output_not_added_again() -> None:
    # OpenCode 1.1 (AI SDK 5): output 61 already holds the 20 reasoning tokens; the total
    # adds up without them, and the stored cost charged them twice.
    old = {"total": 4261, "input": 1128, "output": 61, "reasoning": 20,
           "cache": {"read": 3072, "write": 0}}
    usage = opencode.usage_of(_message("msg_x", 1796055551517, old, cost=0.002604), "s", "p")
    assert usage is not None and usage.output == 61 and usage.cost_usd is None
    # OpenCode 1.18: output 41 beside reasoning 20, and its cost is right.
    new = {"total": 4261, "input": 1128, "output": 41, "reasoning": 20,
           "cache": {"read": 3072, "write": 0}}
    usage = opencode.usage_of(_message("msg_x", 1796055551517, new, cost=0.002404), "s", "p")
    assert usage is not None and usage.output == 61 and usage.cost_usd == 0.002404
    # Without a total (older files), reasoning is added as before.
    none = {"input": 10, "output": 5, "reasoning": 3, "cache": {"read": 0, "write": 0}}
    usage = opencode.usage_of(_message("msg_x", 1796055551517, none), "s", "p")
    assert usage is not None and usage.output == 8


def test_opencode_legacy_fork_copy_skipped(tmp_path: Path) -> None:
    # Ids and times from an OpenCode 1.1.65 `run --continue --fork`: the copy's id was
    # made 2.9 s after the time.created it kept.
    tokens = {"total": 6426, "input": 12, "output": 34, "reasoning": 0,
              "cache": {"read": 5600, "write": 780}}
    original = _message("msg_22d4178ab001Ii6YYmVwnBpEen", 1796055595179, tokens)
    copy = _message("msg_22d418404001YOEUbYivJpXk1d", 1796055595179, tokens,
                    session="ses_dd2be7c3fffe7236o4KlfBjX5M")
    found = {}
    for doc in (original, copy):
        path = tmp_path / "storage" / "message" / doc["sessionID"] / f"{doc['id']}.json"
        found.update(opencode.parse(str(path), json.dumps(doc).encode())[0])
    assert list(found) == [original["id"]]
    # Ids of another shape are never taken for copies.
    other = _message("msg_b96300", 1738663200000, tokens)
    assert opencode.parse("/s/storage/message/x/m.json", json.dumps(other).encode())[0]


def test_opencode_db_fork_copy_skipped(tmp_path: Path) -> None:
    db = tmp_path / "opencode.db"
    tokens = {"total": 6426, "input": 12, "output": 34, "reasoning": 0,
              "cache": {"read": 5600, "write": 780}}
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE message (id TEXT PRIMARY KEY, session_id TEXT NOT NULL,"
                     " time_created INTEGER NOT NULL, time_updated INTEGER NOT NULL,"
                     " data TEXT NOT NULL)")
        conn.execute("CREATE INDEX message_session_time_created_id_idx"
                     " ON message (session_id, time_created, id)")

        def add(ident: str, session: str, created: int, updated: int,
                data: dict[str, Any]) -> None:
            body = {k: v for k, v in data.items() if k not in ("id", "sessionID")}
            conn.execute("INSERT INTO message VALUES (?, ?, ?, ?, ?)",
                         (ident, session, created, updated, json.dumps(body)))

        # The parent's answer, then (as 1.18 does on --fork) its copy with a new id,
        # the same creation time and a parent id of the fork's.
        add("msg_22d398345001ULjUSJHaYNoUou", "ses_a", 1796055073605, 1796055076531,
            _message("", 1796055073605, tokens, cost=0.005151))
        conn.commit()
        newest = opencode.parse_db(str(db), 0)[1]
        assert newest == 1796055076531
        copy = dict(_message("", 1796055073605, tokens, cost=0.005151),
                    parentID="msg_22d39b87d001e0oP5tT4km2LSF")
        add("msg_22d39c16e001JOqliEpq9k7yqa", "ses_b", 1796055073605, 1796055089523, copy)
        # A different answer that happens to start in the same millisecond is no copy.
        other = _message("", 1796055073605, dict(tokens, output=99))
        add("msg_22d39c16e002AAAAAAAAAAAAAA", "ses_b", 1796055073605, 1796055089600, other)
    found, _ = opencode.parse_db(str(db), 0)
    assert sorted(found) == ["msg_22d398345001ULjUSJHaYNoUou", "msg_22d39c16e002AAAAAAAAAAAAAA"]
    # Read again from where the first read stopped: the copy alone is new, and skipped.
    found, _ = opencode.parse_db(str(db), newest + 1)
    assert sorted(found) == ["msg_22d39c16e002AAAAAAAAAAAAAA"]
