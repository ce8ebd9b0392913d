"""Quota windows as they read at a moment: the one rule every surface follows.

``tokline status`` (fields and ``--json``), ``tokline quota``, ``tokline statusline``, the
dashboard and the notifications all read windows through :func:`current`, so they agree:

* **Not a reading**: a window of a known length (5h, 7d, …) at 0 % with no reset time.
  Claude Code's status line sends exactly that when its own usage fetch failed, and the
  usage API answers it for a window that has not started; either way it says nothing
  about what is used, and shown as "0 %" it would read green while the user is cut off.
* **Past its reset**: 0 %, the next reset unknown (``reset_passed``), until a new
  reading arrives; never the old, high number.
* **Old**: a reading older than its provider's cache time (plus :data:`GRACE_S`, the
  slack of the background refresh that is fetching it anew) is ``stale``; the status
  fields mark it ``34%*`` and name its time (``.as_of``).
* **Pace and run-out** (:func:`pace`), for a window with a reset time and a known length,
  at the time of its reading: ``pace_percent`` is the percentage used minus the share of
  the window elapsed (positive: ahead of an even burn); ``runout_at`` is when the window
  reaches 100 % if use goes on at the recent rate (readings of the same period over the
  last hour, spanning at least :data:`RECENT_MIN_S`) or else at its average rate so far
  in the window (used ÷ elapsed); null when that comes at or after the reset.
* **Binding** (:func:`binding`): the quota window closest to its limit (the highest
  percentage; at a tie the one the provider marks active) is the one a short line shows.

Stdlib only: tokline/prompt/fields.py imports it on the status command's path.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

# Each provider's cache time: fetch.py asks no sooner, and a figure older than this (plus
# GRACE_S) is old.  The provider modules take their TTL_S from here; config's
# [remote.NAME] ttl_seconds overrides it (stored with the fetched windows as ``ttl_s``).
CACHE_S = {"claude": 300.0, "codex": 60.0, "copilot": 300.0, "openrouter": 60.0,
           "anthropic-admin": 300.0, "openai-admin": 300.0, "cursor": 300.0}
GRACE_S = 60.0  # a prompt-driven refresh is fetching it again: not old yet
HOUR_S = 3600.0
INFINITY = float("inf")
MAX_EPOCH = 1e11
FIVE_HOURS_S = 5 * HOUR_S
WEEK_S = 7 * 24 * HOUR_S
RECENT_S = HOUR_S  # readings this far back give the recent rate
RECENT_MIN_S = 600.0  # ... when they span at least this (one more reading is noise)
SAME_PERIOD_S = 900.0  # two reset times this close belong to one period (jitter, rounding)
KEEP_READINGS = 120  # per window, at most (a reading a minute over the hour, and spare)
# Claude Code's statusLine ``rate_limits`` keys (formats.md §1.9) and their windows
STDIN_NAMES = {"five_hour": "5h", "seven_day": "7d", "seven_day_opus": "7d_opus",
               "seven_day_sonnet": "7d_sonnet", "spend_limit": "spend"}


def number(value: object) -> float | None:
    """A JSON number as a float; None for anything else: true and false, and what JSON
    has no number for (NaN, infinities, which Python's json reads, and an integer too
    large for a float)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            found = float(value)
        except OverflowError:
            return None
        return found if found - found == 0 else None
    return None


def epoch(value: object) -> float | None:
    """A time in epoch seconds, or None for anything that is not one a clock can show
    (before 1970, or past the year 5000)."""
    found = number(value)
    return found if found is not None and 0 < found < MAX_EPOCH else None


def window_name(seconds: object, fallback: str) -> str:
    """A window's name from its length in seconds: ``5h``, ``7d``, else ``<n>d``, ``<n>h``
    or ``<n>m``; ``fallback`` (a slot's name) when the length is unknown, so a bucket is
    never called the 5-hour window for being in the first slot."""
    length = number(seconds)
    if length is None or not 0 < length < INFINITY or length != int(length):
        return fallback
    whole = int(length)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def window_seconds(window: Mapping[str, Any]) -> float | None:
    """A window's length: its ``window_s``, else what its name says (``5h``, ``7d``,
    ``7d_opus``, ``90m``, ``30d`` …); None when neither knows."""
    given = number(window.get("window_s"))
    if given is not None and 0 < given < INFINITY:  # (NaN is neither)
        return given
    name = str(window.get("window") or "")
    head = name.split("_", 1)[0].split(" ", 1)[0]
    if len(head) < 2 or not (head[:-1].isascii() and head[:-1].isdigit()):
        return None  # ("²h": a digit to isdigit, not to int)
    size = {"m": 60.0, "h": HOUR_S, "d": 24 * HOUR_S}.get(head[-1])
    return int(head[:-1]) * size if size and int(head[:-1]) > 0 else None


