"""Find log files under a set of roots, reporting unreadable directories once."""

from __future__ import annotations

import os
from collections.abc import Iterable


class Found:
    __slots__ = ("dirs", "files", "problems")

    def __init__(self) -> None:
        self.files: dict[str, os.stat_result] = {}
        self.dirs: dict[str, int] = {}  # path -> mtime_ns before listing
        self.problems: list[str] = []


def take(entry: os.DirEntry[str], suffix: str | tuple[str, ...], found: Found,
         subdirs: list[str]) -> None:
    """One directory entry: a log file to record, or a subdirectory to visit."""
    try:
        if entry.is_dir(follow_symlinks=False):
            subdirs.append(entry.path)
        elif entry.name.endswith(suffix) and entry.is_file():
            found.files[entry.path] = entry.stat()
    except OSError as exc:
        found.problems.append(f"cannot read {entry.path}: {exc.strerror}")


def walk(roots: Iterable[str], suffix: str | tuple[str, ...], found: Found | None = None) -> Found:
    """Every regular file ending in ``suffix`` below ``roots`` (symlinked dirs not followed)."""
    found = found if found is not None else Found()
    stack = [r for r in roots]
    while stack:
        directory = stack.pop()
        try:
            # Stat before listing: a file created during the walk changes this mtime,
            # so the manifest can never hide it.
            found.dirs[directory] = os.stat(directory).st_mtime_ns
            with os.scandir(directory) as entries:
                for entry in entries:
                    take(entry, suffix, found, stack)
        except FileNotFoundError:
            continue
        except OSError as exc:
            found.problems.append(f"cannot read {directory}: {exc.strerror}")
    return found
