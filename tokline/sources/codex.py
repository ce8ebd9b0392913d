"""Codex CLI: ``sessions/**/*.jsonl`` and ``archived_sessions/*.jsonl`` under CODEX_HOME
(formats.md §2).

Usage is the per-turn delta of ``info.total_token_usage`` within a file: a row that
repeats the previous total (Codex re-emits them on rate-limit refreshes) adds nothing,
and neither does an all-zero context-overflow row.  Each delta is keyed by the session
lineage's root and the cumulative total it reached, so the prefix a fork or subagent
replays from its parent (same totals, fresh timestamps), and an archived copy of an
active file, land on the parent's rows instead of counting twice.

Token semantics: ``cached_input_tokens`` is part of ``input_tokens`` and reasoning is
part of ``output_tokens``; the ledger stores uncached input as input and cached input as
cache reads, so the Claude price arithmetic applies unchanged.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Mapping

from tokline.engine import validate
from tokline.engine.filescan import Reader, each_window
from tokline.engine.keys import key64
from tokline.engine.native import codex_candidate_lines as candidate_lines
from tokline.engine.native import codex_events as compiled_events
from tokline.engine.native import codex_read_events as read_events
from tokline.engine.native import parse_iso_ms
from tokline.ledger.store import CostFn, UsageRow
from tokline.prompt import lightjson, quotaview
from tokline.prompt.quotaview import number

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAME = "codex"
LIMITS_META = "codex_rate_limits"  # ledger meta: the newest rate_limits snapshot (JSON)
FALLBACK_MODEL = "gpt-5"  # what ccusage assumes before a turn_context names the model
LIMITS_KEPT = 8  # rate-limit snapshots a file passes on (refresh.NewestLimits keeps as many)
_NEEDLES = (b'"token_count"', b'"turn_context"', b'"session_meta"', b'"token_usage_record"')

Total = tuple[int, int, int, int, int]  # input, cached input, output, reasoning, total


def homes(env: Mapping[str, str]) -> list[str]:
    configured = env.get("CODEX_HOME", "").strip()
    if configured:
        return [os.path.expanduser(p.strip()) for p in configured.split(",") if p.strip()]
    home = env.get("HOME") or os.path.expanduser("~")
    return [os.path.join(home, ".codex")]


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    return [os.path.join(h, sub) for h in homes(env) for sub in ("sessions", "archived_sessions")]


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return [r for r in candidate_roots(env) if os.path.isdir(r)]


class FileState:
    """What a file's earlier lines left behind, kept in the ledger between refreshes."""

    __slots__ = ("cwd", "model", "prev", "records", "root", "session")

    def __init__(self, text: str | None, path: str) -> None:
        data: dict[str, Any] = lightjson.loads(text) if text else {}
        stem = os.path.basename(path).rsplit(".", 1)[0]
        self.session: str = data.get("session") or stem[-36:]
        self.root: str = data.get("root") or self.session
        self.model: str | None = data.get("model")
        self.cwd: str = data.get("cwd") or ""
        prev = data.get("prev")
        self.prev: Total | None = (prev[0], prev[1], prev[2], prev[3], prev[4]) if prev else None
        # Once a file has per-response token_usage_record lines they are the usage, and
        # token_count rows only move the running total (formats.md §2.6).
        self.records: bool = bool(data.get("records"))

    def dump(self) -> str:
        return lightjson.dumps({"session": self.session, "root": self.root,
                               "model": self.model, "cwd": self.cwd,
                               "prev": list(self.prev) if self.prev else None,
                               "records": self.records})


def _count(value: Any) -> int:
    """A count within tokline/engine/validate.py's bounds (absent: 0); raises Invalid."""
    return validate.checked_count(value)


def _clamp(inp: int, cached: int, out: int, reasoning: int, total: int) -> Total:
    inp = inp if inp > 0 else 0
    out = out if out > 0 else 0
    cached = min(cached, inp) if cached > 0 else 0
    reasoning = reasoning if reasoning > 0 else 0
    return (inp, cached, out, reasoning, total if total > 0 else inp + out)


