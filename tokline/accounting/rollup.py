"""Totals per local day, and per session, project or model, summed in SQL.

The pictures and the dashboard need a year of history at once; a Python loop over every
usage row would cost seconds on a long history.  The ledger sums per quarter hour (every
zone's offset is a whole number of quarters, so each quarter falls in one local day) and
per context; this module folds those into ``totals.Totals``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import NamedTuple, TypeVar

from tokline.accounting.localtime import Calendar
from tokline.accounting.totals import Totals
from tokline.engine.records import SYNTHETIC
from tokline.ledger.store import Ledger
from tokline.units import QUARTER_MS

K = TypeVar("K")


def daily(ledger: Ledger, calendar: Calendar, since: dt.date | None = None,
          until: dt.date | None = None, cost_mode: str = "auto",
          sources: Iterable[str] | None = None) -> dict[dt.date, Totals]:
    """Local day -> totals for the days in [since, until] that have usage."""
    since_ms = calendar.start_ms(since) if since else None
    until_ms = calendar.start_ms(until + dt.timedelta(days=1)) if until else None
    days: dict[dt.date, Totals] = {}
    for row in ledger.grouped_sums("quarter", since_ms, until_ms, cost_mode, sources):
        day = calendar.date(int(row[0]) * QUARTER_MS)
        totals = days.get(day)
        if totals is None:
            totals = days[day] = Totals()
        totals.add_sums(row[1:])
    return days


class Context(NamedTuple):
    source: str
    session: str
    project: str
    model: str
    totals: Totals
    device: int = 0  # the device that recorded these rows (tokline/sync)


def contexts(ledger: Ledger, since_ms: int | None = None, until_ms: int | None = None,
             cost_mode: str = "auto", sources: Iterable[str] | None = None) -> list[Context]:
    """Totals per (source, session, project, model, device), one SQL pass; ``group``
    folds them by whatever a view needs."""
    out = []
    for row in ledger.grouped_sums("context", since_ms, until_ms, cost_mode, sources):
        totals = Totals()
        totals.add_sums(row[5:])
        out.append(Context(str(row[0]), str(row[1]), str(row[2]), str(row[3]), totals,
                           int(row[4])))
    return out


def group(found: Iterable[Context], key: Callable[[Context], K | None]) -> dict[K, Totals]:
    """Totals per ``key(context)``; contexts whose key is None are left out."""
    out: dict[K, Totals] = {}
    for context in found:
        label = key(context)
        if label is not None:
            out.setdefault(label, Totals()).merge(context.totals)
    return out


def model_of(context: Context) -> str | None:
    """A context's model, None for Claude Code's synthetic messages (no model to list)."""
    return None if context.model == SYNTHETIC else context.model
