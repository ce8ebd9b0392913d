"""``tokline watch --json``: the snapshot as JSON lines, a new one whenever it changes.

Editors and dashboards start this once instead of polling a process every few seconds.
It waits on inotify where Linux has it (through cffi) and polls elsewhere, coalesces a
burst of log writes into one refresh, and exits on SIGTERM, SIGHUP, end of stdin, or
when its parent goes away, so it never outlives the editor that started it.  Each line
carries ``rendered`` (see Emitter), so editors show what ``tokline status`` prints.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import time
from typing import Any

from tokline import sources
from tokline.accounting.pricing import price_book
from tokline.config import load
from tokline.engine.refresh import refresh
from tokline.errors import ToklineError
from tokline.ledger.store import Ledger
from tokline.prompt import statefiles
from tokline.prompt import template as render
from tokline.prompt.fields import KNOWN_FIELDS, as_of, read_json, rendered
from tokline.prompt.uptodate import ledger_path
from tokline.snapshot.lines import zone_of
from tokline.snapshot.publish import publish
from tokline.surfaces import inotify

QUIET_S = 0.15  # a burst of writes settles for this long before one refresh
SNAPSHOT_CHECK_S = 1.0  # how often a snapshot written by someone else is looked for
TICK_GAP_S = 2.0  # a change by time alone waits this long after the last line


class _Stop(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise _Stop


def log_roots(env: dict[str, str]) -> list[str]:
    return [r for source in sources.ALL for r in source.roots(env)]


class Emitter:
    """Prints the snapshot as it reads now, with ``rendered`` (the template rendered by the
    code ``tokline status`` runs: text, level, stale note, fields), whenever that changes:
    a new snapshot, or time alone (the block's time left ticking down, the stale note
    appearing, a day's or block's end)."""

    def __init__(self, snapshot_path: str, template: str,
                 thresholds: dict[str, float] | None = None) -> None:
        self.path = snapshot_path
        self.parts = render.parse_template(template)
        render.check_fields(self.parts, KNOWN_FIELDS)
        self.thresholds = thresholds
        self.snap: dict[str, Any] | None = None
        self.mtime: float | None = None
        self.last: str | None = None
        self.last_at = 0.0

    def __call__(self) -> None:
        mtime = _mtime(self.path)
        news = False
        if self.snap is None or mtime != self.mtime:
            snap = read_json(self.path)
            if snap is None:
                return
            news = snap != self.snap  # not only touched by a refresh that found nothing
            self.snap, self.mtime = snap, mtime
        if not news and time.monotonic() - self.last_at < TICK_GAP_S:
            return  # time alone: not right on the heels of a line for new data
        now = int(time.time())  # whole seconds, the clock of every reader (statefiles)
        view: dict[str, Any] = as_of(self.snap, now)
        view.pop("partials", None)
        if self.thresholds:
            view["thresholds"] = {**(view.get("thresholds") or {}), **self.thresholds}
        checked = statefiles.checked_at()
        age = now - checked if checked is not None else None
        view["rendered"] = rendered(view, self.parts, now, age, zone_of(self.snap))
        # the key leaves out what moves every second or minute without showing
        block = view.get("block")
        key = json.dumps({**view, "block": {k: v for k, v in block.items()
                                            if k != "remaining_minutes"}}
                         if isinstance(block, dict) else view, sort_keys=True)
        if key == self.last:
            return
        self.last, self.last_at = key, time.monotonic()
        view["stale_seconds"] = age
        sys.stdout.write(json.dumps(view, separators=(",", ":")) + "\n")
        sys.stdout.flush()


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline watch", description=__doc__)
    parser.add_argument("--json", action="store_true", help="JSON lines (the only format)")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="seconds between polls where inotify is missing (default 5)")
    parser.add_argument("--poll", action="store_true", help="poll even where inotify works")
    parser.add_argument("--format", "-f", metavar="TEMPLATE",
                        help="the template of each line's rendered.text (default: the "
                             "configured status template)")
    parser.add_argument("--warn", type=float, metavar="PERCENT",
                        help="rendered.level's warning threshold (default: the config's)")
    parser.add_argument("--critical", type=float, metavar="PERCENT",
                        help="rendered.level's critical threshold (default: the config's)")
    parser.add_argument("--no-refresh", action="store_true",
                        help="follow the snapshot others write; scan no logs")
    args = parser.parse_args(argv)
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    env = dict(os.environ)
    cfg = load()
    prices = price_book(cfg.price_overrides)
    snapshot_path = os.path.join(statefiles.state_dir(), statefiles.SNAPSHOT)
    thresholds = {name: value for name, value in (("warn", args.warn),
                                                  ("critical", args.critical))
                  if value is not None}
    try:
        emit = Emitter(snapshot_path, args.format or cfg.template, thresholds)
    except render.TemplateError as exc:
        raise ToklineError(f"template: {exc}") from None
    stdin_fd = sys.stdin.fileno() if not sys.stdin.isatty() else None
    watcher = None
    watched: set[str] = set()

    def watch_roots() -> None:
        """Every log root, also those that appeared since (a project Crush listed anew)."""
        if watcher is not None:
            for root in log_roots(env):
                if root not in watched:
                    watcher.add_tree(root)
                    watched.add(root)

    if not args.poll and not args.no_refresh and inotify.available():
        watcher = inotify.Watcher()
        watch_roots()
    ledger = Ledger(ledger_path())
    try:
        def update() -> None:
            if args.no_refresh:
                return
            report = refresh(ledger, env, incremental=True, prices=prices)
            watch_roots()
            if report.changed or not statefiles.touch():
                publish(ledger)

        update()
        emit()
        while True:
            timeout = SNAPSHOT_CHECK_S if watcher or args.no_refresh else args.interval
            also = [stdin_fd] if stdin_fd is not None else []
            if watcher is not None:
                changed, ready = watcher.wait(timeout, also)
                while changed:  # coalesce the burst
                    more, extra = watcher.wait(QUIET_S, also)
                    ready += extra
                    if not more:
                        break
            else:
                ready = select.select(also, [], [], timeout)[0] if also else []
                if not also:
                    time.sleep(timeout)
                changed = True
            if stdin_fd is not None and stdin_fd in ready and not os.read(stdin_fd, 4096):
                return 0  # the editor closed our stdin
            if os.getppid() != parent:
                return 0  # the editor is gone
            if changed:
                update()
            emit()  # a new snapshot, or the same one reading differently by now
    except (_Stop, KeyboardInterrupt, BrokenPipeError):
        return 0
    finally:
        ledger.close()
        if watcher is not None:
            watcher.close()


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
