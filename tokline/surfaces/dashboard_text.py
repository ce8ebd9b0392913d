"""The dashboard's tabs as lines of (text, style) segments, for any width.

Styles are names ("ok", "warn", "crit", "dim", "bold"); the Textual app maps them to
colours, or drops them under NO_COLOR.  Nothing here imports a terminal library, so the
tabs can be checked as plain text.  Every name from logs or remote answers (model,
session, project, source, quota window, note, error) goes through
tokline.prompt.safetext.clean here."""

from __future__ import annotations

from typing import Any

from tokline.accounting.totals import Totals
from tokline.prompt import fields as view
from tokline.prompt.fields import money
from tokline.prompt.fields import tokens as compact
from tokline.prompt.safetext import clean
from tokline.prompt.template import CRIT, WARN, level_of
from tokline.surfaces.bars import bar
from tokline.surfaces.dashboard_data import PERIODS, DashData

Segment = tuple[str, "str | None"]
Line = list[Segment]


def duration(seconds: float) -> str:
    return view.duration(seconds / 60)


def _style(percent: float | None, data: DashData) -> str:
    level = level_of(percent, data.warn, data.critical)
    return {CRIT: "crit", WARN: "warn"}.get(level or "", "ok")


EVEN = "│"  # the even-burn mark on a quota gauge


def gauge(percent: float, width: int, data: DashData, even: float | None = None) -> Line:
    """A bar of ``percent``; ``even``: where an even burn of the window would be by now
    (its elapsed share), marked on the bar."""
    filled = bar(percent, 100.0, width).rstrip()
    cells: Line = [(filled, _style(percent, data)), ("░" * (width - len(filled)), "dim")]
    if even is not None:
        at = min(width - 1, max(0, int(even / 100 * width)))
        if at < len(filled):
            cells = [(filled[:at], cells[0][1]), (EVEN, "bold"),
                     (filled[at + 1:], cells[0][1]), cells[1]]
        else:
            empty = width - len(filled)
            cells = [cells[0], ("░" * (at - len(filled)), "dim"), (EVEN, "bold"),
                     ("░" * (empty - (at - len(filled)) - 1), "dim")]
    return [*(cell for cell in cells if cell[0]), (f" {percent:3.0f}%", None)]


def plain(lines: list[Line]) -> str:
    return "\n".join("".join(text for text, _ in line) for line in lines)


def _period(name: str, entry: dict[str, Any] | None) -> Line:
    if not entry:
        return [(f"{name:<7}", "bold"), ("—", "dim")]
    return [(f"{name:<7}", "bold"),
            (f"{money(entry.get('cost_usd', 0.0), bool(entry.get('unpriced'))):>11}", None),
            (f"  {compact(int(entry.get('total_tokens') or 0)):>7} tokens", "dim")]


def overview(data: DashData, width: int) -> list[Line]:
    view = data.view
    hint: list[Line] = [[("No usage yet this month. Start Claude Code, Codex, Gemini CLI, "
                          "OpenCode or Copilot; tokline reads their logs.", "dim")], []]
    if not view:
        return hint
    lines: list[Line] = hint if not (view.get("month") or {}).get("total_tokens") else []
    lines += [_period(name.capitalize(), view.get(name)) for name in ("today", "week", "month")]
    today = view.get("today") or {}
    sources = sorted((today.get("sources") or {}).items(), key=lambda kv: -kv[1]["cost_usd"])
    if len(sources) > 1:
        lines.append([("  " + " · ".join(f"{clean(s, 40)} {money(t['cost_usd'])}"
                                         for s, t in sources),
                       "dim")])
    gauge_width = max(6, min(30, width - 40))
    block = view.get("block") or {}
    lines.append([])
    if block.get("active"):
        left = block["end"] - data.now
        head: Line = [("5-hour block ", "bold"), (money(block["cost_usd"],
                                                      bool(block.get("unpriced"))), None)]
        if isinstance(block.get("used_percent"), (int, float)):
            head += [("  ", None), *gauge(float(block["used_percent"]), gauge_width, data)]
        head.append((f"  {duration(left)} left", None))
        lines.append(head)
        span = float(block["end"]) - float(block.get("start") or block["end"])
        if span > 0:  # how much of the five hours has gone, whatever the plan
            elapsed = 100 * min(1.0, max(0.0, (data.now - float(block["start"])) / span))
            filled = bar(elapsed, 100.0, gauge_width).rstrip()
            lines.append([("  time ", "dim"), (filled, None),
                          ("░" * (gauge_width - len(filled)), "dim"),
                          (f" {elapsed:3.0f}% of the block gone", "dim")])
        if block.get("burn_rate_usd_per_hour") is not None:
            lines.append([(f"  burn {money(block['burn_rate_usd_per_hour'])}/h → projected "
                           f"{money(block.get('projected_cost_usd') or 0.0)}", "dim")])
    else:
        lines.append([("5-hour block ", "bold"), ("none active", "dim")])
    lines += [[], *quota_lines(data, width, brief=True)]
    budgets = view.get("budget") or {}
    if budgets:
        lines += [[], [("Budgets", "bold")]]
        for name, entry in budgets.items():
            lines.append([(f"  {name:<8}", None),
                          *gauge(float(entry["used_percent"]), gauge_width, data),
                          (f"  {money(entry['spent_usd'])} of {money(entry['limit_usd'])}",
                           "dim")])
    return lines


