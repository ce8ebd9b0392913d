"""Linux inotify through cffi's ABI mode (no compiler needed): enough to wait for changes.

``Watcher.wait(timeout)`` returns True when something under the watched directories
changed; directories created later are watched as they appear.  ``available()`` is
False off Linux or without cffi, and callers poll instead.
"""

from __future__ import annotations

import os
import select
import struct

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len

_lib = None


def _load() -> object | None:
    global _lib
    if _lib is None:
        try:
            from cffi import FFI  # noqa: PLC0415 - only the watch command needs it
        except ImportError:
            return None
        ffi = FFI()
        ffi.cdef("int inotify_init1(int flags);"
                 "int inotify_add_watch(int fd, const char *pathname, uint32_t mask);")
        try:
            _lib = ffi.dlopen(None)
            _lib.inotify_init1  # noqa: B018 - fails here when libc has no inotify
        except (OSError, AttributeError):
            _lib = False
    return _lib or None


def available() -> bool:
    return os.uname().sysname == "Linux" and _load() is not None


class Watcher:
    def __init__(self) -> None:
        lib = _load()
        if lib is None:
            raise OSError("inotify is not available")
        self._lib = lib
        self.fd = lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)  # type: ignore[attr-defined]
        if self.fd < 0:
            raise OSError("inotify_init1 failed")
        self.dirs: dict[int, str] = {}

    def add(self, directory: str) -> None:
        wd = self._lib.inotify_add_watch(  # type: ignore[attr-defined]
            self.fd, os.fsencode(directory), MASK)
        if wd >= 0:
            self.dirs[wd] = directory

    def add_tree(self, root: str, limit: int = 4000) -> None:
        """Watch ``root`` and its subdirectories (up to ``limit`` of them)."""
        stack = [root]
        while stack and len(self.dirs) < limit:
            directory = stack.pop()
            if not os.path.isdir(directory):
                continue
            self.add(directory)
            try:
                with os.scandir(directory) as entries:
                    stack += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue

    def wait(self, timeout: float, also: list[int] | None = None) -> tuple[bool, list[int]]:
        """(something changed, which of ``also``'s descriptors are readable)."""
        ready, _, _ = select.select([self.fd, *(also or [])], [], [], timeout)
        changed = False
        if self.fd in ready:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                data = b""
            pos = 0
            while pos + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, pos)
                name = data[pos + _EVENT.size:pos + _EVENT.size + length].rstrip(b"\0")
                pos += _EVENT.size + length
                changed = True
                if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO) and wd in self.dirs:
                    self.add_tree(os.path.join(self.dirs[wd], os.fsdecode(name)))
        return changed, [fd for fd in ready if fd != self.fd]

    def close(self) -> None:
        os.close(self.fd)
