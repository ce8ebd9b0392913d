"""``tokline dashboard``: the full-screen live view (tokline/surfaces/dashboard.py)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tokline.commands.common import open_context, refresh_ledger
from tokline.ledger.store import Ledger
from tokline.surfaces import dashboard_data

if TYPE_CHECKING:
    from tokline.surfaces.dashboard import Dashboard


def run(name: str, argv: list[str]) -> int:
    app, ledger = make_app(argv)
    app.run()
    ledger.close()
    return 0


def make_app(argv: list[str]) -> tuple[Dashboard, Ledger]:
    """The app for these arguments, and the ledger it reads (closed by the caller)."""
    parser = argparse.ArgumentParser(prog="tokline dashboard")
    parser.add_argument("--tz", metavar="ZONE", help="IANA time zone (default: config, system)")
    parser.add_argument("--no-live", action="store_true",
                        help="don't follow `tokline watch`; refresh with r only")
    parser.add_argument("--first-frame", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # No scan before the first frame: the watch feed brings the ledger up to date and
    # the tabs follow.  A ledger that does not exist yet is built first.
    ctx = open_context(args.tz, do_refresh=False)
    if not ctx.ledger.has_usage():
        refresh_ledger(ctx.ledger)
        from tokline.snapshot.publish import publish  # noqa: PLC0415

        publish(ctx.ledger)
    def load(period: str, snapshot: dict[str, Any] | None) -> dashboard_data.DashData:
        return dashboard_data.load(ctx.ledger, ctx.calendar, period, ctx.config.cost_mode,
                             ctx.config.warn_percent, ctx.config.critical_percent,
                             snapshot=snapshot)

    def refresh() -> None:
        subprocess.run([sys.executable, "-m", "tokline", "refresh", "--remote", "--publish"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    from tokline.surfaces.dashboard import Dashboard  # noqa: PLC0415 - Textual loads here only

    live = not (args.no_live or args.first_frame)
    app = Dashboard(load, color=not os.environ.get("NO_COLOR"),
                    feed=WatchFeed() if live else None, refresher=refresh,
                    exit_after_first_frame=args.first_frame)
    return app, ctx.ledger


class WatchFeed:
    """Lines of a ``tokline watch --json`` child.  ``close`` ends the child, which ends
    the iteration (the reading thread cannot be cancelled otherwise)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def __call__(self) -> Iterator[str]:
        self.proc = subprocess.Popen([sys.executable, "-m", "tokline", "watch", "--json"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        assert self.proc.stdout is not None
        try:
            yield from self.proc.stdout
        finally:
            self.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
