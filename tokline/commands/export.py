"""``tokline export --csv|--json [--by day|model|session|project]``: usage rows for
spreadsheets and scripts, one row per (key, source, model), with stable column names.

Days are local days (``--tz``, config, else the system zone); times are UTC ISO 8601."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import sys
from typing import Any, TextIO

from tokline.accounting.totals import FIELDS, Totals
from tokline.commands.common import (
    add_common_options,
    day_window,
    device_labels,
    device_names,
    open_context,
    parse_devices,
    parse_sources,
    write_file,
)
from tokline.engine.records import SYNTHETIC

KEYS = {"day": ["day"], "session": ["session_id", "project"], "project": ["project"],
        "model": [], "device": ["device"]}


def columns(by: str) -> list[str]:
    return [*KEYS[by], "source", "model", *FIELDS, "first_activity", "last_activity"]


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline export")
    add_common_options(parser)  # its --json picks the JSON format
    parser.add_argument("--csv", action="store_true", help="comma-separated values (default)")
    parser.add_argument("--by", choices=tuple(KEYS), default="day",
                        help="one row per day (default), model, session, project or "
                             "device, each split by source and model")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    args = parser.parse_args(argv)
    if args.csv and args.json:
        parser.error("choose one of --csv and --json")
    ctx = open_context(args.tz, do_refresh=not args.offline, quiet=True)
    since_ms, until_ms = day_window(ctx, args.since, args.until)
    groups: dict[tuple[str, ...], list[Any]] = {}
    with ctx.ledger:
        labels = device_labels(device_names(ctx))
        for row in ctx.ledger.usage(since_ms, until_ms, parse_sources(args.source),
                                    parse_devices(ctx, args.device)):
            if row.model == SYNTHETIC:
                continue
            key_values = {"day": (ctx.calendar.day(row.ts_ms),),
                          "session": (row.session_id, row.project),
                          "project": (row.project,), "model": (),
                          "device": (labels.get(row.device, f"{row.device:016x}"),)}[args.by]
            key = (*key_values, row.source, row.model)
            entry = groups.get(key)
            if entry is None:
                entry = groups[key] = [Totals(), row.ts_ms, row.ts_ms]
            entry[0].add(row, ctx.coster(row))
            entry[2] = max(entry[2], row.ts_ms)
    rows = []
    for key in sorted(groups):
        totals, first, last = groups[key]
        numbers = totals.as_json()
        numbers["cost_usd"] = round(totals.cost_usd, 6)
        rows.append({**dict(zip([*KEYS[args.by], "source", "model"], key, strict=True)),
                     **{name: numbers[name] for name in FIELDS},
                     "first_activity": _iso(first), "last_activity": _iso(last)})
    if args.output:
        text = io.StringIO()
        _write(text, args, str(ctx.calendar.zone), rows)
        write_file(args.output, text.getvalue())
    else:
        if not args.json and sys.stdout.isatty():
            # CSV is a file format and stays exact in a file or a pipe; on a terminal its
            # log text (sessions, projects, models) is shown through the sanitiser
            from tokline.prompt.safetext import clean  # noqa: PLC0415

            rows = [{k: clean(v, None) if isinstance(v, str) else v for k, v in row.items()}
                    for row in rows]
        _write(sys.stdout, args, str(ctx.calendar.zone), rows)
    return 0


def _write(out: TextIO, args: argparse.Namespace, zone: str, rows: list[dict[str, Any]]
           ) -> None:
    if args.json:
        json.dump({"by": args.by, "timezone": zone, "columns": columns(args.by),
                   "rows": rows}, out, indent=2)
        out.write("\n")
        return
    writer = csv.DictWriter(out, fieldnames=columns(args.by), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: str(v).lower() if isinstance(v, bool) else v
                      for k, v in row.items()} for row in rows)
