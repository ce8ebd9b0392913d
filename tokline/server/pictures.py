"""The pictures of a profile page: the contribution graph as tokline draws it, and a bar
chart of the last 30 days (plain SVG: no script, nothing loaded from elsewhere)."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from tokline.accounting.totals import Totals
from tokline.surfaces import heatmap


def contribution_svg(profile: dict[str, Any]) -> str:
    days: dict[dt.date, Totals] = {}
    for entry in profile["days"]:
        totals = Totals(requests=entry["requests"], cost_usd=entry["cost_usd"],
                        unpriced=entry["unpriced"])
        totals.input = entry["total_tokens"]  # the graph needs the day's total only
        days[dt.date.fromisoformat(entry["day"])] = totals
    heat = heatmap.build(days, dt.date.fromisoformat(profile["until"]))
    return heatmap.svg(heat, f"{profile['user']}: spend per day")


def daily_bars(profile: dict[str, Any], days: int = 30) -> str:
    until = dt.date.fromisoformat(profile["until"])
    by_day = {e["day"]: e for e in profile["days"]}
    wanted = [(until - dt.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    costs = [float(by_day.get(d, {}).get("cost_usd", 0.0)) for d in wanted]
    top = max(costs) or 1.0
    width, height, bar = days * 12, 80, 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 14}" '
           f'class="bars" role="img"><title>cost per day, last {days} days</title>']
    for i, (day, cost) in enumerate(zip(wanted, costs, strict=True)):
        h = round(height * cost / top)
        out.append(f'<rect x="{i * 12}" y="{height - h}" width="{bar}" height="{h}" '
                   f'fill="#2da44e"><title>{escape(day)}: ${cost:,.2f}</title></rect>')
    out.append(f'<text x="0" y="{height + 12}" font-size="10">{escape(wanted[0])}</text>')
    out.append(f'<text x="{width}" y="{height + 12}" font-size="10" text-anchor="end">'
               f"{escape(wanted[-1])}</text></svg>")
    return "".join(out)