def _total(usage: Any) -> Total | None:
    if type(usage) is not dict:
        return None
    get = usage.get
    inp, cached, out = get("input_tokens"), get("cached_input_tokens"), get("output_tokens")
    reasoning, total = get("reasoning_output_tokens"), get("total_tokens")
    if not (type(inp) is type(cached) is type(out) is type(reasoning) is type(total) is int):
        # Absent, float, bool or text counts: the general (slower) rule for each.
        inp, cached, out = _count(inp), _count(cached), _count(out)
        reasoning, total = _count(reasoning), _count(total)
    elif not validate.counts_ok((inp, cached, out, reasoning, total)):
        raise validate.Invalid(validate.R_COUNT)
    return _clamp(inp, cached, out, reasoning, total)


# ts, session, lineage root, cwd, model, tokens, what identifies them in the lineage (the
# cumulative total a turn reached, or a response id)
Event = tuple[int, str, str, str, str, Total, str]


def parse(items: list[Any], state: FileState, on_limits: Callable[[int, Any], None]
          ) -> tuple[list[Event], int]:
    """Usage events of candidate lines; advances ``state``.  Each item is a line's bytes
    (candidate_lines, or what the compiled codex_events left to us) or what codex_events
    read from one: a token_count event (6-tuple) or a turn_context (2-tuple).  Returns the
    events and the count of candidate lines that were not valid JSON."""
    events: list[Event] = []
    malformed = 0
    limits_seen: list[tuple[int, Any]] = []
    latest = validate.latest_ms()

    def seen(ts: int, limits: Any) -> None:
        limits_seen.append((ts, limits))

    for item in items:
        if type(item) is bytes:
            malformed += _parse_line(item, state, seen, events, latest)
        elif len(item) == 2:
            _context(state, item[0], item[1])
        else:
            ts, limits, info_is_dict, total, last, override = item
            if not (validate.timestamp_ok(ts, latest) and (total is None or validate.counts_ok(
                    total)) and (last is None or validate.counts_ok(last))):
                malformed += 1  # as _parse_line finds the same line
                continue
            if limits is not None:
                seen(ts, limits)  # JSON bytes: decoded if among the newest
            if info_is_dict:
                _tokens(state, events, ts, _clamp(*total) if total else None,
                        _clamp(*last) if last else None, override)
    # Every token row repeats the rate limits: only the newest few can matter.
    limits_seen.sort(key=_first)
    for ts, limits in limits_seen[-LIMITS_KEPT:]:
        on_limits(ts, limits)
    return events, malformed


def _first(item: tuple[int, Any]) -> int:
    return item[0]


def _parse_line(line: bytes, state: FileState, on_limits: Callable[[int, Any], None],
                events: list[Event], latest: int) -> int:
    """One candidate line; returns 1 when it is malformed (not JSON, or a token row outside
    tokline/engine/validate.py's bounds: ``latest`` is the latest valid time)."""
    try:
        return _read_line(line, state, on_limits, events, latest)
    except validate.Invalid:
        return 1


def line_problem(line: bytes, latest: int) -> str | None:
    """Why a candidate line is malformed, or None (tokline doctor's examples)."""
    try:
        bad = _read_line(line, FileState(None, ""), lambda _ts, _limits: None, [], latest)
    except validate.Invalid as exc:
        return str(exc)
    return "not JSON or no valid timestamp" if bad else None


