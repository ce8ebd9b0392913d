"""What the dashboard shows, gathered without a terminal library: the snapshot (as it
reads now), cost per day/week/month, models, sessions and projects summed in SQL, and the
remote providers' states.  Reloading costs a few SQL queries, never a rescan."""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from typing import Any

from tokline import remote
from tokline.accounting import rollup
from tokline.accounting.localtime import Calendar
from tokline.accounting.totals import Totals
from tokline.ledger.store import Ledger
from tokline.prompt.fields import as_of, read_json
from tokline.prompt.statefiles import SNAPSHOT, dir_problem, state_dir

# key -> (granularity, how many of them the Daily tab shows)
PERIODS = {"d": ("day", 30), "w": ("week", 26), "m": ("month", 12)}


@dataclass
class DashData:
    now: float
    period: str  # a key of PERIODS
    view: dict[str, Any]  # the snapshot as it reads at ``now``
    snapshot_age_s: float | None
    periods: list[tuple[str, Totals]] = field(default_factory=list)  # oldest first
    models: list[tuple[str, Totals]] = field(default_factory=list)  # by cost
    # (source, session, project, device name or "" while one device is known, totals)
    sessions: list[tuple[str, str, str, str, Totals]] = field(default_factory=list)
    projects: list[tuple[str, Totals]] = field(default_factory=list)
    remote: dict[str, Any] = field(default_factory=dict)  # provider:account -> state
    window_start: dt.date | None = None
    warn: float = 80.0
    critical: float = 95.0


def read_snapshot(now: float) -> tuple[dict[str, Any], float | None]:
    path = os.path.join(state_dir(), SNAPSHOT)
    snap = read_json(path)
    if snap is None:
        return {}, None
    try:
        age = now - os.stat(path).st_mtime
    except OSError:
        age = None
    return as_of(snap, now), age


def _first_day(calendar: Calendar, today: dt.date, period: str) -> dt.date:
    unit, count = PERIODS[period]
    if unit == "day":
        return today - dt.timedelta(days=count - 1)
    if unit == "week":
        return calendar.week_start_date(today) - dt.timedelta(weeks=count - 1)
    month = today.year * 12 + today.month - 1 - (count - 1)
    return dt.date(month // 12, month % 12 + 1, 1)


def _label(calendar: Calendar, day: dt.date, unit: str) -> str:
    if unit == "day":
        return day.isoformat()
    if unit == "week":
        return calendar.week_start_date(day).isoformat()
    return day.isoformat()[:7]


def load(ledger: Ledger, calendar: Calendar, period: str = "d", cost_mode: str = "auto",
         warn: float = 80.0, critical: float = 95.0, now: float | None = None,
         snapshot: dict[str, Any] | None = None) -> DashData:
    """Everything the tabs show; ``snapshot`` is a fresh one from the watch feed (already
    read as of now), else the one on disk."""
    now = time.time() if now is None else now
    if snapshot is None:
        view, age = read_snapshot(now)
    else:
        view, age = snapshot, snapshot.get("stale_seconds")
    data = DashData(now, period, view, age, warn=warn, critical=critical)
    today = dt.datetime.fromtimestamp(now, calendar.zone).date()
    unit, _ = PERIODS[period]
    first = _first_day(calendar, today, period)
    data.window_start = first
    days = rollup.daily(ledger, calendar, first, today, cost_mode)
    buckets: dict[str, Totals] = {}
    day = first
    while day <= today:  # every period, the empty ones too, so the chart has no gaps
        buckets.setdefault(_label(calendar, day, unit), Totals())
        day += dt.timedelta(days=1)
    for day, totals in days.items():
        buckets.setdefault(_label(calendar, day, unit), Totals()).merge(totals)
    data.periods = sorted(buckets.items())
    since_ms = calendar.start_ms(first)
    found = rollup.contexts(ledger, since_ms, None, cost_mode)
    models = rollup.group(found, rollup.model_of)
    sessions = rollup.group(found, lambda c: (c.source, c.session, c.project, c.device))
    devices = {c.device for c in found}
    names = ledger.device_names() if len(devices) > 1 else {}
    projects = rollup.group(found, lambda c: c.project)
    data.models = sorted(models.items(), key=lambda kv: -kv[1].cost_usd)
    data.sessions = sorted(((s, i, p, names.get(d, f"{d:016x}") if names else "", t)
                            for (s, i, p, d), t in sessions.items()),
                           key=lambda item: -item[4].cost_usd)
    data.projects = sorted(projects.items(), key=lambda kv: -kv[1].cost_usd)
    # a state dir others may write is not read (read_json refuses the snapshot too)
    data.remote = remote.load_state() if dir_problem(state_dir()) is None else {}
    return data
