"""Claude subscription usage (remote_apis.md §1): ``GET {base}/api/oauth/usage`` with the
OAuth token Claude Code keeps in ``.credentials.json`` (on macOS: in the Keychain, item
``Claude Code-credentials``).  Its login is read, never written:
Claude Code owns and rotates that token, so an expired one is reported ("run claude") and
the last numbers kept.  The endpoint rate-limits hard and often answers 429 with
``retry-after: 0``, hence the long TTL and back-off.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from typing import Any

from tokline.prompt import quotaview
from tokline.prompt.quotaview import CACHE_S
from tokline.remote.http import RemoteError, get_json
from tokline.remote.values import number, parse_time
from tokline.sources.claude import configured_dirs

NAME = "claude"
DEFAULT_BASE = "https://api.anthropic.com"
TTL_S = CACHE_S[NAME]  # the cache time of every provider: tokline/prompt/quotaview.py
BACKOFF_BASE_S = 300.0
RELOGIN = "run `claude` once to refresh its login"
BETA = "oauth-2025-04-20"
# The legacy top-level keys and the kinds of ``limits[]`` (remote_apis.md §1.2), by window
LEGACY_NAMES = {"five_hour": "5h", "seven_day": "7d"}
KIND_NAMES = {"session": "5h", "weekly_all": "7d"}
GROUP_SECONDS = {"session": quotaview.FIVE_HOURS_S, "weekly": quotaview.WEEK_S}
KEYCHAIN_SERVICE = "Claude Code-credentials"
KEYCHAIN_TIMEOUT_S = 30.0  # a first read may wait for the user to answer the Keychain
KEYCHAIN_NOT_FOUND = 44  # ``security``'s exit status for errSecItemNotFound
KEYCHAIN_REFUSED_WAIT_S = 86400.0  # after a denied or failed read, ask again a day later


def credentials_files() -> list[str]:
    home = os.environ.get("HOME") or os.path.expanduser("~")
    dirs = configured_dirs(os.environ) or [os.path.join(home, ".claude")]
    return [os.path.join(d, ".credentials.json") for d in dirs]


def _macos() -> bool:
    return sys.platform == "darwin"


def keychain_services() -> list[str]:
    """The Keychain items Claude Code keeps its login in on macOS: ``Claude
    Code-credentials``, or with CLAUDE_CONFIG_DIR one per directory, suffixed with the
    first 8 hex digits of the SHA-256 of the directory as written."""
    dirs = configured_dirs(os.environ)
    if not dirs:
        return [KEYCHAIN_SERVICE]
    return [f"{KEYCHAIN_SERVICE}-{hashlib.sha256(d.encode()).hexdigest()[:8]}" for d in dirs]


def _oauth_of(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
    # Claude Code 2.1 may keep only ``mcpOAuth`` in an item: no login to read
    if isinstance(oauth, dict) and isinstance(oauth.get("accessToken"), str):
        return oauth
    return None


def _file_oauth() -> dict[str, Any] | None:
    for path in credentials_files():
        try:
            with open(path, encoding="utf-8") as fh:
                oauth = _oauth_of(fh.read())
        except (OSError, UnicodeDecodeError):
            continue
        if oauth is not None:
            return oauth
    return None


def _security(args: list[str]) -> subprocess.CompletedProcess[str] | None:
    program = shutil.which("security")
    if program is None:
        return None
    try:
        return subprocess.run([program, *args], capture_output=True, text=True,
                              timeout=KEYCHAIN_TIMEOUT_S, stdin=subprocess.DEVNULL,
                              check=False)
    except subprocess.TimeoutExpired:
        raise RemoteError("claude: the Keychain did not answer within "
                          f"{KEYCHAIN_TIMEOUT_S:.0f} s; tokline asks again in a day",
                          retry_after=KEYCHAIN_REFUSED_WAIT_S) from None
    except OSError:
        return None


def _in_keychain() -> bool:
    """An item exists: its attributes only (no ``-w``), which the Keychain gives without
    asking the user, so the many checks of which providers are configured never prompt."""
    if not _macos():
        return False
    for service in keychain_services():
        try:
            found = _security(["find-generic-password", "-s", service])
        except RemoteError:
            continue  # no answer: the fetch that reads it will say so
        if found is not None and found.returncode == 0:
            return True
    return False


def _keychain_oauth() -> dict[str, Any] | None:
    """The login from the Keychain, read with ``security … -w`` (the secret itself: the
    one call that may make the Keychain ask the user).  It runs only in a fetch, so at
    most once per cache time; a refusal backs off for a day rather than asking again at
    the next fetch."""
    for service in keychain_services():
        found = _security(["find-generic-password", "-s", service, "-w"])
        if found is None or found.returncode == KEYCHAIN_NOT_FOUND:
            continue
        if found.returncode != 0:  # denied, locked, no user to ask (an ssh session)
            raise RemoteError("claude: the Keychain did not give Claude Code's login "
                              f"(security exited {found.returncode}); tokline asks again "
                              "in a day", retry_after=KEYCHAIN_REFUSED_WAIT_S)
        oauth = _oauth_of(found.stdout.strip())
        if oauth is not None:
            return oauth
    return None


def _oauth() -> dict[str, Any] | None:
    oauth = _file_oauth()
    if oauth is None and _macos():
        oauth = _keychain_oauth()
    return oauth


def has_credentials() -> bool:
    return _file_oauth() is not None or _in_keychain()


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.strip().lower()).strip("_")


def _limit_window(limit: dict[str, Any]) -> tuple[str, float | None] | None:
    """The name and length of a ``limits[]`` entry's window: ``5h`` for the session,
    ``7d`` for the weekly limit of all models, ``7d_<model>`` for a per-model (scoped)
    one; a kind not known yet is named by its slug, with its group's length."""
    kind = limit.get("kind")
    if not isinstance(kind, str) or not _slug(kind):
        return None
    group = limit.get("group")
    seconds = GROUP_SECONDS.get(group) if isinstance(group, str) else None
    if kind in KIND_NAMES:
        return KIND_NAMES[kind], GROUP_SECONDS["session" if kind == "session" else "weekly"]
    if kind == "weekly_scoped":
        scope = limit.get("scope")
        scope = scope if isinstance(scope, dict) else {}
        model = scope.get("model")
        name = (model.get("display_name") if isinstance(model, dict) else None) \
            or scope.get("surface")
        if not isinstance(name, str) or not _slug(name):
            return None
        return "7d_" + _slug(name), quotaview.WEEK_S
    return _slug(kind), seconds


