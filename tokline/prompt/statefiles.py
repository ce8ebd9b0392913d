"""Files in the state dir that the fast paths touch: stdlib only, no pathlib.

``status.lines`` holds the pre-rendered status (tokline/snapshot/lines.py writes it): a head
line ``tokline-lines 1 INTERVAL STALE_AFTER CONFIG BLOCK_END CHECKED [t1 [t2 …]]``
(seconds; the config file's stamp; the active block's end or ``-``; when the data was
last known current; then, ascending, the epoch seconds at which the next variant takes
over: the day's end, the block's, a quota window's reset or its figure turning old;
tokline/snapshot/lines.py) and one
line per target (``zsh``, and ``zsh-nc`` without colours), ``target<TAB>variant0<TAB>
variant1…``.  A ``\x1e`` in a line stands for the block's time left, filled in when the
line is printed.  ``refresh.lock`` is created with O_EXCL by the one prompt that starts a
background refresh.

Reading ``status.lines``: the contract every reader follows to the letter (``tokline
status``, the bash, zsh and fish hooks, and through ``rendered`` in ``tokline watch`` the
editors), so that one snapshot reads the same everywhere at the same moment:

* NOW is the clock in whole epoch seconds, floored (bash ``printf '%(%s)T'``, zsh
  ``$EPOCHSECONDS``, fish the file's mtime plus its ``--relative`` age).  Head times are
  whole seconds too (a reader drops any fraction).
* Variant: the number of head marks ``t1``, ``t2``, … with ``NOW >= t``; past the last
  variant a line has, its last one.
* Time left (``\x1e``): ``M = max(0, floor((BLOCK_END - NOW) / 60))`` whole minutes
  (0 when BLOCK_END is ``-``); ``"{M}m"`` under 60, else ``"{M // 60}h{M % 60:02d}m"``
  (:func:`time_left`).
* Age: ``AGE = NOW - CHECKED``: the head's own record, not the file's mtime, which the
  shells cannot read with builtins and which copying, syncing or restoring the state
  dir moves on its own.
* Stale note: appended only when ``AGE > STALE_AFTER``: ``" (stale {AGE // 60}m)"`` under
  an hour, ``" (stale {AGE // 3600}h)"`` under 48 hours, else ``" (stale {AGE //
  86400}d)"``: whole units, always floored, never rounded (:func:`stale_note`).

Before reading anything here, a reader checks the directory (:func:`dir_problem`): it must
be owned by the user and writable by nobody else, or its files may have been planted by
another user (a prompt would show them).  Otherwise readers refuse with the one line of
:func:`refusal`, writers refuse too (:func:`write_private` raises :class:`UnsafeDir`),
and the shells' hooks show nothing; a directory that does not exist yet is fine (tokline
creates it 0700).

The JSON readers of ``snapshot.json`` (``tokline status --format/--json``, ``tokline
watch``) take CHECKED from this head too (:func:`checked_at`) and format with the same
functions.
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


class UnsafeDir(PermissionError):
    """A state, data or config directory that another user owns or may write to; the
    message is the one-line refusal (:func:`refusal`)."""


def dir_problem(directory: str) -> str | None:
    """Why ``directory`` cannot be trusted, None when it can (or does not exist): it must
    be owned by this user and not writable by group or others.  A symlink is judged by
    what it points at.  Only the directory itself is checked, not its parents."""
    try:
        st = os.stat(directory)
    except OSError:
        return None  # missing (created 0700 when written) or unreadable (reads fail)
    uid = os.geteuid()
    if st.st_uid != uid:
        return f"owned by uid {st.st_uid}, not by you (uid {uid})"
    if st.st_mode & 0o022:
        who = "group and others" if st.st_mode & 0o022 == 0o022 else \
            "others" if st.st_mode & 0o002 else "group"
        return f"writable by {who} (mode {st.st_mode & 0o7777:04o})"
    return None


def refusal(directory: str, problem: str) -> str:
    """The one-line refusal, without the "tokline: " every message starts with."""
    from tokline.prompt.safetext import clean  # noqa: PLC0415 - only when refusing

    directory = clean(directory, 1000)
    fix = f"chmod 700 {directory}" if problem.startswith("writable") else \
        f"mv {directory} {directory}.suspect (tokline makes a new one)"
    return f"refusing {directory}: {problem}; fix with {fix}"


def check_dir(directory: str) -> None:
    """Raise :class:`UnsafeDir` when ``directory`` cannot be trusted."""
    problem = dir_problem(directory)
    if problem is not None:
        raise UnsafeDir(refusal(directory, problem))


def time_left(seconds: float) -> str:
    """The block's time left: whole minutes floored, "42m", "2h05m" (see the docstring)."""
    minutes = max(0, int(seconds // 60))
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def stale_note(age_s: float, stale_after_s: float) -> str:
    """" (stale 42m)", " (stale 5h)", " (stale 3d)": whole units floored; "" while fresh."""
    if age_s <= stale_after_s:
        return ""
    age = max(0, int(age_s))
    if age < 3600:
        return f" (stale {age // 60}m)"
    if age < 48 * 3600:
        return f" (stale {age // 3600}h)"
    return f" (stale {age // 86400}d)"


def read_head(directory: str) -> list[str] | None:
    """The head of ``status.lines``, split; None when missing, not ours or in a directory
    that cannot be trusted."""
    try:
        check_dir(directory)
        with open(os.path.join(directory, LINES), encoding="utf-8") as fh:
            head = fh.readline().split()
    except (OSError, UnicodeDecodeError):
        return None
    return head if " ".join(head[:2]) == LINES_MAGIC and len(head) >= 7 else None


def checked_at(env: Mapping[str, str] = os.environ) -> float | None:
    """When the data was last known current: the head's CHECKED, else the snapshot's
    mtime (a state dir written before the head carried it); None without either."""
    directory = state_dir(env)
    head = read_head(directory)
    if head is not None:
        try:
            return float(int(float(head[6])))
        except ValueError:
            pass
    try:
        return float(int(os.stat(os.path.join(directory, SNAPSHOT)).st_mtime))
    except OSError:
        return None


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


def cache_dir(env: Mapping[str, str] = os.environ) -> str:
    return _xdg(env, "XDG_CACHE_HOME", ".cache")


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
    """Replace ``path`` atomically with a file only the user can read; raises
    :class:`UnsafeDir` (an OSError) when its directory is another user's or writable by
    others."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    check_dir(os.path.dirname(path))
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
        check_dir(directory)
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
    if dir_problem(directory) is not None:
        return False  # no refresh into a directory others may write
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
        check_dir(state_dir(env))
        with open(os.path.join(state_dir(env), "remote.due"), encoding="utf-8") as fh:
            text = fh.read().strip()
    except UnsafeDir:
        return False  # nothing is fetched into it
    except OSError:
        return True  # never looked: find out which sources are configured
    try:
        return time.time() >= float(text)
    except ValueError:
        return True


SYNC_DUE = "sync.due"  # when the next background sync is due (tokline/sync/runner.py)


def sync_due(env: Mapping[str, str] = os.environ) -> bool:
    """A background sync is due: the time in ``sync.due`` has come.  No file: sync was
    never run here (or is not set up), which the slow path finds out."""
    try:
        check_dir(state_dir(env))
        with open(os.path.join(state_dir(env), SYNC_DUE), encoding="utf-8") as fh:
            text = fh.read().strip()
    except (UnsafeDir, OSError):
        return False
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
