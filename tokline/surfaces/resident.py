"""The resident refresher: a long-running process (``tokline watch``, the tray, ``tokline
service run``) that keeps the snapshot current itself, so prompts find nothing to do.

Prompts (the shell hooks, ``tokline status``) start a background refresh when the
status head's CHECKED is older than the refresh interval, or when one of its time marks
(a day's or block's end, a quota reset) has passed.  The resident one refreshes as the
logs change (its caller waits on inotify) and, while they don't, marks the status
current every half interval and writes it again at each mark: so CHECKED is never old,
no mark is ever passed unwritten, and no prompt starts a process.  It also asks remote
quotas and syncs with the other devices when those are due, as a prompt's refresh would.

One resident refresher works at a time: the one holding ``resident.lock`` (an flock,
released by the kernel when its process ends, however it ends).  Others (a second
editor's ``tokline watch``) only follow the snapshot and take over when it is free.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time

from tokline.errors import ToklineError
from tokline.ledger.faults import guard
from tokline.ledger.store import Ledger
from tokline.prompt import statefiles
from tokline.prompt.uptodate import ledger_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tokline.accounting.pricing import PriceBook
    from tokline.config import Config

LOCK = "resident.lock"
FAULT_PAUSE_S = 30.0  # after a storage fault, the next try


class Resident:
    def __init__(self, cfg: Config, prices: PriceBook) -> None:
        self.cfg, self.prices = cfg, prices
        self.beat_s = max(1.0, cfg.refresh_interval_s / 2)
        self.ledger: Ledger | None = None
        self._lock_fd: int | None = None
        self._next_beat = 0.0
        self._paused_until = 0.0

    def leads(self) -> bool:
        """Whether this process is the one resident refresher (taking the lock when free)."""
        if self._lock_fd is not None:
            return True
        directory = statefiles.state_dir()
        try:
            statefiles.check_dir(directory)
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd = os.open(os.path.join(directory, LOCK), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)  # for `tokline service status`
        return True

    def step(self, changed: bool) -> bool:
        """Called on every wake of the caller: ``changed`` when the logs changed.  Does
        what is due; True when it refreshed or wrote the status."""
        now = time.time()
        if now < self._paused_until or not self.leads():
            return False
        if not changed and now < self._next_beat:
            return False
        self._next_beat = now + self.beat_s
        try:
            with guard(ledger_path()):
                if changed or statefiles.remote_due() or statefiles.sync_due():
                    from tokline.commands.refresh import refresh_step  # noqa: PLC0415

                    refresh_step(self._ledger(), self.cfg, self.prices)
                elif not statefiles.touch():  # a mark has passed, or the config changed
                    from tokline.snapshot.publish import publish  # noqa: PLC0415

                    publish(self._ledger(), cfg=self.cfg, book=self.prices)
        except ToklineError as exc:  # a storage fault: prompts show the last value
            print(f"tokline: {exc}", file=sys.stderr, flush=True)
            self._paused_until = now + FAULT_PAUSE_S
            self.close_ledger()
            return False
        self._next_beat = min(self._next_beat, _next_mark())
        return True

    def _ledger(self) -> Ledger:
        """The ledger, opened at the first refresh and kept (closed after a fault)."""
        if self.ledger is None:
            self.ledger = Ledger(ledger_path())
        return self.ledger

    def wait_s(self, longest: float) -> float:
        """How long the caller may sleep before the next thing due (at most ``longest``)."""
        if self._lock_fd is None:
            return longest
        return max(0.05, min(longest, max(self._next_beat, self._paused_until) - time.time()))

    def close_ledger(self) -> None:
        if self.ledger is not None:
            with contextlib.suppress(Exception):
                self.ledger.close()
            self.ledger = None

    def close(self) -> None:
        self.close_ledger()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # the flock goes with it
            self._lock_fd = None


def _next_mark() -> float:
    """The first time mark of the status head still ahead (a day's or block's end, a
    quota reset), when the status must be written again; far away when there is none."""
    head = statefiles.read_head(statefiles.state_dir()) or []
    now = time.time()
    marks = []
    for mark in head[7:]:
        with contextlib.suppress(ValueError):
            if float(mark) > now:
                marks.append(float(mark))
    return min(marks, default=now + 3600.0)


def running() -> int | None:
    """The pid of the resident refresher when one runs (its lock is held), else None."""
    path = os.path.join(statefiles.state_dir(), LOCK)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
