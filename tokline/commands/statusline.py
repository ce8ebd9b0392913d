"""``tokline statusline``: Claude Code's statusLine command.

Reads the hook's JSON on stdin leniently: a missing, null or odd field costs its own
segment, never the line.  Prints model · session cost · today · block (time left) ·
context % · 5h/7d quota with reset time (``↑`` after a window ahead of an even burn,
``*`` after an old figure), and the window that binds when it is another one (a
per-model weekly cap).  Keeps the official ``rate_limits`` and the
session cost in the state dir, so the shell, tmux and editors show them too.  The
numbers come from the snapshot, and a stale one starts one detached refresh; but when the
session's own transcript (``transcript_path``) changed after the snapshot was made, a
turn has ended and Claude Code renders now, not when a detached refresh is done: then
the refresh runs here first, so the line after a turn shows that turn's spend.

Stdin is read up to MAX_INPUT bytes (more is not a status-line payload: ignored whole);
every text from it (the model's name) goes through tokline.prompt.safetext before it is
printed.  A state dir another user owns or may write to is neither read nor written: the
line shows what stdin says, and stderr says why (tokline.prompt.statefiles).
"""

from __future__ import annotations

import os
import sys
import time

from tokline.prompt import lightjson, quotaview, statefiles
from tokline.prompt.fields import AHEAD, as_of, clock, duration, money, read_json
from tokline.prompt.safetext import clean
from tokline.prompt.status import spawn_refresh

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

