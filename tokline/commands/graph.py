"""``tokline graph``: the last year as a contribution heatmap, in the terminal, as SVG or
as a self-contained HTML page."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys

from tokline.accounting import rollup
from tokline.commands.common import open_context, parse_day, parse_sources, write_file
from tokline.surfaces import heatmap as graph


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline graph")
    parser.add_argument("--metric", choices=("cost", "tokens"), default="cost",
                        help="what the shades measure (default: cost)")
    parser.add_argument("--svg", metavar="FILE", help="write an SVG picture")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML page")
    parser.add_argument("--until", metavar="DATE", help="last day drawn (default: today)")
    parser.add_argument("--weeks", type=int, default=graph.WEEKS, help=argparse.SUPPRESS)
    parser.add_argument("--tz", metavar="ZONE", help="IANA time zone (default: config, system)")
    parser.add_argument("--source", metavar="NAMES", help="only these assistants")
    parser.add_argument("--offline", action="store_true",
                        help="draw from the ledger as it is, without scanning logs first")
    args = parser.parse_args(argv)
    ctx = open_context(args.tz, do_refresh=not args.offline, quick=True)
    today = dt.datetime.now(ctx.calendar.zone).date()
    end = parse_day(args.until, "--until") if args.until else today
    weeks = max(1, min(args.weeks, 60))
    start = end - dt.timedelta(weeks=weeks, days=7)
    days = rollup.daily(ctx.ledger, ctx.calendar, start, end, ctx.config.cost_mode,
                        parse_sources(args.source))
    heat = graph.build(days, end, ctx.calendar.week_start, args.metric, weeks)
    title = f"tokline: {'spend' if args.metric == 'cost' else 'tokens'} per day, " \
            f"{heat.start.isoformat()} to {end.isoformat()}"
    wrote = []
    for path, text in ((args.svg, graph.svg(heat, title) if args.svg else ""),
                       (args.html, graph.html(heat, title) if args.html else "")):
        if path:
            write_file(path, text)
            wrote.append(path)
    if wrote:
        print(f"wrote {' and '.join(wrote)}")
        return 0
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    print(graph.terminal(heat, color, shutil.get_terminal_size((80, 24)).columns))
    return 0