def _window_label(window: dict[str, Any]) -> str:
    return f"{clean(window['source'], 40)} {clean(window['window'], 40)}"


def quota_lines(data: DashData, width: int, brief: bool = False) -> list[Line]:
    windows = data.view.get("quota") or []
    lines: list[Line] = [[("Quota", "bold")]]
    if not windows:
        lines.append([("  none known: Claude Code's status line, Codex logs or "
                       "`tokline auth login` provide it", "dim")])
        return lines
    label_width = min(24, max(len(_window_label(w)) for w in windows) + 2)
    gauge_width = max(6, min(24, width - label_width - 40))
    for window in windows:
        line: Line = [(f"  {_window_label(window):<{label_width}}", None)]
        pct = window.get("used_percent")
        if isinstance(pct, (int, float)):
            line += gauge(float(pct), gauge_width, data, window.get("elapsed_percent"))
            if window.get("kind") == "estimate":
                line.append(("~", "dim"))
        extra = []
        for key, label in (("spent_usd", "spent"), ("remaining_usd", "left"),
                           ("balance_usd", "balance")):
            if isinstance(window.get(key), (int, float)):
                extra.append(f"{money(window[key])} {label}")
        if isinstance(window.get("remaining"), (int, float)):
            extra.append(f"{window['remaining']:,.0f} left")
        if window.get("note"):
            extra.append(clean(window["note"]))
        if window.get("resets_at"):
            extra.append(f"resets in {duration(window['resets_at'] - data.now)}")
        if isinstance(window.get("pace_percent"), (int, float)):
            extra.append(f"{view.pace_text(window['pace_percent'])} vs even")
        if isinstance(window.get("runout_at"), (int, float)):
            extra.append(f"out {view.clock(window['runout_at'], None, data.now)}")
        if window.get("device"):  # a reading another device made (tokline sync)
            extra.append(f"from {clean(window['device'], 30)}")
        line.append(("  " + " · ".join(extra), "dim" if brief else None))
        if window.get("stale"):
            stamp = window.get("as_of")
            line.append(("  stale" + (f", as of {view.clock(stamp, None, data.now)}"
                                       if isinstance(stamp, (int, float)) else ""), "warn"))
        lines.append(line)
    return lines


def quota(data: DashData, width: int) -> list[Line]:
    lines = quota_lines(data, width)
    lines += [[], [("Remote providers", "bold")]]
    if not data.remote:
        lines.append([("  none configured (tokline auth login copilot|openrouter|"
                       "anthropic-admin|openai-admin)", "dim")])
    for key, entry in sorted(data.remote.items()):
        provider, _, account = key.partition(":")
        name = clean(provider if account in ("", "default") else f"{provider}@{account}", 60)
        fetched = entry.get("fetched_at")
        age = f"fetched {duration(data.now - fetched)} ago" if fetched else "never fetched"
        line: Line = [(f"  {name:<22}", None), (age, "dim")]
        if entry.get("error"):
            line.append((f"  last error: {clean(entry['error'])}", "crit"))
        lines.append(line)
    if data.snapshot_age_s is not None:
        lines += [[], [(f"Snapshot as of {duration(data.snapshot_age_s)} ago", "dim")]]
    return lines


