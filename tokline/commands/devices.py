"""``tokline devices [--json]``: every device whose usage this ledger holds.

One line per device: its name and id, when it last synced (this device: its last
successful sync; another: the time of its newest segment imported), requests, and cost
today and in total.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from tokline.commands.common import device_labels, device_names, money, open_context
from tokline.commands.report import render_table
from tokline.prompt.safetext import clean
from tokline.sync import runner
from tokline.sync.device import local_id


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline devices")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--tz", metavar="ZONE", help="IANA time zone for today")
    parser.add_argument("--offline", action="store_true",
                        help="from the ledger as it is, without scanning logs first")
    args = parser.parse_args(argv)
    ctx = open_context(args.tz, do_refresh=not args.offline, quiet=args.json)
    with ctx.ledger:
        names = device_names(ctx)
        labels = device_labels(names)
        mine = local_id(ctx.ledger.path)
        mode = ctx.config.cost_mode
        today = ctx.calendar.start_ms(dt.datetime.now(ctx.calendar.zone).date())
        total = ctx.ledger.device_sums(None, mode)
        day = ctx.ledger.device_sums(today, mode)
        seen = dict(ctx.ledger.db.execute("SELECT id, last_seen_ms FROM devices").fetchall())
    state = runner.read_state()
    rows: list[dict[str, Any]] = []
    for device in sorted(set(names) | set(total), key=lambda d: (d != mine, labels.get(d, ""))):
        requests, tokens, cost, unpriced = total.get(device, (0, 0, 0.0, 0))
        _, _, cost_today, unpriced_today = day.get(device, (0, 0, 0.0, 0))
        last = state.get("last_ok_s") if device == mine else (seen.get(device) or 0) / 1000
        rows.append({"device": labels.get(device, f"{device:016x}"), "id": f"{device:016x}",
                     "this_device": device == mine,
                     "last_sync": _iso(last) if isinstance(last, (int, float)) and last else None,
                     "requests": requests, "total_tokens": tokens,
                     "cost_usd_today": round(cost_today, 6), "cost_usd": round(cost, 6),
                     "unpriced": bool(unpriced), "unpriced_today": bool(unpriced_today)})
    if args.json:
        json.dump({"devices": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    table = [[clean(r["device"], 40) + (" (this)" if r["this_device"] else ""), r["id"],
              (r["last_sync"] or "never")[:16].replace("T", " "), f"{r['requests']:,}",
              money(r["cost_usd_today"], r["unpriced_today"]), money(r["cost_usd"], r["unpriced"])]
             for r in rows]
    print(render_table(["Device", "Id", "Last sync (UTC)", "Requests", "Today", "Total"],
                       table, 3))
    return 0


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(
        timespec="seconds").replace("+00:00", "Z")
