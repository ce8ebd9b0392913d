"""``tokline daily|weekly|monthly|session|projects|models|blocks``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from collections.abc import Callable
from typing import Any

from tokline.accounting.blocks import Block, blocks
from tokline.accounting.summary import Group, grand_total, group_by
from tokline.accounting.totals import Totals
from tokline.commands.common import (
    Context,
    add_common_options,
    day_window,
    device_labels,
    device_names,
    money,
    open_context,
    parse_devices,
    parse_sources,
)
from tokline.engine.records import SYNTHETIC
from tokline.ledger.store import StoredUsage, now_ms
from tokline.prompt.safetext import clean
from tokline.surfaces.bars import bar, chart
from tokline.units import DAY_MS

TITLES = {
    "daily": "Date", "weekly": "Week", "monthly": "Month", "session": "Session",
    "projects": "Project", "models": "Model",
}


def build_parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"tokline {name}")
    add_common_options(parser)
    if name in ("daily", "weekly", "monthly"):
        parser.add_argument("--chart", action="store_true",
                            help="a bar chart of cost per period under the table")
    if name == "blocks":
        parser.add_argument("--active", action="store_true", help="only the current block")
        parser.add_argument("--recent", action="store_true", help="only the last 3 days")
    return parser


def _key_fn(name: str, ctx: Context) -> Callable[[StoredUsage], str]:
    cal = ctx.calendar
    if name == "daily":
        return lambda r: cal.day(r.ts_ms)
    if name == "weekly":
        return lambda r: cal.week(r.ts_ms)
    if name == "monthly":
        return lambda r: cal.month(r.ts_ms)
    if name == "session":
        return lambda r: r.session_id
    if name == "projects":
        return lambda r: r.project
    return lambda r: r.model


def _row_json(group: Group, name: str, ctx: Context, labels: dict[int, str]
              ) -> dict[str, Any]:
    row: dict[str, Any] = {"period" if name in ("daily", "weekly", "monthly") else "key": group.key}
    row.update(group.totals.as_json())
    row["first_activity"] = _iso(group.first_ms)
    row["last_activity"] = _iso(group.last_ms)
    row["models"] = [
        {"model": model, **totals.as_json()}
        for model, totals in sorted(group.models.items(), key=lambda kv: -kv[1].cost_usd)
    ]
    row["synthetic_requests"] = group.synthetic
    row["sources"] = {source: t.as_json() for source, t in sorted(group.sources.items())}
    row["devices"] = _devices_json(group, labels)
    row.update(group.extra)
    return row


def _devices_json(group: Group, labels: dict[int, str]) -> dict[str, Any]:
    return {labels.get(device, f"{device:016x}"): t.as_json()
            for device, t in sorted(group.devices.items(),
                                    key=lambda kv: labels.get(kv[0], f"{kv[0]:016x}"))}


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _fmt(n: int) -> str:
    return f"{n:,}"


def render_table(headers: list[str], rows: list[list[str]], numeric_from: int,
                 total: list[str] | None = None) -> str:
    every = rows + ([total] if total else [])
    widths = [max([len(h)] + [len(r[i]) for r in every]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            out.append(cell.rjust(widths[i]) if i >= numeric_from else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    body = [line(headers), sep] + [line(r) for r in rows]
    if total:
        body += [sep, line(total)]
    return "\n".join(body)


def _cells(label: str, extra: str, t: Totals) -> list[str]:
    return [label, extra, _fmt(t.input), _fmt(t.output), _fmt(t.cache_creation),
            _fmt(t.cache_read), _fmt(t.total_tokens), money(t.cost_usd, t.unpriced)]


def _short_project(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return clean("/".join(parts[-2:]) if len(parts) > 1 else path)


def _models_label(group: Group) -> str:
    names = sorted(group.models, key=lambda m: -group.models[m].cost_usd)
    shown = [clean(n.removeprefix("claude-"), 60) for n in names[:2]]
    return ", ".join(shown) + (f" +{len(names) - 2}" if len(names) > 2 else "")


def report_groups(name: str, ctx: Context, args: argparse.Namespace) -> int:
    since_ms, until_ms = day_window(ctx, args.since, args.until)
    rows = list(ctx.ledger.usage(since_ms, until_ms, parse_sources(args.source),
                                 parse_devices(ctx, args.device)))
    labels = device_labels(device_names(ctx))
    groups = group_by(rows, _key_fn(name, ctx), ctx.coster)
    if name in ("session", "projects"):
        for group in groups.values():
            group.extra["last_local_day"] = ctx.calendar.day(group.last_ms)
        ordered = sorted(groups.values(), key=lambda g: g.last_ms)
    elif name == "models":
        ordered = sorted(groups.values(), key=lambda g: -g.totals.cost_usd)
    else:
        ordered = [groups[k] for k in sorted(groups)]
    total = grand_total(ordered)
    if name == "models":
        # Synthetic messages are no model's: the total keeps them, no row lists them.
        ordered = [g for g in ordered if g.key != SYNTHETIC]
    if args.json:
        out = {
            "report": name,
            "timezone": str(ctx.calendar.zone),
            "rows": [_row_json(g, name, ctx, labels) for g in ordered],
            "totals": {**total.totals.as_json(), "synthetic_requests": total.synthetic,
                       "models": [
                {"model": m, **t.as_json()}
                for m, t in sorted(total.models.items(), key=lambda kv: -kv[1].cost_usd)],
                "sources": {s: t.as_json() for s, t in sorted(total.sources.items())},
                "devices": _devices_json(total, labels)},
            "unpriced_models": sorted(ctx.coster.unpriced_models),
        }
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not ordered:
        print("No usage found. tokline reads the logs of Claude Code, Codex, Gemini CLI, "
              "OpenCode and Copilot CLI; `tokline doctor` lists where it looked.")
        return 0
    headers = [TITLES[name], "Models", "Input", "Output", "Cache write", "Cache read",
               "Total tokens", "Cost"]
    if name == "models":
        headers[1] = "Requests"
        headers.append("Share of cost")
    table: list[list[str]] = []
    for g in ordered:
        label = clean(g.key)  # every text column from log data goes through clean()
        if name == "projects":
            label = _short_project(g.key)
        elif name == "session":
            label = clean(g.key[:8]) + "  " + ctx.calendar.day(g.last_ms)
        extra = _fmt(g.totals.requests) if name == "models" else _models_label(g)
        table.append(_cells(label, extra, g.totals))
        if name == "models":
            share = g.totals.cost_usd / total.totals.cost_usd if total.totals.cost_usd else 0
            table[-1].append(f"{bar(share, 1.0, 10)} {100 * share:3.0f}%")
    footer = _cells("Total", "", total.totals) + (["100%"] if name == "models" else [])
    print(render_table(headers, table, 2 if name != "models" else 1, footer))
    if name == "models" and total.synthetic:
        print(f"(the total's requests include {total.synthetic:,} synthetic messages of "
              "Claude Code: no model, no tokens)")
    if getattr(args, "chart", False):
        width = shutil.get_terminal_size((80, 24)).columns
        print()
        print(chart([(clean(g.key), g.totals.cost_usd, money(g.totals.cost_usd, g.totals.unpriced))
                     for g in ordered], width))
    if ctx.coster.unpriced_models:
        print(f"\n+? unpriced models (tokens counted, no cost): "
              f"{', '.join(clean(m) for m in sorted(ctx.coster.unpriced_models))}")
    return 0


def _block_json(b: Block, now: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "start": _iso(b.start_ms), "end": _iso(b.end_ms), "gap": b.gap, "active": b.active,
        "first_activity": None if b.gap else _iso(b.first_ms),
        "last_activity": None if b.gap else _iso(b.last_ms),
        "models": sorted(b.models), **b.totals.as_json(),
    }
    burn = b.burn(now)
    if burn is not None:
        out["burn_rate"] = {"tokens_per_minute": round(burn["tokens_per_minute"], 1),
                            "usd_per_hour": round(burn["usd_per_hour"], 4)}
        out["projection"] = {"remaining_minutes": round(burn["remaining_minutes"]),
                             "total_tokens": round(burn["projected_tokens"]),
                             "cost_usd": round(burn["projected_cost_usd"], 4)}
    return out


def report_blocks(ctx: Context, args: argparse.Namespace) -> int:
    since_ms, until_ms = day_window(ctx, args.since, args.until)
    now = now_ms()
    if args.recent:
        since_ms = max(since_ms or 0, now - 3 * DAY_MS)
    rows = [r for r in ctx.ledger.usage(since_ms, until_ms, ["claude"],
                                        parse_devices(ctx, args.device))]
    found = blocks(rows, ctx.coster, now, ctx.config.block_hours)
    if args.active:
        found = [b for b in found if b.active]
    if args.json:
        json.dump({"report": "blocks", "blocks": [_block_json(b, now) for b in found]},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not found:
        print("No blocks found.")
        return 0
    headers = ["Block start (local)", "Status", "Models", "Tokens", "Cost", "Burn", "Projected"]
    table: list[list[str]] = []
    for b in found:
        local = dt.datetime.fromtimestamp(b.start_ms / 1000, ctx.calendar.zone)
        if b.gap:
            table.append([local.strftime("%Y-%m-%d %H:%M"), "gap", "", "", "", "", ""])
            continue
        status = "ACTIVE" if b.active else ""
        burn = b.burn(now)
        burn_text = projected = ""
        if burn is not None:
            left = int(burn["remaining_minutes"])
            status = f"ACTIVE {left // 60}h{left % 60:02d}m left"
            burn_text = f"${burn['usd_per_hour']:.2f}/h"
            projected = f"${burn['projected_cost_usd']:.2f}"
        table.append([local.strftime("%Y-%m-%d %H:%M"), status,
                      ", ".join(clean(m.removeprefix("claude-"), 60) for m in sorted(b.models)),
                      _fmt(b.totals.total_tokens), money(b.totals.cost_usd, b.totals.unpriced),
                      burn_text, projected])
    print(render_table(headers, table, 3))
    return 0


def run(name: str, argv: list[str]) -> int:
    args = build_parser(name).parse_args(argv)
    ctx = open_context(args.tz, do_refresh=not args.offline, quiet=args.json)
    with ctx.ledger:
        if name == "blocks":
            return report_blocks(ctx, args)
        return report_groups(name, ctx, args)
