"""Reading a snapshot: what it says at a given moment, and the template fields.

Stdlib only (time, datetime; JSON through tokline.prompt.lightjson): the status and statusline
commands import it.
"""

from __future__ import annotations

import datetime as dt
import os
import time

from tokline.prompt import lightjson, quotaview
from tokline.prompt import template as render
from tokline.prompt.statefiles import check_dir, stale_note

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


def read_json(path: str) -> dict[str, Any] | None:
    """A JSON object from a state file; None when missing, not an object, or in a
    directory another user owns or may write to (statefiles.check_dir)."""
    try:
        check_dir(os.path.dirname(path) or ".")
        with open(path, "rb") as fh:
            value = lightjson.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def as_of(snap: Mapping[str, Any], now_s: float) -> dict[str, Any]:
    """The snapshot as it reads at ``now_s``: ended periods are empty, an ended block is
    gone, and quota windows read as tokline/prompt/quotaview.py says (back at 0 % once
    their reset passed, marked stale once old, with pace and run-out)."""
    view = dict(snap)
    for name in ("today", "week", "month"):
        period = snap.get(name)
        if isinstance(period, dict) and now_s >= period.get("end", float("inf")):
            # every total it carries back at zero (its names: tokline/accounting/totals.py)
            view[name] = {**period, **{key: type(value)() for key, value in period.items()
                                       if key not in ("start", "end")
                                       and isinstance(value, (bool, int, float))},
                          "sources": {}, "period": None, "ended": True}
    block = snap.get("block")
    if isinstance(block, dict):
        view["block"] = dict(block)
        if now_s >= block.get("end", 0):
            view["block"]["active"] = False
        elif block.get("active"):
            view["block"]["remaining_minutes"] = round((block["end"] - now_s) / 60)
    # quota windows read through the one rule of tokline/prompt/quotaview.py; the last
    # hour's readings behind their run-out stay in the snapshot, out of the view
    view["quota"] = quotaview.current(snap.get("quota"), now_s, snap.get("quota_readings"))
    view.pop("quota_readings", None)
    budget = {}
    for name, entry in (snap.get("budget") or {}).items():
        if now_s >= entry.get("end", float("inf")):
            entry = {**entry, "spent_usd": 0.0, "left_usd": entry["limit_usd"],
                     "used_percent": 0.0}
        budget[name] = entry
    view["budget"] = budget
    return view


def money(cost: float, unpriced: bool = False) -> str:
    return f"${cost:,.2f}" + ("+?" if unpriced else "")


def tokens(n: float) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.1f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.0f}k"
    return str(int(n))


def duration(minutes: float) -> str:
    """"45m", "2h05m", or "3d04h" from two days on."""
    minutes = max(0, int(minutes))
    if minutes >= 48 * 60:
        return f"{minutes // 1440}d{minutes % 1440 // 60:02d}h"
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def clock(epoch: float | None, zone: dt.tzinfo | None = None, now_s: float | None = None
          ) -> str:
    """A reset time: "14:05" today, "Tue 14:05" within the week, "Dec 1" later (``zone``
    None: the system's)."""
    if epoch is None:
        return ""
    moment = dt.datetime.fromtimestamp(epoch, zone)
    today = dt.datetime.fromtimestamp(time.time() if now_s is None else now_s, zone).date()
    if moment.date() == today:
        return moment.strftime("%H:%M")
    if (moment.date() - today).days < 7:
        return moment.strftime("%a %H:%M")
    return f"{moment:%b} {moment.day}"


LEFT = render.LEFT  # stands for the block's time left in pre-rendered lines (prompt/status.py)