def is_reading(window: Mapping[str, Any]) -> bool:
    """False for a window of a known length at 0 % with no reset time (see the module's
    docstring); a spend or credit figure without a period stays a reading, and so does a
    window :func:`current` put back at 0 % when its reset passed."""
    return window.get("reset_passed") is True or not (
        number(window.get("used_percent")) == 0.0 and window.get("resets_at") is None
        and window_seconds(window) is not None)


def stdin_windows(limits: object, as_of: float | None) -> list[dict[str, Any]]:
    """Official windows from Claude Code's statusLine ``rate_limits`` (``used_percentage``,
    ``resets_at`` in epoch seconds), the ones that are readings."""
    out: list[dict[str, Any]] = []
    if not isinstance(limits, dict):
        return out
    for key, name in STDIN_NAMES.items():
        entry = limits.get(key)
        if not isinstance(entry, dict):
            continue
        used = number(entry.get("used_percentage"))
        if used is None:
            continue
        window: dict[str, Any] = {"source": "claude", "window": name, "used_percent": used,
                                  "resets_at": number(entry.get("resets_at")),
                                  "kind": "official", "as_of": as_of}
        if window_seconds(window) is not None:
            window["window_s"] = window_seconds(window)
        if is_reading(window):
            out.append(window)
    return out


def cache_s(window: Mapping[str, Any]) -> float | None:
    """How long the window's figure counts as current: its ``ttl_s``, else its
    provider's cache time (``provider@account`` is the provider's)."""
    given = number(window.get("ttl_s"))
    if given is not None and 0 <= given < MAX_EPOCH:
        return given
    return CACHE_S.get(str(window.get("source") or "").split("@", 1)[0])


def old_at(window: Mapping[str, Any]) -> float | None:
    """When the window's figure becomes old; None for an estimate or an unknown age."""
    at, ttl = number(window.get("as_of")), cache_s(window)
    if window.get("kind") == "estimate" or at is None or ttl is None:
        return None
    return at + ttl + GRACE_S


def same_period(a: object, b: object) -> bool:
    first, second = number(a), number(b)
    if first is None or second is None:
        return first is None and second is None
    return abs(first - second) <= SAME_PERIOD_S


def reading_key(window: Mapping[str, Any]) -> str:
    return f"{window.get('source')}\x1f{window.get('window')}"


def remember(previous: object, windows: Iterable[Mapping[str, Any]]
             ) -> dict[str, list[list[float | None]]]:
    """The readings kept for the recent rate: per official window, ``[as_of, used,
    resets_at]`` of the last hour before its newest reading, of that reading's period."""
    kept_before = previous if isinstance(previous, dict) else {}
    out: dict[str, list[list[float | None]]] = {}
    for window in windows:
        used, at = number(window.get("used_percent")), number(window.get("as_of"))
        if window.get("kind") != "official" or used is None or at is None:
            continue
        key = reading_key(window)
        rows: list[tuple[float, float, float | None]] = []
        for row in kept_before.get(key) or []:
            if isinstance(row, list) and len(row) == 3:
                t, u = number(row[0]), number(row[1])
                if t is not None and u is not None:
                    rows.append((t, u, number(row[2])))
        if not rows or rows[-1][0] < at:
            rows.append((at, used, number(window.get("resets_at"))))
        newest = rows[-1]
        out[key] = [[t, u, r] for t, u, r in rows
                    if t >= newest[0] - RECENT_S and same_period(r, newest[2])
                    ][-KEEP_READINGS:]
    return out


