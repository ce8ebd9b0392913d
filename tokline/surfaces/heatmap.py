"""A GitHub-style contribution heatmap of cost (or tokens) per local day: 53 weeks of 7
days, quantised into five levels, with month and weekday labels, totals and streaks.

``build`` makes the model from day totals; ``terminal``, ``svg`` and ``html`` draw it.
The SVG and the HTML page are self-contained (no fonts, scripts or styles fetched)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from html import escape

from tokline.accounting.totals import Totals
from tokline.prompt.fields import money, tokens

WEEKS = 53
LEVELS = 5  # 0 = no usage, 1..4 = quartiles of the days with usage
NO_COLOR_CELLS = "·░▒▓█"
ANSI_256 = (237, 22, 28, 34, 46)  # dark grey, then greens from dim to bright
SVG_COLORS = ("#ebedf0", "#9be9a8", "#40c463", "#30a14e", "#216e39")
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class Cell:
    day: dt.date
    cost_usd: float
    tokens: int
    unpriced: bool
    value: float
    level: int = 0


@dataclass
class Heatmap:
    metric: str  # "cost" or "tokens"
    start: dt.date  # the first row of the first column
    end: dt.date  # the last day drawn (today by default)
    week_start: int  # weekday of the first row, 0 = Monday
    columns: list[list[Cell | None]] = field(default_factory=list)  # None: after ``end``
    thresholds: tuple[float, ...] = ()
    total_cost: float = 0.0
    total_tokens: int = 0
    unpriced: bool = False
    active_days: int = 0
    longest_streak: int = 0
    current_streak: int = 0
    busiest: Cell | None = None

    def cells(self) -> list[Cell]:
        return [cell for column in self.columns for cell in column if cell is not None]

    def month_labels(self) -> list[tuple[int, str]]:
        """(column, "Jan") where a month's first day falls, and the first column."""
        labels: list[tuple[int, str]] = []
        for index, column in enumerate(self.columns):
            first = column[0]
            days = [c.day for c in column if c is not None]
            starts = [d for d in days if d.day == 1]
            if starts or (index == 0 and first is not None and first.day.day <= 21):
                labels.append((index, (starts[0] if starts else days[0]).strftime("%b")))
        return labels

    def describe(self, cell: Cell) -> str:
        return f"{cell.day.isoformat()}: {money(cell.cost_usd, cell.unpriced)} · " \
               f"{cell.tokens:,} tokens"

    def summary(self) -> str:
        total = money(self.total_cost, self.unpriced)
        text = (f"{total} · {tokens(self.total_tokens)} tokens · {self.active_days} "
                f"active day{'s' if self.active_days != 1 else ''} · longest streak "
                f"{self.longest_streak} · current streak {self.current_streak}")
        if self.busiest is not None:
            text += f" · busiest {self.describe(self.busiest).split(' · ')[0]}"
        return text


