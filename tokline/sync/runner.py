"""One sync as the command and the background refresh run it, and what it leaves behind.

``sync-state.json`` (state dir) says how the last sync went: when it last succeeded,
the last error, the failures in a row and when the background may try again (every
``[sync] interval`` after a success; after failures, twice as long each time, up to an
hour: an unmounted directory or an ssh host that is down costs nothing on the prompt
path and little in the background).  ``sync-quota.json`` keeps the official quota
windows other devices exported, newest per device; the snapshot merges them with this
device's own (tokline/snapshot/quota.py), the newest observation of each window winning.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from typing import Any

from tokline.config import Config
from tokline.errors import ToklineError
from tokline.ledger.store import Ledger
from tokline.prompt import statefiles
from tokline.prompt.fields import read_json
from tokline.snapshot.quota import SYNC_QUOTA as QUOTA
from tokline.sync import exchange
from tokline.sync.device import default_name, local_id
from tokline.sync.exchange import Progress, Report
from tokline.sync.targets import Unreachable, parse, redact

STATE = "sync-state.json"
LOCK = "sync.lock"  # beside the ledger: one sync of a device at a time

MAX_BACKOFF_S = 3600.0


class SyncError(ToklineError):
    """A sync that could not happen (no target, unreachable, refused); one line."""


def state_path() -> str:
    return os.path.join(statefiles.state_dir(), STATE)


def read_state() -> dict[str, Any]:
    return read_json(state_path()) or {}


def due(cfg: Config) -> bool:
    """The background refresh should sync now: a target is set and its time has come
    (``sync.due``, which the prompt's fast path reads too; none yet: now)."""
    if not (cfg.sync_target or os.environ.get("TOKLINE_SYNC_TARGET")):
        return False
    if not os.path.exists(os.path.join(statefiles.state_dir(), statefiles.SYNC_DUE)):
        return True
    return statefiles.sync_due()


def forget_due() -> None:
    """No target any more: the prompt's fast path stops waking the slow one for sync."""
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(statefiles.state_dir(), statefiles.SYNC_DUE))


def device_name(cfg: Config) -> str:
    return cfg.sync_device or default_name()


def target_text(cfg: Config, given: str | None = None) -> str:
    text = given or os.environ.get("TOKLINE_SYNC_TARGET") or cfg.sync_target
    if not text:
        raise SyncError("no sync target: give --target DIR|ssh://host/path or set "
                        "[sync] target in config.toml")
    return text


def own_quota(ledger: Ledger) -> list[dict[str, Any]]:
    """This device's own official quota observations (never ones other devices sent:
    each device speaks for what it saw, and the newest of a window wins everywhere)."""
    from tokline.snapshot.build import CLAUDE_STATE, own_windows  # noqa: PLC0415

    claude_state = read_json(os.path.join(statefiles.state_dir(), CLAUDE_STATE))
    return [{k: w.get(k) for k in ("source", "window", "used_percent", "resets_at", "as_of")}
            for w in own_windows(ledger, claude_state, None, time.time())
            if w.get("kind") == "official"]


def run(ledger: Ledger, cfg: Config, given_target: str | None = None,
        progress: Progress | None = None) -> Report:
    """Sync now; the state file records the outcome.  SyncError when it cannot."""
    text = target_text(cfg, given_target)
    with _one_at_a_time(ledger.path):
        return _run_locked(ledger, cfg, text, progress)


@contextlib.contextmanager
def _one_at_a_time(ledger_path: str) -> Iterator[None]:
    """Hold this device's sync lock (beside its ledger and device id), waiting for a
    sync already running: two at once, the background refresh's and the command's,
    would both number their segment after the same last one, and the second would fail
    (or, on a target without an exclusive rename, replace the first's file, whose rows
    are already marked exported)."""
    path = os.path.join(os.path.dirname(os.path.abspath(ledger_path)), LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _run_locked(ledger: Ledger, cfg: Config, text: str, progress: Progress | None) -> Report:
    from tokline.accounting.pricing import price_book  # noqa: PLC0415

    now = time.time()
    state = read_state()  # after the wait: what a sync that just ended left
    try:
        target = parse(text)
        report, quotas = exchange.sync(
            ledger, target, local_id(ledger.path), device_name(cfg), cfg.sync_projects,
            price_book(cfg.price_overrides).cost_of, own_quota(ledger), progress)
    except (Unreachable, ValueError, OSError) as exc:
        failures = int(state.get("failures") or 0) + 1
        state.update(target=redact(text), last_error=str(exc), last_error_s=round(now),
                     failures=failures,
                     next_s=round(now + min(cfg.sync_interval_s * 2 ** failures, MAX_BACKOFF_S)))
        _write(STATE, state)
        raise SyncError(f"sync with {redact(text)} failed: {exc}") from None
    state = {"target": redact(text), "last_ok_s": round(now), "failures": 0,
             "next_s": round(now + cfg.sync_interval_s),
             "exported_rows": report.exported_rows, "imported_rows": report.imported_rows,
             "waiting": report.waiting[:20],
             "rejected": (report.rejected + list(state.get("rejected") or []))[:20]}
    _write(STATE, state)
    if quotas:
        _keep_quota(quotas)
    return report


def _keep_quota(quotas: list[tuple[str, list[Any]]]) -> None:
    kept = read_json(os.path.join(statefiles.state_dir(), QUOTA)) or {}
    for device, windows in quotas:  # segments in name order: a later one is newer
        kept[device] = [w for w in map(_window, windows[:64]) if w is not None]
    _write(QUOTA, kept)


def _window(raw: object) -> dict[str, Any] | None:
    """A window another device sent, checked: short names, finite numbers in range."""
    if not isinstance(raw, dict):
        return None
    source, window = raw.get("source"), raw.get("window")
    numbers = [raw.get(k) for k in ("used_percent", "resets_at", "as_of")]
    if not (isinstance(source, str) and isinstance(window, str) and 0 < len(source) <= 32
            and 0 < len(window) <= 32 and source.replace("-", "").isalnum()
            and window.replace("_", "").isalnum()):
        return None
    for value in numbers:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not -1e12 < value < 1e12 or value != value):
            return None
    used, resets, as_of = numbers
    if used is None or as_of is None or not 0 <= used <= 1000:
        return None
    return {"source": source, "window": window, "used_percent": float(used),
            "resets_at": resets, "as_of": as_of}


def _write(name: str, data: dict[str, Any]) -> None:
    directory = statefiles.state_dir()
    statefiles.check_dir(directory)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    statefiles.write_private(os.path.join(directory, name), json.dumps(data).encode())
    if name == STATE and isinstance(data.get("next_s"), (int, float)):
        statefiles.write_private(os.path.join(directory, statefiles.SYNC_DUE),
                                 str(data["next_s"]).encode())