def field_values(view: Mapping[str, Any], zone: dt.tzinfo | None = None,
                 now_s: float | None = None, left_placeholder: bool = False
                 ) -> dict[str, render.Value | None]:
    now_s = time.time() if now_s is None else now_s
    thresholds = view.get("thresholds") or {}
    warn = float(thresholds.get("warn", 80))
    crit = float(thresholds.get("critical", 95))
    values: dict[str, render.Value | None] = {}
    budget = view.get("budget") or {}
    for name, budget_name in (("today", "daily"), ("week", "weekly"), ("month", "monthly")):
        period = view.get(name) or {}
        level = render.level_of((budget.get(budget_name) or {}).get("used_percent"), warn, crit)
        values[f"{name}.cost"] = (money(period.get("cost_usd", 0.0), period.get("unpriced",
                                                                               False)), level)
        values[f"{name}.tokens"] = (tokens(period.get("total_tokens", 0)), None)
        for source, totals in (period.get("sources") or {}).items():
            values[f"source.{source}.{name}"] = (money(totals["cost_usd"], totals["unpriced"]),
                                                 None)
    # this device's own spend: the whole of it while no other device's rows are synced
    local = (view.get("local") or {}).get("today") or view.get("today") or {}
    values["device.local.today"] = (money(local.get("cost_usd", 0.0),
                                          local.get("unpriced", False)), None)
    block = view.get("block") or {}
    for key in ("block.cost", "block.tokens", "block.left", "block.pct", "block.burn",
                "block.projected", "block.end"):
        values[key] = None
    if block.get("active"):
        level = render.level_of(block.get("used_percent"), warn, crit)
        values["block.cost"] = (money(block["cost_usd"], block["unpriced"]), level)
        values["block.tokens"] = (tokens(block["total_tokens"]), level)
        remaining = (block["end"] - now_s) / 60
        values["block.left"] = (LEFT if left_placeholder else duration(remaining), None)
        values["block.end"] = (clock(block["end"], zone, now_s), None)
        if "used_percent" in block:
            values["block.pct"] = (f"{block['used_percent']:.0f}%", level)
        if block.get("burn_rate_usd_per_hour") is not None:
            values["block.burn"] = (f"${block['burn_rate_usd_per_hour']:.2f}/h", None)
            values["block.projected"] = (money(block["projected_cost_usd"]), None)
    session = view.get("session") or {}
    values["session.cost"] = (money(session["cost_usd"]), None) if session else None
    for window in ("5h", "7d", "bind"):
        for part in QUOTA_PARTS:
            values[f"quota.{window}{part}"] = None
    quota = view.get("quota") or []
    best: dict[str, dict[str, Any]] = {}
    for entry in quota:
        prefix = f"quota.{entry['source']}.{entry['window']}"
        values[f"{prefix}.left"] = _quota_left(entry)
        spent = entry.get("spent_usd")
        values[f"{prefix}.spent"] = (money(spent), None) \
            if isinstance(spent, (int, float)) else None
        # an old value (its last fetch failed, or older than its provider's cache
        # time) is marked, and .as_of says since when
        mark = "*" if entry.get("stale") else ""
        stamp = entry.get("as_of")
        values[f"{prefix}.as_of"] = (clock(stamp, zone, now_s), None) \
            if mark and isinstance(stamp, (int, float)) else None
        if entry.get("used_percent") is None:
            # a spend or credit figure without a limit: show the money, never "0 %"
            shown = values[f"{prefix}.spent"] or values[f"{prefix}.left"]
            values[prefix] = (shown[0] + mark, None) if shown else None
            values[f"{prefix}.reset"] = _reset(entry, zone, now_s)
            continue
        for part, value in _window_values(entry, warn, crit, zone, now_s).items():
            values[prefix + part] = value
        current = best.get(entry["window"])
        if current is None or float(entry["used_percent"]) > float(current["used_percent"]):
            best[entry["window"]] = entry
    for window, entry in best.items():
        for part, value in _window_values(entry, warn, crit, zone, now_s).items():
            values[f"quota.{window}{part}"] = value
    # the window that binds: of each source, and of all (named with its source when
    # more than one source has official windows)
    sources = sorted({str(e["source"]) for e in quota if e.get("kind") == "official"})
    for source in [*sources, None]:
        bound = quotaview.binding(e for e in quota if source is None or e["source"] == source)
        if bound is None:
            continue
        label = bound["window"] if source is not None or len(sources) == 1 \
            else f"{bound['source']} {bound['window']}"
        for part, value in _window_values(bound, warn, crit, zone, now_s).items():
            if part == "" and value is not None:
                value = (f"{label} {value[0]}", value[1])
            values[f"quota.{source}.bind{part}" if source else f"quota.bind{part}"] = value
    for name in ("daily", "weekly", "monthly"):
        entry = budget.get(name)
        level = render.level_of(entry["used_percent"], warn, crit) if entry else None
        values[f"budget.{name}.left"] = (money(entry["left_usd"]), level) if entry else None
        values[f"budget.{name}.pct"] = (f"{entry['used_percent']:.0f}%", level) if entry else None
    return values


