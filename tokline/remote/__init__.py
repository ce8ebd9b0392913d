"""Remote quota and credit sources, fetched in the background refresh, never on a prompt.

Each provider module has NAME, DEFAULT_BASE, TTL_S and ``fetch(base_url, account) ->
list of quota windows``.  Results and errors go to ``remote.json`` in the state dir with
their times; a provider in a back-off window (Retry-After, or growing waits after 429
and 5xx) is not asked again until it ends.  ``remote.due`` holds the earliest time any
provider wants asking again, so the prompt's refresh can tell with one read.

Providers whose key tokline keeps (KEYED) may have several named accounts, each its own
keyring entry; their names (never their keys) are listed in ``accounts.json`` in the data
dir, because a keyring cannot be enumerated.  Claude and Codex reuse their own CLI's
login, read-only, as the account ``default``; so does Cursor while no session token is
given to it.  Cursor's fetch also writes its usage events to the ledger (it has no log).
"""

from __future__ import annotations

import os

from tokline.prompt import lightjson
from tokline.prompt.statefiles import state_dir, write_private

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STATE = "remote.json"
DUE = "remote.due"
# Fetching (providers, accounts, HTTP) lives in tokline.remote.fetch and is loaded on first
# use: the snapshot reads this package's state functions on every publish, and urllib
# alone would cost it about 40 ms.
_FETCH_NAMES = {"PROVIDERS", "KEYED", "LOCK", "ACCOUNTS", "MAX_BACKOFF_S", "RECHECK_S",
                "env_base_url", "base_url", "ttl_s", "known_accounts", "remember_account",
                "accounts_of", "has_credentials", "configured", "fetch_due"}


def __getattr__(name: str) -> Any:
    if name in _FETCH_NAMES:
        from tokline.remote import fetch  # noqa: PLC0415

        return getattr(fetch, name)
    raise AttributeError(f"module 'tokline.remote' has no attribute {name!r}")


def load_state() -> dict[str, Any]:
    try:
        with open(os.path.join(state_dir(), STATE), encoding="utf-8") as fh:
            data = lightjson.loads(fh.read())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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
    """Every provider account's last good windows, marked stale when its last fetch
    failed, with the cache time they were fetched under (``ttl_s``: when they turn old,
    tokline/prompt/quotaview.py).  An account other than ``default`` shows as source
    ``provider@account``."""
    out: list[dict[str, Any]] = []
    for key, entry in load_state().items():
        account = key.split(":", 1)[1] if ":" in key else "default"
        extra = {"ttl_s": entry["ttl_s"]} if isinstance(entry.get("ttl_s"), (int, float)) \
            else {}
        for window in entry.get("windows") or []:
            source = window["source"] if account == "default" \
                else f"{window['source']}@{account}"
            out.append({**window, "source": source, "as_of": entry.get("fetched_at"),
                        "stale": bool(entry.get("error")) or None, "account": account,
                        **extra})
    return out