def _read_line(line: bytes, state: FileState, on_limits: Callable[[int, Any], None],
               events: list[Event], latest: int) -> int:
    try:
        # what json.loads(bytes) does, without its per-call encoding detection
        obj = lightjson.loads(line.decode("utf-8", "surrogatepass"), strict=True)
    except ValueError:
        return 1
    if not isinstance(obj, dict):
        return 0
    payload = obj.get("payload")
    if not isinstance(payload, dict):
        return 0
    kind = obj.get("type")
    stamp = obj.get("timestamp")
    ts = parse_iso_ms(stamp) if isinstance(stamp, str) else None
    if kind == "session_meta":
        sid = payload.get("id")
        parent = payload.get("forked_from_id") or _spawned_from(payload)
        if isinstance(sid, str) and sid and state.prev is None:
            state.session = sid
            state.root = parent if isinstance(parent, str) and parent else sid
        if isinstance(payload.get("cwd"), str):
            state.cwd = payload["cwd"]
    elif kind == "turn_context":
        model, cwd = payload.get("model"), payload.get("cwd")
        _context(state, model if isinstance(model, str) else None,
                 cwd if isinstance(cwd, str) else None)
    elif kind == "event_msg" and payload.get("type") == "token_count":
        if ts is None:
            return 1
        validate.check_time(ts, latest)
        info = payload.get("info")
        if isinstance(info, dict):  # counts first: a line out of bounds counts for nothing
            total, last = _total(info.get("total_token_usage")), \
                _total(info.get("last_token_usage"))
        if payload.get("rate_limits") is not None:
            on_limits(ts, payload["rate_limits"])
        if isinstance(info, dict):
            override = info.get("model") or payload.get("model")
            _tokens(state, events, ts, total, last,
                    override if isinstance(override, str) else None)
    elif kind == "token_usage_record":
        usage = _total(payload.get("usage"))
        response = payload.get("response_id")
        if ts is None or usage is None or not isinstance(response, str):
            return 1 if ts is None else 0
        validate.check_time(ts, latest)
        state.records = True
        model = payload.get("model")
        events.append((ts, state.session, state.root, state.cwd,
                       model if isinstance(model, str) else state.model or FALLBACK_MODEL,
                       usage, "response:" + response))
    return 0


def _context(state: FileState, model: str | None, cwd: str | None) -> None:
    """A turn_context: the model from here on; the directory when none is known yet."""
    if model:
        state.model = model
    if cwd is not None and not state.cwd:
        state.cwd = cwd


def _tokens(state: FileState, events: list[Event], ts: int, total: Total | None,
            last: Total | None, model: str | None) -> None:
    event = _advance(state, total, last, ts, model)
    if event is not None and not state.records:
        events.append(event)


def _spawned_from(payload: Mapping[str, Any]) -> str | None:
    source = payload.get("source")
    if isinstance(source, dict):
        spawn = (source.get("subagent") or {}).get("thread_spawn") \
            if isinstance(source.get("subagent"), dict) else None
        if isinstance(spawn, dict) and isinstance(spawn.get("parent_thread_id"), str):
            return str(spawn["parent_thread_id"])
    return None


def _advance(state: FileState, total: Total | None, last: Total | None, ts: int,
             model: str | None) -> Event | None:
    if total is None:
        if last is None:
            return None
        base = state.prev or (0, 0, 0, 0, 0)
        total = tuple(a + b for a, b in zip(base, last, strict=True))  # type: ignore[assignment]
    assert total is not None
    if total[0] == total[2] == 0:
        return None  # context-overflow filler: all categories 0; the baseline stays
    prev = state.prev
    if prev is not None:
        if total == prev:
            return None  # re-emitted snapshot
        if total[4] < prev[4]:
            drop = prev[4] - total[4]
            step = last[4] if last else 0
            if drop <= 0.02 * prev[4] or drop <= 2 * step:
                return None  # an out-of-order stale snapshot
            prev = None  # the counter was reset
    delta: Total = total if prev is None else (
        max(0, total[0] - prev[0]), max(0, total[1] - prev[1]), max(0, total[2] - prev[2]),
        max(0, total[3] - prev[3]), max(0, total[4] - prev[4]))
    state.prev = total
    return (ts, state.session, state.root, state.cwd, model or state.model or FALLBACK_MODEL,
            delta, f"{total[0]},{total[1]},{total[2]},{total[3]},{total[4]}")


ContextFn = Callable[[str, str, str, str], int]