def recent_rate(window: Mapping[str, Any], at: float, readings: object) -> float | None:
    """Percent per second between the earliest reading of this period in the hour before
    ``at`` and the window's own; None unless they span at least RECENT_MIN_S."""
    if not isinstance(readings, dict):
        return None
    used = number(window.get("used_percent"))
    earliest: tuple[float, float] | None = None
    for row in readings.get(reading_key(window)) or []:
        if not isinstance(row, list) or len(row) != 3:
            continue
        t, u = number(row[0]), number(row[1])
        if t is None or u is None or not at - RECENT_S <= t < at \
                or not same_period(row[2], window.get("resets_at")):
            continue
        if earliest is None or t < earliest[0]:
            earliest = (t, u)
    if used is None or earliest is None or at - earliest[0] < RECENT_MIN_S:
        return None
    return max(0.0, (used - earliest[1]) / (at - earliest[0]))


def pace(window: Mapping[str, Any], now: float, readings: object = None
         ) -> dict[str, Any] | None:
    """``elapsed_percent``, ``pace_percent``, ``runout_at`` and the rate's ``basis``
    (recent or average) at the time of the window's reading (its ``as_of``, else
    ``now``); None without a percentage, a reset time or a known length, or when the
    reading lies outside the window its reset time and length make."""
    used, resets, length = (number(window.get("used_percent")),
                            number(window.get("resets_at")), window_seconds(window))
    if used is None or resets is None or length is None:
        return None
    at = number(window.get("as_of"))
    at = now if at is None else min(at, now)
    start = resets - length
    if not start <= at < resets:
        return None
    elapsed = at - start
    elapsed_percent = 100 * elapsed / length
    rate = recent_rate(window, at, readings)
    basis = "recent"
    if rate is None:
        rate, basis = (used / elapsed if elapsed > 0 else None), "average"
    runout: float | None = None
    if used >= 100:
        runout = at  # out already, at the latest when it was read
    elif rate:
        runout = at + (100 - used) / rate
        if runout >= resets:
            runout = None
    return {"elapsed_percent": round(elapsed_percent, 2),
            "pace_percent": round(used - elapsed_percent, 2),
            "runout_at": None if runout is None else round(runout), "basis": basis}


def current(windows: Iterable[Mapping[str, Any]] | None, now: float,
            readings: object = None) -> list[dict[str, Any]]:
    """The windows as they read at ``now`` (the rules of the module's docstring); every
    window with a percentage carries ``pace_percent``, ``runout_at`` and
    ``elapsed_percent`` (null when unknown).  Applying it twice changes nothing more."""
    out: list[dict[str, Any]] = []
    for given in windows or []:
        window = dict(given)
        # figures from remote answers and other devices: what is not a number is none
        for key, read in (("used_percent", number), ("resets_at", epoch), ("as_of", epoch)):
            if key in window:
                window[key] = read(window[key])
        if not is_reading(window):
            continue
        resets = window.get("resets_at")
        if resets is not None and now >= resets:
            window.update(resets_at=None, reset_passed=True)
            if window.get("used_percent") is not None:
                window["used_percent"] = 0.0
            for spent in ("spent_usd", "today_usd"):
                if spent in window:
                    window[spent] = 0.0
        moment = old_at(window)
        if moment is not None and now >= moment:
            window["stale"] = True
        if window.get("used_percent") is not None:
            found = None if window.get("reset_passed") else pace(window, now, readings)
            for key in ("elapsed_percent", "pace_percent", "runout_at"):
                window[key] = found[key] if found else None
        out.append(window)
    return out


def changes_at(windows: Iterable[Mapping[str, Any]], now: float) -> list[float]:
    """The moments after ``now`` at which a window of the view reads differently with no
    new data: its reset, its figure turning old."""
    marks = []
    for window in windows:
        for moment in (number(window.get("resets_at")),
                       None if window.get("stale") else old_at(window)):
            if moment is not None and moment > now:
                marks.append(moment)
    return marks


def binding(windows: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The official quota window closest to its limit: the highest percentage, at a tie
    the one the provider marks active (Claude's ``limits[].is_active``).  Only windows
    with a period (a known length: 5h, 7d, a per-model cap, Copilot's month) take part:
    a balance or an extra-spend budget with no period is not what cuts a plan off."""
    best: Mapping[str, Any] | None = None
    for window in windows:
        used = number(window.get("used_percent"))
        if window.get("kind") != "official" or used is None or window_seconds(window) is None:
            continue
        if best is None or (used, bool(window.get("active"))) > (
                float(best["used_percent"]), bool(best.get("active"))):
            best = window
    return dict(best) if best is not None else None
