"""The pictures of the server's pages: the contribution graph as tokline draws it, and a
bar chart of cost per day.

Plain SVG in the page: no script and nothing loaded from elsewhere.  The tooltips are
SVG ``<title>`` elements, which every browser shows on hover and screen readers read, so
the pages need no JavaScript for them.  Every text that came from a person (a user name
in a title) is escaped here, since the templates insert these pictures as they are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape
from typing import Any

from tokline.accounting.totals import Totals
from tokline.surfaces import heatmap


@dataclass(frozen=True)
class Graph:
    svg: str  # the picture, ready to insert
    heat: heatmap.Heatmap  # its numbers: active days, streaks, the busiest day


def contribution(profile: dict[str, Any]) -> Graph:
    """The year's graph of a profile (``queries.profile``), as ``tokline graph`` draws it;
    the summary line is left to the page (HTML text wraps on a phone, SVG text does not)."""
    days: dict[dt.date, Totals] = {}
    for entry in profile["days"]:
        totals = Totals(requests=entry["requests"], cost_usd=entry["cost_usd"],
                        unpriced=entry["unpriced"])
        totals.input = entry["total_tokens"]  # the graph needs the day's total only
        days[dt.date.fromisoformat(entry["day"])] = totals
    heat = heatmap.build(days, dt.date.fromisoformat(profile["until"]))
    return Graph(heatmap.svg(heat, f"{profile['user']}: spend per day", with_summary=False),
                 heat)


@dataclass(frozen=True)
class Bars:
    svg: str
    first: str  # the first and last day drawn, the dearest day's cost: the page's labels
    last: str
    top: float
    total: float


def daily_bars(entries: list[dict[str, Any]], until: str, days: int = 30,
               label: str = "Cost per day") -> Bars:
    """Cost per day of the ``days`` days up to ``until`` (entries: ``{"day", "cost_usd",
    "total_tokens"}``, as the profile and team queries give them).

    The SVG stretches to the page's width at a fixed height (preserveAspectRatio none:
    bars may widen, they keep their proportions of height), so it fits a phone as well as
    a wide screen; the axis labels are the page's own text beside it, which stays legible
    at any width.  A day without usage gets a grey stub, so gaps read as days."""
    end = dt.date.fromisoformat(until)
    by_day = {e["day"]: e for e in entries}
    wanted = [(end - dt.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    costs = [float(by_day.get(d, {}).get("cost_usd", 0.0)) for d in wanted]
    tokens = [int(by_day.get(d, {}).get("total_tokens", 0)) for d in wanted]
    top = max(costs, default=0.0)
    step, bar, height = 10, 8, 100
    total = sum(costs)
    summary = f"{label}, {wanted[0]} to {wanted[-1]}: ${total:,.2f} in all"
    if top > 0:
        summary += f", the most ${top:,.2f} on {wanted[costs.index(top)]}"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {days * step} {height}" '
           f'preserveAspectRatio="none" class="bars" role="img" '
           f'aria-label="{escape(summary)}"><title>{escape(summary)}</title>'
           f'<line x1="0" y1="0.5" x2="{days * step}" y2="0.5" class="grid"/>'
           f'<line x1="0" y1="{height - 0.5}" x2="{days * step}" y2="{height - 0.5}" '
           'class="grid"/>']
    for i, (day, cost, count) in enumerate(zip(wanted, costs, tokens, strict=True)):
        h = max(height * cost / top, 1.0) if top > 0 and cost > 0 else 0.0
        tip = escape(f"{day}: ${cost:,.2f} · {count:,} tokens")
        out.append(f'<g><title>{tip}</title>'
                   # the whole column answers the pointer, not just a short bar
                   f'<rect class="hit" x="{i * step}" y="0" width="{step}" height="{height}"/>'
                   f'<rect class="bar{"" if h else " none"}" data-date="{day}" '
                   f'data-cost="{cost:.6f}" x="{i * step + 1}" y="{height - (h or 1):.2f}" '
                   f'width="{bar}" height="{h or 1:.2f}"/></g>')
    out.append("</svg>")
    return Bars("".join(out), wanted[0], wanted[-1], top, total)