def reader(on_limits: Callable[[int, Any], None]) -> Reader:
    """Parse the new complete lines of a rollout file, carrying its state across refreshes."""
    def read(path: str, fd: int, start: int, size: int, state_text: str | None
             ) -> tuple[list[Event], int, int, str]:
        state = FileState(state_text, path)
        events: list[Event] = []
        malformed = 0

        def take(mapped: mmap.mmap, offset: int, base: int) -> int:
            nonlocal malformed
            end = mapped.rfind(b"\n", offset) + 1
            if end <= offset:
                return offset
            if read_events is not None:  # parse, in C (ext/_codex_c.pyx)
                found, bad = read_events(mapped, offset, end, _NEEDLES, state, on_limits,
                                         validate.latest_ms(), _parse_line, LIMITS_KEPT)
            else:
                items = compiled_events(mapped, offset, end, _NEEDLES) if compiled_events \
                    else candidate_lines(mapped, offset, end, _NEEDLES)
                found, bad = parse(items, state, on_limits)
            events.extend(found)
            malformed += bad
            return end

        end = each_window(fd, start, size, take)
        return events, end, malformed, state.dump()

    return read


def usage_rows(events: list[Event], context_id: ContextFn, cost_of: CostFn | None
               ) -> list[UsageRow]:
    rows: list[UsageRow] = []
    for ts, session, root, cwd, model, delta, ident in events:
        inp, cached, out, _reasoning, _ = delta
        # All 64 bits from (lineage, cumulative total): key64's member half only has 16
        # bits, too few for a session's hundreds of rows.
        key = key64("\x1c" + NAME + "\x1f" + root + "\x1f" + ident, "")
        ctx = context_id(NAME, session, cwd, model)
        uncached = inp - cached
        cost = cost_of(model, uncached, out, 0, 0, cached, 0, 0) if cost_of else None
        rows.append((key, ts, ctx, uncached, out, 0, 0, cached, 0, None, 0, cost,
                     1 if cost_of else 0))
    return rows


def latest_limits(current: Mapping[str, Any] | None, ts: int, limits: Any
                  ) -> dict[str, Any] | None:
    """The newer of the stored snapshot and this one (formats.md §2.5): by line time, and a
    zero placeholder never replaces a real figure of the same window."""
    if not isinstance(limits, dict):
        return None
    windows = classify(limits, ts)
    if not windows:
        return None
    if current and int(current.get("ts", 0)) > ts:
        return None
    if current:
        old = {w["window"]: w for w in current.get("windows", [])}
        for window in windows:
            before = old.get(window["window"])
            if window["used_percent"] == 0 and before and before["used_percent"] > 0 and (
                    before.get("resets_at") or 0) > ts / 1000:
                window.update(used_percent=before["used_percent"],
                              resets_at=before.get("resets_at"))
    return {"ts": ts, "windows": windows, "plan": limits.get("plan_type")}


def classify(limits: Mapping[str, Any], ts: int) -> list[dict[str, Any]]:
    """Windows by their length (``window_minutes``: 300 = 5h, 10080 = 7d, others by
    their length), not by slot: Codex puts the weekly window in ``primary`` when a plan
    has no 5-hour limit (formats.md §2.5).  Flat ``primary_used_percent``-style keys (the
    API's headers, copied by some tools) are read too."""
    out: list[dict[str, Any]] = []
    for slot in ("primary", "secondary"):
        entry = limits.get(slot)
        if not isinstance(entry, dict):
            entry = {key: limits.get(f"{slot}_{key}") for key in (
                "used_percent", "window_minutes", "resets_at", "reset_after_seconds")}
        used = number(entry.get("used_percent"))
        if used is None:
            continue
        minutes = number(entry.get("window_minutes"))
        resets = number(entry.get("resets_at"))
        after = number(entry.get("resets_in_seconds"))
        if after is None:
            after = number(entry.get("reset_after_seconds"))
        if resets is None and after is not None:
            resets = ts / 1000 + after
        window: dict[str, Any] = {
            "window": quotaview.window_name(None if minutes is None else minutes * 60, slot),
            "used_percent": used, "resets_at": resets}
        if minutes is not None and minutes > 0:
            window["window_s"] = minutes * 60
        if quotaview.is_reading(window):
            out.append(window)
    return out
