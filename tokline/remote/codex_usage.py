"""Codex / ChatGPT plan usage (remote_apis.md §6): ``GET {base}/wham/usage`` with the token
Codex keeps in ``$CODEX_HOME/auth.json``.  The file is read, never written: Codex owns and
rotates that token, so an expired one is reported ("run codex") and the last numbers kept.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tokline.prompt import quotaview
from tokline.prompt.quotaview import CACHE_S, number
from tokline.remote.http import RemoteError, get_json
from tokline.sources.codex import homes

NAME = "codex"
DEFAULT_BASE = "https://chatgpt.com/backend-api"
TTL_S = CACHE_S[NAME]  # the cache time of every provider: tokline/prompt/quotaview.py
RELOGIN = "run `codex` once to refresh its login"


def auth_file() -> str:
    return os.path.join(homes(os.environ)[0], "auth.json")


def _tokens() -> dict[str, Any] | None:
    try:
        with open(auth_file(), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    tokens = data.get("tokens") if isinstance(data, dict) else None
    return tokens if isinstance(tokens, dict) and tokens.get("access_token") else None


def has_credentials() -> bool:
    return _tokens() is not None


def _windows(limits: Any, label: str) -> list[dict[str, Any]]:
    """The windows of one ``rate_limit`` object, named by ``limit_window_seconds`` (18000
    = 5h, 604800 = 7d, others by their length): OpenAI moves the weekly window into the
    primary slot when a plan has no 5-hour limit (remote_apis.md §6), so a slot says
    nothing about the length; one without a length keeps its slot's name."""
    out: list[dict[str, Any]] = []
    if not isinstance(limits, dict):
        return out
    for slot in ("primary_window", "secondary_window"):
        entry = limits.get(slot)
        used = number(entry.get("used_percent")) if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or used is None:
            continue
        seconds = number(entry.get("limit_window_seconds"))
        window: dict[str, Any] = {
            "source": NAME, "window": quotaview.window_name(seconds, slot.split("_")[0]) + label,
            "kind": "official", "used_percent": used, "resets_at": number(entry.get("reset_at"))}
        if seconds is not None and seconds > 0:
            window["window_s"] = seconds
        if quotaview.is_reading(window):
            out.append(window)
    return out


def fetch(base: str, account: str) -> list[dict[str, Any]]:
    tokens = _tokens()
    if tokens is None:
        raise RemoteError(f"codex: no login in {auth_file()}; {RELOGIN}")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    if isinstance(tokens.get("account_id"), str):
        headers["ChatGPT-Account-Id"] = tokens["account_id"]
    path = "/wham/usage" if "/backend-api" in base else "/api/codex/usage"
    data = get_json(base.rstrip("/") + path, headers, NAME, RELOGIN)
    if not isinstance(data, dict):
        raise RemoteError("codex: unexpected answer", transient=True)
    windows = _windows(data.get("rate_limit"), "")
    for extra in data.get("additional_rate_limits") or []:
        if isinstance(extra, dict) and isinstance(extra.get("limit_name"), str):
            windows += _windows(extra.get("rate_limit"), " " + extra["limit_name"])
    for window in windows:
        window["plan"] = data.get("plan_type")
    return windows