def parse(data: Any, plan: str | None) -> list[dict[str, Any]]:
    """Windows from the usage answer.  ``limits[]`` (the newer shape: the session, the
    weekly limit and the per-model weekly caps) is read first; the legacy
    ``five_hour``/``seven_day*`` keys fill in what it lacks, so either alone gives the
    5h and 7d windows.  A window that is no reading (quotaview.is_reading) is left out,
    and so is extra usage while it is off."""
    if not isinstance(data, dict):
        raise RemoteError("claude: unexpected answer", transient=True)
    windows: dict[str, dict[str, Any]] = {}
    limits = data.get("limits")
    for limit in limits if isinstance(limits, list) else []:
        found = _limit_window(limit) if isinstance(limit, dict) else None
        used = number(limit.get("percent")) if found else None
        if found is None or used is None or found[0] in windows:
            continue
        name, seconds = found
        window = {"window": name, "used_percent": used,
                  "resets_at": parse_time(limit.get("resets_at")),
                  "active": limit.get("is_active") is True}
        if seconds is not None:
            window["window_s"] = seconds
        if quotaview.is_reading(window):  # else the legacy key may still have one
            windows[name] = window
    for key, entry in data.items():
        if not (key == "five_hour" or key.startswith("seven_day")) or not isinstance(entry, dict):
            continue
        used = number(entry.get("utilization"))
        name = LEGACY_NAMES.get(key) or "7d_" + key[len("seven_day_"):]
        if used is None or name in windows:
            continue
        window = {"window": name, "used_percent": used,
                  "resets_at": parse_time(entry.get("resets_at")),
                  "window_s": quotaview.FIVE_HOURS_S if name == "5h" else quotaview.WEEK_S}
        if quotaview.is_reading(window):
            windows[name] = window
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
        where = credentials_files()[0] + (" or the Keychain" if _macos() else "")
        raise RemoteError(f"claude: no login in {where}; {RELOGIN}")
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
