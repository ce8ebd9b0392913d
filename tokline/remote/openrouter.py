"""OpenRouter credits (remote_apis.md §4): ``/credits`` for the balance, falling back to the
key's own ``/key`` limits when ``/credits`` is refused (it now wants a management key)."""

from __future__ import annotations

from typing import Any

from tokline.prompt.quotaview import CACHE_S
from tokline.remote import credentials
from tokline.remote.http import RemoteError, get_json
from tokline.remote.values import number

NAME = "openrouter"
DEFAULT_BASE = "https://openrouter.ai/api/v1"
TTL_S = CACHE_S[NAME]  # the cache time of every provider: tokline/prompt/quotaview.py
RELOGIN = "run `tokline auth login openrouter` with a valid key"


def fetch(base: str, account: str) -> list[dict[str, Any]]:
    key = credentials.get(NAME, account)[0]
    if key is None:
        raise RemoteError(f"openrouter: no key; {RELOGIN}")
    headers = {"Authorization": f"Bearer {key}"}
    data = get_json(base.rstrip("/") + "/key", headers, NAME, RELOGIN)
    info = data.get("data") if isinstance(data, dict) else None
    if not isinstance(info, dict):
        raise RemoteError("openrouter: unexpected answer from /key", transient=True)
    window: dict[str, Any] = {"source": NAME, "window": "credits", "kind": "official",
                              "resets_at": None, "used_percent": None}
    usage, limit = number(info.get("usage")), number(info.get("limit"))
    if limit:
        window["used_percent"] = round(100 * (usage or 0) / limit, 1)
        window["remaining_usd"] = number(info.get("limit_remaining"))
    window["spent_usd"] = usage
    try:
        credits = get_json(base.rstrip("/") + "/credits", headers, NAME, RELOGIN)
    except RemoteError as exc:
        if exc.transient:
            raise
        credits = None  # a normal key may not read /credits: the key's limits stand
    total = credits.get("data") if isinstance(credits, dict) else None
    if isinstance(total, dict) and number(total.get("total_credits")) is not None:
        bought = number(total.get("total_credits")) or 0.0
        used = number(total.get("total_usage")) or 0.0
        window["balance_usd"] = round(bought - used, 6)
        if window["used_percent"] is None and bought:
            window["used_percent"] = round(100 * used / bought, 1)
    return [window]
