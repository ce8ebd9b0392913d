"""``tokline watch --json``: the snapshot as JSON lines, a new one whenever it changes.

Editors and dashboards start this once instead of polling a process every few seconds.
It waits on inotify where Linux has it (through cffi) and polls elsewhere, coalesces a
burst of log writes into one refresh, and exits on SIGTERM, SIGHUP, end of stdin, or
when its parent goes away, so it never outlives the editor that started it.
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
from tokline.ledger.store import Ledger
from tokline.prompt import statefiles
from tokline.prompt.fields import as_of, read_json
from tokline.prompt.uptodate import ledger_path
from tokline.snapshot.publish import publish
from tokline.surfaces import inotify

QUIET_S = 0.15  # a burst of writes settles for this long before one refresh
SNAPSHOT_CHECK_S = 1.0  # how often a snapshot written by someone else is looked for


class _Stop(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise _Stop


def log_roots(env: dict[str, str]) -> list[str]:
    return [r for source in sources.ALL for r in source.roots(env)]


def emit(snapshot_path: str, last: str | None) -> str | None:
    snap = read_json(snapshot_path)
    if snap is None:
        return last
    now = time.time()
    view: dict[str, Any] = as_of(snap, now)
    view.pop("partials", None)
    try:
        view["stale_seconds"] = round(now - os.stat(snapshot_path).st_mtime, 1)
    except OSError:
        view["stale_seconds"] = None
    key = json.dumps({k: v for k, v in view.items() if k != "stale_seconds"}, sort_keys=True)
    if key == last:
        return last
    sys.stdout.write(json.dumps(view, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    return key


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline watch", description=__doc__)
    parser.add_argument("--json", action="store_true", help="JSON lines (the only format)")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="seconds between polls where inotify is missing (default 5)")
    parser.add_argument("--poll", action="store_true", help="poll even where inotify works")
    args = parser.parse_args(argv)
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    env = dict(os.environ)
    cfg = load()
    prices = price_book(cfg.price_overrides)
    snapshot_path = os.path.join(statefiles.state_dir(), statefiles.SNAPSHOT)
    stdin_fd = sys.stdin.fileno() if not sys.stdin.isatty() else None
    watcher = None
    if not args.poll and inotify.available():
        watcher = inotify.Watcher()
        for root in log_roots(env):
            watcher.add_tree(root)
    ledger = Ledger(ledger_path())
    last: str | None = None
    try:
        def update() -> None:
            report = refresh(ledger, env, incremental=True, prices=prices)
            if report.changed or not statefiles.touch():
                publish(ledger)

        update()
        last = emit(snapshot_path, last)
        seen_mtime = _mtime(snapshot_path)
        while True:
            timeout = SNAPSHOT_CHECK_S if watcher else args.interval
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
            mtime = _mtime(snapshot_path)
            if changed or mtime != seen_mtime:
                seen_mtime = mtime
                last = emit(snapshot_path, last)
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