# what each quota window gives a template: its percentage, and .reset, .pace, .runout,
# .ahead (an arrow while ahead of an even burn), .as_of (when an old value was read)
QUOTA_PARTS = ("", ".reset", ".pace", ".runout", ".ahead", ".as_of")
AHEAD = "↑"


def pace_text(pace: float) -> str:
    """``+12%``: the percentage used beyond (``-``: short of) an even burn."""
    return f"{round(pace):+d}%"


def _reset(entry: Mapping[str, Any], zone: dt.tzinfo | None, now_s: float
           ) -> render.Value | None:
    resets = entry.get("resets_at")
    return (clock(resets, zone, now_s), None) if resets else None


def _window_values(entry: Mapping[str, Any], warn: float, crit: float,
                   zone: dt.tzinfo | None, now_s: float) -> dict[str, render.Value | None]:
    """The QUOTA_PARTS of a window with a percentage."""
    pct = float(entry["used_percent"])
    stale = bool(entry.get("stale"))
    text = f"{pct:.0f}%" + ("~" if entry.get("kind") == "estimate" else "") \
        + ("*" if stale else "")
    pace = entry.get("pace_percent")
    runout = entry.get("runout_at")
    stamp = entry.get("as_of")
    return {"": (text, render.level_of(pct, warn, crit)),
            ".reset": _reset(entry, zone, now_s),
            ".pace": (pace_text(pace), None) if isinstance(pace, (int, float)) else None,
            # a forecast, not a threshold: uncoloured (the notification says it once)
            ".runout": (clock(runout, zone, now_s), None)
            if isinstance(runout, (int, float)) else None,
            ".ahead": (AHEAD, None) if isinstance(pace, (int, float)) and round(pace) > 0
            else None,
            ".as_of": (clock(stamp, zone, now_s), None)
            if stale and isinstance(stamp, (int, float)) else None}


def _quota_left(entry: Mapping[str, Any]) -> render.Value | None:
    for key in ("remaining_usd", "balance_usd"):
        if isinstance(entry.get(key), (int, float)):
            return money(entry[key]), None
    if isinstance(entry.get("remaining"), (int, float)):
        return f"{entry['remaining']:,.0f}", None
    return None


def rendered(view: Mapping[str, Any], parts: list[str | render.Field | render.Group],
             now_s: float, age_s: float | None, zone: dt.tzinfo | None = None
             ) -> dict[str, Any]:
    """What an editor shows, computed as ``tokline status`` computes it: ``text`` (the
    template rendered plain, with the stale note), ``level`` (the highest threshold level
    among all fields: "warn", "crit" or None), ``stale`` (the note's words, "" when fresh)
    and ``fields`` (every field with a value, by its template name, plus ``model.<name>.
    <period>`` costs for tooltips)."""
    values = field_values(view, zone, now_s)
    note = note_of(view, age_s)
    texts = {name: value[0] for name, value in values.items()
             if value is not None and value[0] != ""}
    for period in ("today", "week", "month"):
        for model, totals in ((view.get(period) or {}).get("models") or {}).items():
            texts[f"model.{model}.{period}"] = money(totals.get("cost_usd", 0.0),
                                                     totals.get("unpriced", False))
    return {"text": render.render(parts, values, "plain", False) + note,
            "level": top_level(values), "stale": note.strip(" ()"), "fields": texts}


def top_level(values: Mapping[str, render.Value | None]) -> str | None:
    """The highest threshold level among the fields: "crit", "warn" or None."""
    levels = {value[1] for value in values.values() if value is not None}
    return render.CRIT if render.CRIT in levels else render.WARN if render.WARN in levels \
        else None


def note_of(view: Mapping[str, Any], age_s: float | None) -> str:
    """The stale note of data ``age_s`` old (" (stale 2h)"), "" while fresh or unknown."""
    return stale_note(age_s, float(view.get("stale_after_s", 3600))) \
        if age_s is not None else ""


KNOWN_FIELDS = field_values({"block": {"active": True, "cost_usd": 0, "unpriced": False,
                                       "total_tokens": 0, "end": 0, "used_percent": 0,
                                       "burn_rate_usd_per_hour": 0, "projected_cost_usd": 0}})


