"""Asking the remote providers: which are configured (and under which accounts), when
each is due, and the fetch itself with its back-off.  See tokline/remote/__init__.py."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Mapping
from typing import Any

from tokline.config import Config
from tokline.config import load as load_config
from tokline.errors import ToklineError
from tokline.prompt.statefiles import data_dir, state_dir, write_private
from tokline.remote import (
    DUE,
    STATE,
    anthropic_admin,
    claude_usage,
    codex_usage,
    copilot,
    cursor,
    load_state,
    openai_admin,
    openrouter,
)
from tokline.remote import credentials as secrets
from tokline.remote.http import RemoteError

PROVIDERS = {module.NAME: module for module in (
    claude_usage, codex_usage, copilot, openrouter, anthropic_admin, openai_admin, cursor)}
# Providers whose keys tokline keeps (Cursor's default account may use Cursor's own login)
KEYED = ("copilot", "openrouter", "anthropic-admin", "openai-admin", "cursor")
LOCK = "remote.lock"
ACCOUNTS = "accounts.json"
MAX_BACKOFF_S = 3600.0
RECHECK_S = 3600.0


def env_base_url(name: str, what: str = "BASE_URL") -> str | None:
    return os.environ.get(f"TOKLINE_{name.upper().replace('-', '_')}_{what}") or None


def _settings(name: str, cfg: Config | None) -> Mapping[str, Any]:
    """Config's ``[remote.NAME]`` table (empty when absent)."""
    return (cfg.remote if cfg else {}).get(name) or {}


def base_url(name: str, cfg: Config | None = None) -> str:
    """The environment's override, else config's ``[remote.NAME] base_url``, else the
    provider's own."""
    return env_base_url(name) or _settings(name, cfg).get("base_url") \
        or PROVIDERS[name].DEFAULT_BASE


def ttl_s(name: str, cfg: Config | None) -> float:
    return float(_settings(name, cfg).get("ttl_s") or PROVIDERS[name].TTL_S)


def _accounts_path() -> str:
    return os.path.join(data_dir(), ACCOUNTS)


def known_accounts() -> dict[str, list[str]]:
    try:
        with open(_accounts_path(), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {name: [a for a in names if isinstance(a, str)]
            for name, names in data.items() if isinstance(names, list)}


def remember_account(provider: str, account: str, present: bool) -> None:
    accounts = known_accounts()
    names = [a for a in accounts.get(provider, []) if a != account]
    accounts[provider] = sorted([*names, account]) if present else names
    if not accounts[provider]:
        del accounts[provider]
    write_private(_accounts_path(), json.dumps(accounts, indent=1).encode())


def accounts_of(provider: str, known: dict[str, list[str]] | None = None) -> list[str]:
    """Every account name a provider might have, configured or not (``known``: the
    accounts file, when the caller has read it already)."""
    if provider not in KEYED:
        return ["default"]
    known = known_accounts() if known is None else known
    return sorted({"default", *known.get(provider, [])})


def has_credentials(provider: str, account: str,
                    known: dict[str, list[str]] | None = None, wake: bool = True) -> bool:
    """``wake`` False: an account logged in (listed in the accounts file) counts without
    asking the keyring whether its key is still there."""
    module = PROVIDERS[provider]
    if provider in KEYED:
        if os.environ.get(secrets.env_name(provider, account)):
            return True
        if account == "default" and hasattr(module, "has_credentials") \
                and module.has_credentials():
            return True  # the login the tool keeps itself (Cursor's), read-only
        known = known_accounts() if known is None else known
        if account not in known.get(provider, []):
            return False  # never logged in: no need to wake the keyring (0.2 s to load)
        if not wake:
            return True
        try:
            return secrets.get(provider, account)[0] is not None
        except ToklineError:
            return True  # a locked keyring: the account exists; its fetch reports the problem
    return bool(module.has_credentials())


def configured(cfg: Config | None = None, wake: bool = True) -> list[tuple[str, str]]:
    """(provider, account) pairs that have credentials and are not disabled in config
    (``wake``: see :func:`has_credentials`)."""
    known = known_accounts()
    pairs = []
    for name in PROVIDERS:
        if _settings(name, cfg).get("enabled", True) is False:
            continue
        pairs += [(name, account) for account in accounts_of(name, known)
                  if has_credentials(name, account, known, wake)]
    return pairs


def fetch_due(force: bool = False, now: float | None = None,
              cfg: Config | None = None) -> list[str]:
    """Ask every configured provider account whose cache is older than its TTL (all of
    them with ``force``) unless it is backing off.  One process at a time: another one
    already fetching means there is nothing to do.  Returns the ``provider:account``s asked."""
    cfg = load_config() if cfg is None else cfg
    os.makedirs(state_dir(), exist_ok=True)
    lock = os.open(os.path.join(state_dir(), LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []
        return _fetch_locked(force, time.time() if now is None else now, cfg)
    finally:
        os.close(lock)


def _fetch_locked(force: bool, now: float, cfg: Config) -> list[str]:
    state = load_state()
    asked: list[str] = []
    pairs = configured(cfg)
    for name, account in pairs:
        key = f"{name}:{account}"
        entry: dict[str, Any] = state.get(key) or {}
        module = PROVIDERS[name]
        if now < float(entry.get("backoff_until") or 0):
            continue
        if not force and now - float(entry.get("fetched_at") or 0) < ttl_s(name, cfg) \
                and entry.get("windows") is not None:
            continue
        asked.append(key)
        try:
            windows = module.fetch(base_url(name, cfg), account)
        except (RemoteError, ToklineError) as exc:
            failures = int(entry.get("failures") or 0) + 1
            first_wait = float(getattr(module, "BACKOFF_BASE_S", 30.0))
            retry_after = getattr(exc, "retry_after", None)
            wait = retry_after if retry_after is not None else (
                min(MAX_BACKOFF_S, first_wait * 2 ** (failures - 1))
                if getattr(exc, "transient", False) else ttl_s(name, cfg))
            entry.update(error=_clean(str(exc), name, account), error_at=now,
                         failures=failures, backoff_until=now + wait)
        else:
            entry = {"windows": windows, "fetched_at": now, "error": None, "failures": 0,
                     "backoff_until": 0, "error_at": entry.get("error_at"),
                     "ttl_s": ttl_s(name, cfg)}
        state[key] = entry
    for key in [k for k in state if tuple(k.split(":", 1)) not in pairs]:
        del state[key]  # logged out or disabled: its numbers would only mislead
    write_private(os.path.join(state_dir(), STATE), json.dumps(state).encode())
    _write_due(state, now, pairs, cfg)
    return asked


def _clean(message: str, provider: str, account: str) -> str:
    # Errors are built without secrets; this is the belt to those braces.
    if provider in KEYED:
        try:
            return secrets.redact(message, secrets.get(provider, account)[0])
        except ToklineError:
            return message
    return message


def _write_due(state: dict[str, Any], now: float, pairs: list[tuple[str, str]],
               cfg: Config) -> None:
    due = now + RECHECK_S  # a source configured later is noticed within the hour
    for name, account in pairs:
        entry = state.get(f"{name}:{account}") or {}
        next_time = max(float(entry.get("fetched_at") or 0) + ttl_s(name, cfg),
                        float(entry.get("backoff_until") or 0))
        due = min(due, next_time)
    write_private(os.path.join(state_dir(), DUE), f"{due:.0f}".encode())


