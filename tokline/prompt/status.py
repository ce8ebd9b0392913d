"""``tokline status`` on its fast path: print a pre-rendered line, start at most one refresh.

Imports os, sys and time only (tests/test_status.py holds it to that).  Anything
this path cannot answer from ``status.lines`` (a template, --json, --sync, no snapshot
yet) returns None and the full command takes over.  A state dir that another user owns
or may write to is refused with one line on stderr and nothing on stdout (statefiles).
"""

from __future__ import annotations

import os
import sys
import time

from tokline.prompt.statefiles import (
    LINES,
    LINES_MAGIC,
    config_stamp,
    dir_problem,
    refusal,
    release_lock,
    stale_note,
    state_dir,
    take_lock,
    time_left,
)

__all__ = ["TARGETS", "spawn_refresh", "stale_note", "status", "time_left"]

# template.LINE_TARGETS (a copy: this path does not import the template module;
# tests/test_bars.py holds them equal)
TARGETS = ("plain", "ansi", "zsh", "bash", "fish", "tmux", "polybar", "i3blocks")


def _target(argv: list[str]) -> str | None:
    if not argv:
        return "ansi" if sys.stdout.isatty() else "plain"
    if len(argv) == 2 and argv[0] in ("--target", "-t") and argv[1] in TARGETS:
        return argv[1]
    if len(argv) == 1 and argv[0].startswith("--target=") and argv[0][9:] in TARGETS:
        return argv[0][9:]
    return None


def spawn_refresh(directory: str, seen_mtime: float, publish: bool = False) -> bool:
    """Start one detached ``tokline refresh`` unless another is running or just ran;
    ``publish``: write the snapshot even if no log changed (new quota figures)."""
    if not take_lock(directory):
        return False
    try:
        if os.stat(os.path.join(directory, LINES)).st_mtime > seen_mtime:
            release_lock()  # a refresh finished while this call was deciding
            return False
    except OSError:
        pass
    devnull = os.devnull
    actions = [(os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0)]
    try:
        argv = [sys.executable, "-m", "tokline", "refresh", "--locked"]
        os.posix_spawn(sys.executable, [*argv, "--publish"] if publish else argv,
                       os.environ, file_actions=actions, setsid=True)
    except OSError:
        release_lock()
        return False
    return True


def status(argv: list[str]) -> int | None:
    target = _target(argv)
    if target is None:
        return None
    if os.environ.get("NO_COLOR"):
        target += "-nc"
    directory = state_dir()
    problem = dir_problem(directory)
    if problem is not None:  # its status.lines may be planted: show nothing, say why
        sys.stderr.write(f"tokline: {refusal(directory, problem)}\n")
        return 1
    path = os.path.join(directory, LINES)
    try:
        with open(path, "rb") as fh:
            mtime = os.fstat(fh.fileno()).st_mtime
            data = fh.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = data.split("\n")
    head = lines[0].split()
    if " ".join(head[:2]) != LINES_MAGIC or len(head) < 7:
        return None
    now = int(time.time())  # whole seconds, as the shells read the clock (statefiles)
    try:
        interval, stale_after = float(head[2]), float(head[3])
        variant = sum(1 for mark in head[7:] if now >= int(float(mark)))
        block_end = int(float(head[5])) if head[5] != "-" else now
        age = now - int(float(head[6]))
    except ValueError:
        return None
    prefix = target + "\t"
    for line in lines[1:]:
        if line.startswith(prefix):
            variants = line[len(prefix):].split("\t")
            text = variants[min(variant, len(variants) - 1)]
            break
    else:
        return None
    if "\x1e" in text:
        text = text.replace("\x1e", time_left(block_end - now))
    text += stale_note(age, stale_after)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    if age > interval or variant or head[4] != config_stamp():
        spawn_refresh(directory, mtime)
    return 0