SEP = " · "
MAX_INPUT = 1 << 20  # bytes of stdin; Claude Code sends a few kB
NAME_LIMIT = 60  # characters of the model's name
CLAUDE_STATE = "claude-status.json"


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def read_payload(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_INPUT:
        return {}
    try:
        payload = lightjson.loads(raw.decode("utf-8", "replace") or "{}")
    except (ValueError, RecursionError):
        return {}
    return payload if isinstance(payload, dict) else {}


def remember(payload: Mapping[str, Any], directory: str, now: float) -> bool:
    """Store rate limits and the session cost; True when the rate limits changed."""
    return kept(payload, directory, now)[0]


def kept(payload: Mapping[str, Any], directory: str, now: float
         ) -> tuple[bool, dict[str, Any]]:
    """:func:`remember`, and the state kept after it (the last real readings)."""
    path = os.path.join(directory, CLAUDE_STATE)
    state = read_json(path) or {}
    limits = payload.get("rate_limits")
    changed = False
    if isinstance(limits, dict) and limits:
        # what Claude Code sends when its own fetch failed (0 % without a reset) is no
        # reading: it never replaces the last real one (tokline/prompt/quotaview.py)
        clean = {name: {"used_percentage": _number(_get(w, "used_percentage")),
                        "resets_at": _number(_get(w, "resets_at"))}
                 for name, w in limits.items() if isinstance(w, dict)
                 and _number(_get(w, "used_percentage")) is not None
                 and quotaview.is_reading({
                     "window": quotaview.STDIN_NAMES.get(name, name),
                     "used_percent": _number(_get(w, "used_percentage")),
                     "resets_at": _number(_get(w, "resets_at"))})}
        if clean and clean != state.get("rate_limits"):
            state["rate_limits"] = clean
            changed = True
        if clean:
            state["as_of"] = round(now)
    cost = _number(_get(payload, "cost", "total_cost_usd"))
    session = payload.get("session_id")
    if cost is not None and isinstance(session, str) and (
            cost != state.get("session_cost_usd") or session != state.get("session_id")):
        state.update(session_id=session, session_cost_usd=cost)
        model = _get(payload, "model", "id")
        state["model"] = model if isinstance(model, str) else None
        state.setdefault("as_of", round(now))
        statefiles.write_private(path, lightjson.dumps(state).encode())
        return changed, state
    if changed:
        statefiles.write_private(path, lightjson.dumps(state).encode())
    return changed, state


def _segments(payload: Mapping[str, Any], view: Mapping[str, Any] | None, now: float,
              readings: object = None, state: Mapping[str, Any] | None = None
              ) -> list[Callable[[], str | None]]:
    def model() -> str | None:
        name = _get(payload, "model", "display_name") or _get(payload, "model", "id")
        return clean(name, NAME_LIMIT) if isinstance(name, str) and name else None

    def session() -> str | None:
        cost = _number(_get(payload, "cost", "total_cost_usd"))
        return f"{money(cost)} session" if cost is not None else None

    def today() -> str | None:
        if view is None:
            return None
        period = view["today"]
        return f"{money(period['cost_usd'], period['unpriced'])} today"

    def block() -> str | None:
        entry = (view or {}).get("block") or {}
        if not entry.get("active"):
            return None
        return (f"5h {money(entry['cost_usd'], entry['unpriced'])}"
                f" ({duration((entry['end'] - now) / 60)} left)")

    def context() -> str | None:
        pct = _number(_get(payload, "context_window", "used_percentage"))
        if pct is None:
            size = _number(_get(payload, "context_window", "context_window_size"))
            usage = _get(payload, "context_window", "current_usage")
            if not size or not isinstance(usage, dict):
                return None
            used = sum(_number(usage.get(k)) or 0 for k in (
                "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
            pct = 100 * used / size
        return f"ctx {pct:.0f}%"

    def quota() -> str | None:
        # Claude's windows: the snapshot's (the usage API, earlier status lines), the
        # last real readings kept (newer when the snapshot is not yet remade), and this
        # payload's readings over them, all read by the one rule of quotaview
        known = {w["window"]: w for w in (view or {}).get("quota") or []
                 if w.get("source") == "claude" and w.get("kind") == "official"}
        last = quotaview.stdin_windows((state or {}).get("rate_limits"),
                                       (state or {}).get("as_of"))
        for window in quotaview.current(last, now, readings):
            before = known.get(window["window"])
            if before is None or (before.get("as_of") or 0) <= (window.get("as_of") or 0):
                known[window["window"]] = window
        fresh = quotaview.stdin_windows(payload.get("rate_limits"), now)
        known.update((w["window"], w) for w in quotaview.current(fresh, now, readings))
        shown = [known[name] for name in ("5h", "7d") if name in known]
        bound = quotaview.binding(known.values())
        if bound is not None and bound["window"] not in ("5h", "7d"):
            shown.append(bound)  # a per-model cap that binds is never left out
        parts = []
        for window in shown:
            pace = window.get("pace_percent")
            text = f"{window['window']} {window['used_percent']:.0f}%" \
                + (AHEAD if isinstance(pace, (int, float)) and round(pace) > 0 else "") \
                + ("*" if window.get("stale") else "")
            if window.get("resets_at") is not None:
                text += f" ↻{clock(window['resets_at'], None, now)}"
            parts.append(clean(text, NAME_LIMIT))
        return " ".join(parts) or None

    return [model, session, today, block, context, quota]


def line(payload: Mapping[str, Any], view: Mapping[str, Any] | None, now: float,
         readings: object = None, state: Mapping[str, Any] | None = None) -> str:
    """The line; ``readings``: the snapshot's ``quota_readings`` (for run-out);
    ``state``: what :func:`kept` keeps (the last real readings)."""
    out = []
    for segment in _segments(payload, view, now, readings, state):
        try:
            text = segment()
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, OSError):
            text = None  # one odd field costs its segment, never the line
        if text:
            out.append(text)
    return SEP.join(out)


def _session_wrote_since(payload: Mapping[str, Any], snap: Mapping[str, Any] | None
                         ) -> bool:
    """The session's transcript changed after the snapshot was made.  Without a snapshot
    the first scan may be a long one: that stays with the detached refresh."""
    path = payload.get("transcript_path")
    if not isinstance(path, str) or not path:
        return False
    try:
        written = os.stat(path).st_mtime
    except (OSError, ValueError):  # gone, unreadable, or a path with a NUL byte
        return False
    made = _number((snap or {}).get("generated_at"))
    return made is not None and written > made


def run(name: str, argv: list[str]) -> int:
    now = int(time.time())  # whole seconds, the clock of every reader (statefiles)
    payload = read_payload(sys.stdin.buffer.read(MAX_INPUT + 1)
                           if not sys.stdin.isatty() else b"")
    directory = statefiles.state_dir()
    problem = statefiles.dir_problem(directory)
    if problem is not None:  # its files may be planted, and ours would be readable
        print(line(payload, None, now))
        sys.stderr.write(f"tokline: {statefiles.refusal(directory, problem)}\n")
        return 0
    try:
        limits_changed, state = kept(payload, directory, now)
    except OSError:
        limits_changed, state = False, None
    snap_path = os.path.join(directory, statefiles.SNAPSHOT)
    snap = read_json(snap_path)
    if _session_wrote_since(payload, snap) and statefiles.take_lock(directory):
        try:
            from tokline.commands.refresh import refresh_now  # noqa: PLC0415 - after turns

            refresh_now(publish=limits_changed)
        finally:
            statefiles.release_lock()
        limits_changed = False
        snap = read_json(snap_path)
    view = as_of(snap, now) if snap else None
    print(line(payload, view, now, (snap or {}).get("quota_readings"), state))
    sys.stdout.flush()
    try:
        age = now - os.stat(snap_path).st_mtime
        lines_mtime = os.stat(os.path.join(directory, statefiles.LINES)).st_mtime
    except OSError:
        age, lines_mtime = float("inf"), 0.0
    interval = float((snap or {}).get("refresh_interval_s", 10))
    if age > interval or limits_changed:
        spawn_refresh(directory, lines_mtime if not limits_changed else now + 1,
                      publish=limits_changed)
    return 0
