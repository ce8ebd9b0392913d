"""Files in the state dir that the fast paths touch: stdlib only, no pathlib.

``status.lines`` holds the pre-rendered status (tokline/snapshot/lines.py writes it): a head
line ``tokline-lines 1 INTERVAL STALE_AFTER CONFIG BLOCK_END CHECKED [t1 [t2]]``
(seconds; the config file's stamp; the active block's end or ``-``; when the data was
last known current, for shells that cannot stat; then the epoch seconds at which the
next variant takes over) and one line per target (``zsh``, and ``zsh-nc`` without
colours), ``target<TAB>variant0<TAB>variant1…``.  A ``\x1e`` in a line stands for the
block's time left, filled in when the line is printed.  ``refresh.lock`` is
created with O_EXCL by the one prompt that starts a background refresh.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc costs 1.6 ms on the prompt's path
    from collections.abc import Mapping

LINES_MAGIC = "tokline-lines 1"
LINES = "status.lines"
SNAPSHOT = "snapshot.json"
LOCK = "refresh.lock"
LOCK_STALE_S = 60.0  # a refresh holding the lock longer than this has died


def _xdg(env: Mapping[str, str], variable: str, *default: str) -> str:
    """tokline's directory under an XDG base directory; like xdg-base-dirs, an unset,
    empty or relative value means the default under HOME (tokline.paths, kept in step
    by tests, is the pathlib version for the slow commands)."""
    base = env.get(variable, "")
    if not os.path.isabs(base):
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), *default)
    return os.path.join(base, "tokline")


def state_dir(env: Mapping[str, str] = os.environ) -> str:
    return _xdg(env, "XDG_STATE_HOME", ".local", "state")


def data_dir(env: Mapping[str, str] = os.environ) -> str:
    return _xdg(env, "XDG_DATA_HOME", ".local", "share")


def config_path(env: Mapping[str, str] = os.environ) -> str:
    return env.get("TOKLINE_CONFIG") or os.path.join(_xdg(env, "XDG_CONFIG_HOME", ".config"),
                                                     "config.toml")


def config_stamp(env: Mapping[str, str] = os.environ) -> str:
    """Changes when config.toml does."""
    try:
        st = os.stat(config_path(env))
    except OSError:
        return "-"
    return f"{st.st_mtime_ns}:{st.st_size}"


def write_private(path: str, data: bytes) -> None:
    """Replace ``path`` atomically with a file only the user can read."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:  # noqa: SIM105 - contextlib costs 3.5 ms to import on the prompt's path
            os.unlink(tmp)
        except OSError:
            pass
        raise


def touch(env: Mapping[str, str] = os.environ) -> bool:
    """Mark the status current after a refresh that changed nothing; False when it must
    be computed again (missing, or a day or block boundary has passed)."""
    directory = state_dir(env)
    path = os.path.join(directory, LINES)
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
            rest = fh.read()
        head = first.split()
        if " ".join(head[:2]) != LINES_MAGIC:
            return False
        now = time.time()
        if len(head) < 7 or head[4] != config_stamp(env) \
                or any(now >= float(mark) for mark in head[7:]):
            return False
        head[6] = f"{now:.0f}"
        write_private(path, (" ".join(head) + "\n" + rest).encode("utf-8"))
        os.utime(os.path.join(directory, SNAPSHOT))
    except (OSError, ValueError):
        return False
    return True


def take_lock(directory: str) -> bool:
    """True for exactly one caller until the lock is released or goes stale."""
    path = os.path.join(directory, LOCK)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            try:
                if time.time() - os.stat(path).st_mtime < LOCK_STALE_S:
                    return False
                os.unlink(path)  # its refresh died: take over
            except FileNotFoundError:
                pass
            continue
        except OSError:
            return False
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def remote_due(env: Mapping[str, str] = os.environ) -> bool:
    """A remote quota source wants asking again (tokline/remote writes ``remote.due``)."""
    try:
        with open(os.path.join(state_dir(env), "remote.due"), encoding="utf-8") as fh:
            text = fh.read().strip()
    except OSError:
        return True  # never looked: find out which sources are configured
    try:
        return time.time() >= float(text)
    except ValueError:
        return True


def note_refresh(kind: str, env: Mapping[str, str] = os.environ) -> None:
    """Append one line per background refresh to $TOKLINE_REFRESH_LOG when it is set: a
    way to see how often prompts start refreshes (tests count them with it)."""
    log = env.get("TOKLINE_REFRESH_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {kind} {time.time():.3f}\n")


def release_lock(env: Mapping[str, str] = os.environ) -> None:
    try:  # noqa: SIM105 - see write_private
        os.unlink(os.path.join(state_dir(env), LOCK))
    except OSError:
        pass
