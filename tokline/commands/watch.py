"""``tokline watch --json``: the snapshot as JSON lines, a new one whenever it changes.

Editors and dashboards start this once instead of polling a process every few seconds.
It waits on inotify where Linux has it (through cffi) and polls elsewhere, coalesces a
burst of log writes into one refresh, and exits on SIGTERM, SIGHUP, end of a piped stdin,
or when its parent goes away, so it never outlives the editor that started it.  Each line
carries ``rendered`` (see Emitter), so editors show what ``tokline status`` prints.
While it runs it is the resident refresher (tokline/surfaces/resident.py): it keeps the
snapshot current itself, and prompts start no refresh of their own.

``--target waybar|polybar|i3blocks|swiftbar`` (or a shell's) prints instead what ``tokline
status --target`` prints, whenever that changes: a line (one JSON object for waybar), or
for a streamable SwiftBar plugin ``~~~`` and the plugin's lines (tokline/prompt/desktop.py).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import stat
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tokline import sources
from tokline.accounting.pricing import price_book
from tokline.config import load
from tokline.errors import ToklineError
from tokline.prompt import desktop, statefiles
from tokline.prompt import template as render
from tokline.prompt.fields import KNOWN_FIELDS, as_of, read_json, rendered
from tokline.snapshot.lines import zone_of
from tokline.surfaces import inotify
from tokline.surfaces.resident import Resident

if TYPE_CHECKING:
    from tokline.config import Config

QUIET_S = 0.15  # a burst of writes settles for this long before one refresh
SNAPSHOT_CHECK_S = 1.0  # how often a snapshot written by someone else is looked for
TICK_GAP_S = 2.0  # a change by time alone waits this long after the last line
# what --target takes besides json: SketchyBar's arguments are for one `sketchybar --set`
TARGETS = tuple(t for t in render.TARGETS if t != "sketchybar")


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
    appearing, a day's or block's end).  With a ``target`` other than json it prints what
    ``tokline status --target`` prints instead, whenever that changes."""

    def __init__(self, snapshot_path: str, template: str,
                 thresholds: dict[str, float] | None = None, target: str = "json") -> None:
        self.path = snapshot_path
        self.parts = render.parse_template(template)
        render.check_fields(self.parts, KNOWN_FIELDS)
        self.thresholds = thresholds
        self.target = target
        self.color = not os.environ.get("NO_COLOR")
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
        if self.target != "json":
            self._bar(view, now, age)
            return
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
        self.write(view)

    def write(self, view: dict[str, Any]) -> None:
        """One JSON line on stdout (``tokline tray`` shows the view in its icon instead)."""
        sys.stdout.write(json.dumps(view, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def _bar(self, view: dict[str, Any], now: int, age: float | None) -> None:
        text = desktop.output(self.target, view, self.parts, now, age, zone_of(view), self.color)
        if text == self.last:
            return
        self.last, self.last_at = text, time.monotonic()
        # a streamable SwiftBar plugin shows what follows its last ``~~~``
        sys.stdout.write(("~~~\n" if self.target == "swiftbar" else "") + text + "\n")
        sys.stdout.flush()


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline watch", description=__doc__)
    parser.add_argument("--json", action="store_true", help="JSON lines (the default)")
    parser.add_argument("--target", "-t", choices=["json", *TARGETS], default="json",
                        help="print what `tokline status --target` prints, on each change "
                             "(waybar: a JSON object a line; swiftbar: a streamable plugin)")
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
    cfg = load()
    thresholds = {name: value for name, value in (("warn", args.warn),
                                                  ("critical", args.critical))
                  if value is not None}
    snapshot_path = os.path.join(statefiles.state_dir(), statefiles.SNAPSHOT)
    try:
        emit = Emitter(snapshot_path, args.format or cfg.template, thresholds, args.target)
    except render.TemplateError as exc:
        raise ToklineError(f"template: {exc}") from None
    stdin_fd = _piped_stdin()
    return follow(cfg, emit, refreshing=not args.no_refresh, poll=args.poll,
                  interval=args.interval, stdin_fd=stdin_fd, parent=os.getppid())


def follow(cfg: Config, emit: Callable[[], None] | None, refreshing: bool = True,
           poll: bool = False, interval: float = 5.0, stdin_fd: int | None = None,
           parent: int | None = None) -> int:
    """Keep the snapshot current as the resident refresher (tokline/surfaces/resident.py)
    when ``refreshing`` (and no other process is it), calling ``emit`` after every wake;
    until SIGTERM or SIGHUP, end of ``stdin_fd``, or ``parent`` going away."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    resident = Resident(cfg, price_book(cfg.price_overrides)) if refreshing else None
    watcher = None
    watched: set[str] = set()

    def watch_roots() -> None:
        """Every log root, also those that appeared since (a project Crush listed anew)."""
        if watcher is not None:
            for root in log_roots(dict(os.environ)):
                if root not in watched:
                    watcher.add_tree(root)
                    watched.add(root)

    if not poll and refreshing and inotify.available():
        watcher = inotify.Watcher()
        watch_roots()
    polled = time.monotonic()
    try:
        if resident is not None:
            resident.step(changed=True)
        if emit is not None:
            emit()
        while True:
            longest = SNAPSHOT_CHECK_S if watcher or not refreshing else interval
            timeout = resident.wait_s(longest) if resident is not None else longest
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
                # polling: the logs may have changed once a whole interval has passed
                changed = time.monotonic() - polled >= interval
                if changed:
                    polled = time.monotonic()
            if stdin_fd is not None and stdin_fd in ready and not os.read(stdin_fd, 4096):
                return 0  # the editor closed our stdin
            if parent is not None and os.getppid() != parent:
                return 0  # the editor is gone
            if resident is not None:
                resident.step(changed)
                if changed:
                    watch_roots()
            if emit is not None:
                emit()  # a new snapshot, or the same one reading differently by now
    except (_Stop, KeyboardInterrupt, BrokenPipeError):
        return 0
    finally:
        if resident is not None:
            resident.close()
        if watcher is not None:
            watcher.close()


def _piped_stdin() -> int | None:
    """stdin's descriptor when it is a pipe or socket, whose end says the reader went away
    (an editor's); None for a terminal, a file or /dev/null, whose end says nothing (sway
    and waybar give their modules /dev/null)."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):  # no stdin at all
        return None
    return fd if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else None


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
