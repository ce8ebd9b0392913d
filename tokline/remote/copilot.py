"""GitHub Copilot premium requests (remote_apis.md §5b): ``GET {base}/copilot_internal/user``
with a GitHub OAuth token from tokline's device-flow login (or one the user pastes, e.g.
``gh auth token``).  An org-managed seat answers with an all-zero placeholder, which is
"not reported", never "0 % used"."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tokline.prompt.quotaview import CACHE_S
from tokline.remote import credentials
from tokline.remote.http import RemoteError, get_json
from tokline.remote.values import number, parse_time

NAME = "copilot"
DEFAULT_BASE = "https://api.github.com"
TTL_S = CACHE_S[NAME]  # the cache time of every provider: tokline/prompt/quotaview.py
BACKOFF_BASE_S = 60.0
RELOGIN = "run `tokline auth login copilot` again"
HEADERS = {"Editor-Version": "vscode/1.96.2", "Editor-Plugin-Version": "copilot-chat/0.26.7",
           "X-Github-Api-Version": "2025-04-01"}


def _reset(data: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and len(value) == 10:  # a bare date: midnight UTC
            try:
                return datetime.strptime(value, "%Y-%m-%d").replace(
                    tzinfo=timezone.utc).timestamp()
            except ValueError:
                continue
        epoch = parse_time(value)
        if epoch is not None:
            return epoch
    return None


def _month_s(resets: float | None) -> float | None:
    """The length of a monthly allowance that resets at ``resets``: from the same day and
    time a month earlier (Copilot's allowances are monthly), for pace and run-out."""
    if resets is None:
        return None
    end = datetime.fromtimestamp(resets, timezone.utc)
    year, month = (end.year - 1, 12) if end.month == 1 else (end.year, end.month - 1)
    days = (datetime(year + month // 12, month % 12 + 1, 1) - datetime(year, month, 1)).days
    return resets - end.replace(year=year, month=month, day=min(end.day, days)).timestamp()


def _is_placeholder(snap: dict[str, Any]) -> bool:
    return not snap.get("unlimited") and number(snap.get("entitlement")) in (None, 0.0) \
        and number(snap.get("remaining")) in (None, 0.0)


def parse(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict):
        raise RemoteError("copilot: unexpected answer", transient=True)
    plan = data.get("copilot_plan") if isinstance(data.get("copilot_plan"), str) else None
    base = {"source": NAME, "kind": "official", "plan": plan}
    windows: list[dict[str, Any]] = []
    snaps = data.get("quota_snapshots")
    premium = snaps.get("premium_interactions") if isinstance(snaps, dict) else None
    resets = _reset(data, "quota_reset_date_utc", "quota_reset_date", "quota_reset_at")
    if isinstance(premium, dict) and not premium.get("unlimited"):
        if _is_placeholder(premium):
            windows.append({**base, "window": "premium", "used_percent": None,
                            "resets_at": resets, "note": "managed by your organization"})
        else:
            left = number(premium.get("percent_remaining"))
            entitled = number(premium.get("entitlement"))
            remaining = number(premium.get("quota_remaining"))
            if remaining is None:
                remaining = number(premium.get("remaining"))
            if left is None and entitled and remaining is not None:
                left = 100 * remaining / entitled
            windows.append({**base, "window": "premium",
                            "used_percent": None if left is None else round(100 - left, 1),
                            "resets_at": resets, "window_s": _month_s(resets),
                            "remaining": remaining,
                            "entitlement": entitled,
                            "overage": number(premium.get("overage_count"))})
    monthly, limited = data.get("monthly_quotas"), data.get("limited_user_quotas")
    if isinstance(monthly, dict) and isinstance(limited, dict):  # Copilot Free
        free_reset = _reset(data, "limited_user_reset_date", "quota_reset_date")
        for kind in ("chat", "completions"):
            total, remaining = number(monthly.get(kind)), number(limited.get(kind))
            if total and remaining is not None:
                windows.append({**base, "window": kind, "resets_at": free_reset,
                                "window_s": _month_s(free_reset),
                                "used_percent": round(100 * (total - remaining) / total, 1),
                                "remaining": remaining, "entitlement": total})
    return windows


def fetch(base: str, account: str) -> list[dict[str, Any]]:
    token = credentials.get(NAME, account)[0]
    if token is None:
        raise RemoteError(f"copilot: no GitHub login; {RELOGIN}")
    data = get_json(base.rstrip("/") + "/copilot_internal/user",
                    {"Authorization": f"token {token}", **HEADERS}, NAME, RELOGIN)
    return parse(data)