def _bars(rows: list[tuple[str, Totals]], width: int, largest: float | None = None
          ) -> list[Line]:
    if not rows:
        return [[("No usage in this window.", "dim")]]
    label_width = max(len(label) for label, _ in rows)
    top = largest if largest is not None else max(t.cost_usd for _, t in rows)
    room = max(4, width - label_width - 22)
    return [[(f"{label:<{label_width}}  ", None), (bar(t.cost_usd, top, room), "ok"),
             (f" {money(t.cost_usd, t.unpriced):>11}", None),
             (f" {compact(t.total_tokens):>7}", "dim")] for label, t in rows]


def daily(data: DashData, width: int) -> list[Line]:
    unit, count = PERIODS[data.period]
    total = Totals()
    for _, totals in data.periods:
        total.merge(totals)
    head: Line = [(f"Cost per {unit}, last {count}", "bold"),
                  ("   d/w/m: day, week, month", "dim")]
    return [head, [], *_bars(list(reversed(data.periods)), width), [],
            [(f"Total {money(total.cost_usd, total.unpriced)} · "
              f"{compact(total.total_tokens)} tokens", "bold")]]


def _share_rows(rows: list[tuple[str, Totals]], width: int) -> list[Line]:
    rows = [(clean(name), totals) for name, totals in rows]
    total = sum(t.cost_usd for _, t in rows) or 1.0
    # name, 2, bar, " 100%", money (12), tokens (8): the bar and then the name give way
    name_width = max(6, min(34, max([len(n) for n, _ in rows] + [5]), width - 33))
    room = max(4, width - name_width - 27)
    lines: list[Line] = []
    for name, totals in rows:
        share = totals.cost_usd / total
        shown = name if len(name) <= name_width else name[:name_width - 1] + "…"
        lines.append([(f"{shown:<{name_width}}  ", None),
                      (bar(share, 1.0, room), "ok"), (f" {100 * share:3.0f}%", None),
                      (f" {money(totals.cost_usd, totals.unpriced):>11}", None),
                      (f" {compact(totals.total_tokens):>7}", "dim")])
    return lines


def _since(data: DashData) -> str:
    return f"since {data.window_start.isoformat()}" if data.window_start else ""


def models(data: DashData, width: int) -> list[Line]:
    head: Line = [("Models by cost ", "bold"), (_since(data), "dim")]
    if not data.models:
        return [head, [], [("No usage in this window.", "dim")]]
    return [head, [], *_share_rows(data.models, width)]


def _short(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return "/".join(parts[-2:]) if len(parts) > 1 else path


def sessions(data: DashData, width: int) -> list[Line]:
    lines: list[Line] = [[("Projects by cost ", "bold"), (_since(data), "dim")], []]
    lines += _share_rows([(_short(p) or "?", t) for p, t in data.projects[:15]], width) \
        or [[("No usage in this window.", "dim")]]
    lines += [[], [("Sessions by cost", "bold")], []]
    several = any(device for *_, device, _totals in data.sessions)
    for source, session, project, device, totals in data.sessions[:40]:
        place = clean(_short(project))[:max(8, width - (66 if several else 50))]
        machine = f" {clean(device, 15):<15}" if several else ""
        lines.append([(f"{clean(session[:8]):<8}  {clean(source, 20):<8} {place:<24}{machine}",
                       None),
                      (f" {money(totals.cost_usd, totals.unpriced):>11}", None),
                      (f" {compact(totals.total_tokens):>7}", "dim")])
    return lines


HELP = """Keys
  1-5, Tab     switch tabs (Overview, Daily, Models, Sessions, Quota)
  j / k        scroll down / up
  d / w / m    cost per day, week or month (and the window of models and sessions)
  r            refresh now (scan the logs, ask due remote providers)
  ?            this help
  q            quit

Updates arrive by themselves from `tokline watch` whenever a log changes."""