def _thresholds(values: list[float]) -> tuple[float, ...]:
    """Upper bounds of levels 1-3 (quartiles of the days with usage), then the maximum."""
    ranked = sorted(v for v in values if v > 0)
    if not ranked:
        return ()
    return (*(ranked[max(0, len(ranked) * q // 4 - 1)] for q in (1, 2, 3)), ranked[-1])


def level_of(value: float, thresholds: tuple[float, ...]) -> int:
    """0 for no usage; the busiest day is always 4, so one heavy day stands out."""
    if value <= 0 or not thresholds:
        return 0
    if value >= thresholds[-1]:
        return LEVELS - 1
    return min(LEVELS - 1, 1 + sum(1 for bound in thresholds[:-1] if value > bound))


def build(days: dict[dt.date, Totals], end: dt.date, week_start: int = 0,
          metric: str = "cost", weeks: int = WEEKS) -> Heatmap:
    last_column = end - dt.timedelta(days=(end.weekday() - week_start) % 7)
    start = last_column - dt.timedelta(weeks=weeks - 1)
    heat = Heatmap(metric, start, end, week_start)
    cells: list[Cell] = []
    for offset in range((end - start).days + 1):
        day = start + dt.timedelta(days=offset)
        totals = days.get(day)
        cost = totals.cost_usd if totals else 0.0
        tokens = totals.total_tokens if totals else 0
        cells.append(Cell(day, cost, tokens, bool(totals and totals.unpriced),
                          cost if metric == "cost" else float(tokens)))
    heat.thresholds = _thresholds([c.value for c in cells])
    run = 0
    for cell in cells:
        cell.level = level_of(cell.value, heat.thresholds)
        heat.total_cost += cell.cost_usd
        heat.total_tokens += cell.tokens
        heat.unpriced = heat.unpriced or cell.unpriced
        active = cell.tokens > 0 or cell.cost_usd > 0
        heat.active_days += active
        run = run + 1 if active else 0
        heat.longest_streak = max(heat.longest_streak, run)
        if active and (heat.busiest is None or cell.value > heat.busiest.value):
            heat.busiest = cell
    # The current streak may end yesterday: today simply has not started yet.
    tail = cells[:-1] if cells and cells[-1].tokens == 0 else cells
    for cell in reversed(tail):
        if cell.tokens == 0 and cell.cost_usd == 0:
            break
        heat.current_streak += 1
    for index in range(0, len(cells), 7):
        column: list[Cell | None] = list(cells[index:index + 7])
        heat.columns.append(column + [None] * (7 - len(column)))
    return heat


def _weekday_label(heat: Heatmap, row: int) -> str:
    weekday = (heat.week_start + row) % 7
    return WEEKDAY_NAMES[weekday] if weekday in (0, 2, 4) else ""  # Mon, Wed, Fri


def terminal(heat: Heatmap, color: bool, width: int = 80) -> str:
    """Rows of cells, a month line above and weekday labels to the left; as many of the
    last weeks as fit in ``width``; two characters per cell when there is room."""
    label_width = 4
    cell_width = 2 if label_width + 2 * len(heat.columns) <= width else 1
    shown = min(len(heat.columns), max(1, (width - label_width) // cell_width))
    columns = heat.columns[-shown:]
    skipped = len(heat.columns) - shown

    def paint(cell: Cell | None) -> str:
        if cell is None:
            return " " * cell_width
        pad = " " * (cell_width - 1)
        if color:
            return f"\033[38;5;{ANSI_256[cell.level]}m■\033[0m{pad}"
        return NO_COLOR_CELLS[cell.level] + pad

    months = [" "] * (label_width + shown * cell_width + 3)
    taken = 0
    for index, name in heat.month_labels():
        pos = label_width + (index - skipped) * cell_width
        if index < skipped or pos < taken:
            continue
        months[pos:pos + 3] = list(name)
        taken = pos + 4
    lines = ["".join(months).rstrip()]
    for row in range(7):
        cells = "".join(paint(column[row]) for column in columns)
        lines.append(f"{_weekday_label(heat, row):<{label_width}}{cells}".rstrip())
    legend = " ".join(paint(Cell(heat.end, 0, 0, False, 0, lvl)).rstrip()
                      for lvl in range(LEVELS))
    lines.append(f"{'':<{label_width}}Less {legend} More")
    line = ""
    for part in heat.summary().split(" · "):  # wrapped between its parts
        if line and len(line) + 3 + len(part) > width:
            lines.append(line)
            line = part
        else:
            line = f"{line} · {part}" if line else part
    lines.append(line)
    return "\n".join(lines)


CELL, GAP, LEFT, TOP = 11, 3, 32, 20


def svg(heat: Heatmap, title: str = "", with_summary: bool = True) -> str:
    step = CELL + GAP
    width = LEFT + len(heat.columns) * step + 10
    height = TOP + 7 * step + (44 if with_summary else 24)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" class="tokline-graph">']
    out.append(f"<title>{escape(title or 'tokline: spend per day')}</title>")
    out.append("<style>text{font:10px -apple-system,'Segoe UI',Helvetica,Arial,sans-serif;"
               "fill:#57606a}" + "".join(f".l{i}{{fill:{c}}}" for i, c in enumerate(SVG_COLORS))
               + "rect.day{shape-rendering:geometricPrecision}</style>")
    for index, name in heat.month_labels():
        out.append(f'<text class="month" x="{LEFT + index * step}" y="{TOP - 7}">{name}</text>')
    for row in range(7):
        label = _weekday_label(heat, row)
        if label:
            out.append(f'<text class="weekday" x="0" y="{TOP + row * step + 9}">{label}</text>')
    for index, column in enumerate(heat.columns):
        for row, cell in enumerate(column):
            if cell is None:
                continue
            out.append(
                f'<rect class="day l{cell.level}" x="{LEFT + index * step}" '
                f'y="{TOP + row * step}" width="{CELL}" height="{CELL}" rx="2" ry="2" '
                f'data-date="{cell.day.isoformat()}" data-level="{cell.level}" '
                f'data-cost="{cell.cost_usd:.6f}" data-tokens="{cell.tokens}">'
                f"<title>{escape(heat.describe(cell))}</title></rect>")
    legend_y = TOP + 7 * step + 6
    x = width - 10 - (LEVELS * step + 60)
    out.append(f'<text x="{x}" y="{legend_y + 9}">Less</text>')
    for lvl in range(LEVELS):
        out.append(f'<rect class="legend l{lvl}" x="{x + 26 + lvl * step}" y="{legend_y}" '
                   f'width="{CELL}" height="{CELL}" rx="2" ry="2"/>')
    out.append(f'<text x="{x + 30 + LEVELS * step}" y="{legend_y + 9}">More</text>')
    if with_summary:
        out.append(f'<text class="summary" x="0" y="{legend_y + 32}">'
                   f"{escape(heat.summary())}</text>")
    out.append("</svg>")
    return "\n".join(out)


def html(heat: Heatmap, title: str) -> str:
    """A page that shows the graph with a tooltip per day; nothing loaded from elsewhere."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>
body{{font:14px -apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#24292f;
background:#fff;margin:2em}}
h1{{font-size:20px;font-weight:600}}
#tip{{position:fixed;pointer-events:none;background:#24292f;color:#fff;padding:4px 8px;
border-radius:4px;font-size:12px;display:none;white-space:nowrap}}
rect.day:hover{{stroke:#24292f;stroke-width:1}}
</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="summary">{escape(heat.summary())}</p>
{svg(heat, title, with_summary=False)}
<div id="tip" role="tooltip"></div>
<script>
(function () {{
  var tip = document.getElementById("tip");
  document.querySelectorAll("rect.day").forEach(function (cell) {{
    var text = cell.querySelector("title").textContent;
    cell.addEventListener("mousemove", function (event) {{
      tip.textContent = text;
      tip.style.display = "block";
      tip.style.left = (event.clientX + 12) + "px";
      tip.style.top = (event.clientY + 12) + "px";
    }});
    cell.addEventListener("mouseleave", function () {{ tip.style.display = "none"; }});
  }});
}})();
</script>
</body>
</html>
"""
