"""Claude subscription usage (remote_apis.md §1): ``GET {base}/api/oauth/usage`` with the
OAuth token Claude Code keeps in ``.credentials.json``.  The file is read, never written:
Claude Code owns and rotates that token, so an expired one is reported ("run claude") and
the last numbers kept.  The endpoint rate-limits hard and often answers 429 with
``retry-after: 0``, hence the long TTL and back-off.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tokline.remote.http import RemoteError, get_json
from tokline.remote.values import number, parse_time
from tokline.sources.claude import configured_dirs

NAME = "claude"
DEFAULT_BASE = "https://api.anthropic.com"
TTL_S = 300.0
BACKOFF_BASE_S = 300.0
RELOGIN = "run `claude` once to refresh its login"
BETA = "oauth-2025-04-20"
WINDOW_NAMES = {"five_hour": "5h", "seven_day": "7d"}


def credentials_files() -> list[str]:
    home = os.environ.get("HOME") or os.path.expanduser("~")
    dirs = configured_dirs(os.environ) or [os.path.join(home, ".claude")]
    return [os.path.join(d, ".credentials.json") for d in dirs]


def _oauth() -> dict[str, Any] | None:
    for path in credentials_files():
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            continue
        oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
        if isinstance(oauth, dict) and isinstance(oauth.get("accessToken"), str):
            return oauth
    return None


def has_credentials() -> bool:
    return _oauth() is not None


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.strip().lower()).strip("_")


def parse(data: Any, plan: str | None) -> list[dict[str, Any]]:
    """Windows from the usage answer: every ``five_hour``/``seven_day*`` object with a
    utilization, the per-model weekly caps that moved into ``limits[]``, and extra usage."""
    if not isinstance(data, dict):
        raise RemoteError("claude: unexpected answer", transient=True)
    windows: dict[str, dict[str, Any]] = {}
    for key, entry in data.items():
        if not (key == "five_hour" or key.startswith("seven_day")) or not isinstance(entry, dict):
            continue
        used = number(entry.get("utilization"))
        if used is None:
            continue
        name = WINDOW_NAMES.get(key) or "7d_" + key[len("seven_day_"):]
        windows[name] = {"window": name, "used_percent": used,
                         "resets_at": parse_time(entry.get("resets_at"))}
    for limit in data.get("limits") or []:
        if not isinstance(limit, dict) or limit.get("kind") != "weekly_scoped":
            continue
        used = number(limit.get("percent"))
        model = ((limit.get("scope") or {}).get("model") or {}).get("display_name")
        if used is None or not isinstance(model, str) or not _slug(model):
            continue
        name = "7d_" + _slug(model)
        windows.setdefault(name, {"window": name, "used_percent": used,
                                  "resets_at": parse_time(limit.get("resets_at"))})
    extra = data.get("extra_usage")
    if isinstance(extra, dict) and extra.get("is_enabled"):
        used_cents = number(extra.get("used_credits"))
        limit_cents = number(extra.get("monthly_limit"))
        if used_cents is not None and limit_cents:
            windows["extra"] = {"window": "extra", "used_percent": 100 * used_cents / limit_cents,
                                "resets_at": None, "used_usd": used_cents / 100,
                                "limit_usd": limit_cents / 100}
    return [{"source": NAME, "kind": "official", "plan": plan, **w} for w in windows.values()]


def fetch(base: str, account: str) -> list[dict[str, Any]]:
    oauth = _oauth()
    if oauth is None:
        raise RemoteError(f"claude: no login in {credentials_files()[0]}; {RELOGIN}")
    scopes = oauth.get("scopes")
    if isinstance(scopes, list) and scopes and "user:profile" not in scopes:
        raise RemoteError("claude: this login cannot read usage (no user:profile scope); "
                          "log in with `claude` instead of a setup token")
    headers = {"Authorization": f"Bearer {oauth['accessToken']}", "anthropic-beta": BETA}
    try:
        data = get_json(base.rstrip("/") + "/api/oauth/usage", headers, NAME, RELOGIN)
    except RemoteError as exc:
        if exc.retry_after is not None and exc.retry_after <= 0:
            exc.retry_after = None  # "retry-after: 0" is useless here: use our back-off
        raise
    plan = oauth.get("subscriptionType")
    return parse(data, plan if isinstance(plan, str) else None)
