"""Remote quota and credit sources, fetched in the background refresh, never on a prompt.

Each provider module has NAME, DEFAULT_BASE, TTL_S and ``fetch(base_url, account) ->
list of quota windows``.  Results and errors go to ``remote.json`` in the state dir with
their times; a provider in a back-off window (Retry-After, or growing waits after 429
and 5xx) is not asked again until it ends.  ``remote.due`` holds the earliest time any
provider wants asking again, so the prompt's refresh can tell with one read.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from tokline.remote import claude_usage, codex_usage, openrouter
from tokline.remote.http import RemoteError
from tokline.statefiles import state_dir, write_private

PROVIDERS = {module.NAME: module for module in (openrouter, codex_usage, claude_usage)}
STATE = "remote.json"
DUE = "remote.due"
MAX_BACKOFF_S = 3600.0
RECHECK_S = 3600.0


def base_url(name: str) -> str:
    variable = f"TOKLINE_{name.upper().replace('-', '_')}_BASE_URL"
    return os.environ.get(variable) or PROVIDERS[name].DEFAULT_BASE


def load_state() -> dict[str, Any]:
    try:
        with open(os.path.join(state_dir(), STATE), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def configured() -> list[tuple[str, str]]:
    """(provider, account) pairs that have credentials."""
    return [(name, "default") for name, module in PROVIDERS.items() if module.has_credentials()]


def fetch_due(force: bool = False, now: float | None = None) -> list[str]:
    """Ask every configured provider whose cache is older than its TTL (all of them with
    ``force``) unless it is backing off.  Returns the names asked."""
    now = time.time() if now is None else now
    state = load_state()
    asked: list[str] = []
    for name, account in configured():
        key = f"{name}:{account}"
        entry: dict[str, Any] = state.get(key) or {}
        module = PROVIDERS[name]
        if now < float(entry.get("backoff_until") or 0):
            continue
        if not force and now - float(entry.get("fetched_at") or 0) < module.TTL_S \
                and now - float(entry.get("error_at") or 0) >= 0 and entry.get("windows"):
            continue
        asked.append(name)
        try:
            windows = module.fetch(base_url(name), account)
        except RemoteError as exc:
            failures = int(entry.get("failures") or 0) + 1
            first_wait = float(getattr(module, "BACKOFF_BASE_S", 30.0))
            wait = exc.retry_after if exc.retry_after is not None else (
                min(MAX_BACKOFF_S, first_wait * 2 ** (failures - 1)) if exc.transient
                else module.TTL_S)
            entry.update(error=str(exc), error_at=now, failures=failures,
                         backoff_until=now + wait)
        else:
            entry = {"windows": windows, "fetched_at": now, "error": None, "failures": 0,
                     "backoff_until": 0, "error_at": entry.get("error_at")}
        state[key] = entry
    if asked:
        write_private(os.path.join(state_dir(), STATE), json.dumps(state).encode())
    _write_due(state, now)
    return asked


def _write_due(state: dict[str, Any], now: float) -> None:
    due = now + RECHECK_S  # a source configured later is noticed within the hour
    for name, account in configured():
        entry = state.get(f"{name}:{account}") or {}
        next_time = max(float(entry.get("fetched_at") or 0) + PROVIDERS[name].TTL_S,
                        float(entry.get("backoff_until") or 0))
        due = min(due, next_time)
    write_private(os.path.join(state_dir(), DUE), f"{due:.0f}".encode())


def mark_due() -> None:
    """Ask at the next refresh (after a login)."""
    write_private(os.path.join(state_dir(), DUE), b"0")


def merge(local: list[dict[str, Any]], fetched: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One window per (source, window): the fresher of a local and a fetched figure; an
    estimate only where there is no official one."""
    def rank(window: dict[str, Any]) -> tuple[bool, float]:
        return window.get("kind") != "estimate", float(window.get("as_of") or 0)

    best: dict[tuple[str, str], dict[str, Any]] = {}
    for window in [*local, *fetched]:
        key = (window["source"], window["window"])
        if key not in best or rank(window) > rank(best[key]):
            best[key] = window
    return list(best.values())


def windows(now: float | None = None) -> list[dict[str, Any]]:
    """Every provider's last good windows, marked stale when its last fetch failed."""
    out: list[dict[str, Any]] = []
    for key, entry in load_state().items():
        for window in entry.get("windows") or []:
            out.append({**window, "as_of": entry.get("fetched_at"),
                        "stale": bool(entry.get("error")) or None,
                        "account": key.split(":", 1)[1]})
    return out
