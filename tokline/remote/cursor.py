"""Cursor (remote_apis.md §7b, formats.md §10.1): the plan's quota from
``GET {base}/api/usage-summary`` and every usage event from ``POST
{base}/api/dashboard/get-filtered-usage-events``, which become ledger rows (source
``cursor``, tokline/sources/cursor.py): Cursor keeps no usage log on disk.

The login is a session token given to ``tokline auth login cursor`` (the keyring, like
other keys), else, for the default account, the one Cursor itself keeps in its
``state.vscdb``: read-only, used only while its JWT is more than a minute from expiring,
never renewed (Cursor owns it).  Both go in the ``WorkosCursorSessionToken`` cookie.

Events have no id and their pages may repeat rows at their boundaries: every page is
read, the rows repeated at boundaries are taken out as far as the reported
``totalUsageEventsCount`` proves them repeats (CodexBar's rule), and a fetch whose
counts do not agree stores nothing.  Each fetch asks from a day before the last one's
end (the dashboard lags), in slices of a week (the first one: 90 days back), each
stored with its end in one transaction; rows keyed by content (tokline/sources/cursor.py)
make the overlap add nothing.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import sqlite3
import time
import urllib.parse
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from tokline.prompt.quotaview import CACHE_S
from tokline.remote import credentials
from tokline.remote.http import RemoteError, get_json
from tokline.remote.values import parse_time
from tokline.sources.cursor import amount, events_usage, state_db, whole_number

if TYPE_CHECKING:
    from tokline.ledger.store import Ledger
    from tokline.sources.documents import Usage

NAME = "cursor"
DEFAULT_BASE = "https://cursor.com"
TTL_S = CACHE_S[NAME]  # the cache time of every provider: tokline/prompt/quotaview.py
BACKOFF_BASE_S = 60.0
RELOGIN_APP = "open Cursor to renew its login, or run `tokline auth login cursor`"
RELOGIN_KEY = "run `tokline auth login cursor` with a new session token"
LOGIN_PROMPT = ("cursor session token (the WorkosCursorSessionToken cookie, or Cursor's "
                "access token; not shown): ")
COOKIE = "WorkosCursorSessionToken"
TOKEN_KEY = "cursorAuth/accessToken"
EXPIRY_MARGIN_S = 60.0  # a token this close to its expiry is not sent
DAY_MS = 86_400_000
PAGE_SIZE = 1000
MAX_PAGES = 200  # per slice: 200,000 events
HISTORY_MS = 90 * DAY_MS  # how far back the first fetch goes
SLICE_MS = 7 * DAY_MS
LAG_MS = DAY_MS  # each fetch asks again from this long before the last one's end
EVENTS_META = "cursor_events:"  # ledger meta + a hash of the user id: fetched up to (ms)


# --- the login ------------------------------------------------------------------------

def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (not verified: only its expiry and subject are read)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _user_of(claims: dict[str, Any] | None) -> str | None:
    """The user id: the part of ``sub`` (``auth0|user_01…``) after its last ``|``."""
    sub = claims.get("sub") if claims else None
    if not isinstance(sub, str):
        return None
    return sub.rsplit("|", 1)[-1] or None


def session(secret: str) -> tuple[str, str] | None:
    """(user id, access token) from what a user may paste: the cookie (``user_…%3A%3A
    eyJ…`` or ``user_…::eyJ…``, with or without ``WorkosCursorSessionToken=``) or the
    access token alone; None when it is none of them."""
    text = secret.strip()
    for part in text.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == COOKIE:
            text = value.strip()
            break
    user, sep, token = urllib.parse.unquote(text).partition("::")
    if sep:
        return (user, token) if user and token and " " not in text else None
    found = _user_of(jwt_claims(text))
    return (found, text) if found else None


def check_key(secret: str, now: float | None = None) -> str | None:
    """Why ``tokline auth login cursor`` cannot keep this token (None: it can)."""
    found = session(secret)
    if found is None:
        return ("cursor: not a Cursor session token: expected the WorkosCursorSessionToken "
                "cookie (user_…%3A%3AeyJ…) or Cursor's access token (eyJ…); nothing stored")
    expired = _expired(found[1], time.time() if now is None else now)
    if expired:
        return f"cursor: this session token expired {expired}; nothing stored"
    return None


def _expired(token: str, now: float) -> str | None:
    """When the token expired (or expires within EXPIRY_MARGIN_S), as text; None while
    it is good or its expiry unknown."""
    claims = jwt_claims(token)
    exp = claims.get("exp") if claims else None
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) \
            and exp - now <= EXPIRY_MARGIN_S:
        moment = datetime.fromtimestamp(exp, timezone.utc)
        return ("on " if exp <= now else "within a minute, on ") \
            + moment.strftime("%Y-%m-%d %H:%M UTC")
    return None


def _text(value: object) -> str | None:
    """An ItemTable value: TEXT, or a UTF-8 or UTF-16LE BLOB; a JSON string unquoted."""
    if isinstance(value, bytes):
        utf16 = value.startswith(b"\xff\xfe") or (len(value) > 1 and value[1:2] == b"\x00")
        try:
            value = value.decode("utf-16-le" if utf16 else "utf-8").lstrip("\ufeff")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        try:
            text = json.loads(text)
        except ValueError:
            return None
    return text or None


def _uri(path: str, immutable: bool) -> str:
    quoted = path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    return f"file:{quoted}?mode=ro" + ("&immutable=1" if immutable else "")


def app_token(path: str) -> str | None:
    """Cursor's access token from its ``state.vscdb``, read-only.  A database in WAL mode
    with neither ``-wal`` nor ``-shm`` beside it (Cursor not running) is opened
    immutable: a plain read-only open would leave those two files in Cursor's directory.
    Otherwise never (it would miss what a WAL or a hot journal holds)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError:
        return None
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return None
    immutable = header[18] == 2 and not any(
        os.path.exists(path + suffix) for suffix in ("-wal", "-shm"))
    try:
        db = sqlite3.connect(_uri(path, immutable), uri=True, timeout=2.0)
    except sqlite3.Error:
        return None
    try:
        row = db.execute("SELECT value FROM ItemTable WHERE key = ?", (TOKEN_KEY,)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return _text(row[0]) if row else None


def has_credentials() -> bool:
    """Cursor's own login is there (expired or not: the fetch says which)."""
    return app_token(state_db()) is not None


class Login:
    """A session to ask with: the cookie's value, the user id, and what to tell the
    user when it is refused."""

    __slots__ = ("cookie", "relogin", "user")

    def __init__(self, user: str, token: str, relogin: str) -> None:
        self.user = user
        self.cookie = f"{urllib.parse.quote(user, safe='')}%3A%3A{token}"
        self.relogin = relogin


def login(account: str, now: float) -> Login:
    """The account's session token (the environment or keyring), else for the default
    account Cursor's own login; RemoteError when there is none that can be sent."""
    secret = credentials.get(NAME, account)[0]
    if secret:
        found = session(secret)
        what, relogin = "the session token given to `tokline auth login cursor`", RELOGIN_KEY
        if found is None:
            raise RemoteError(f"cursor: {what} is not one tokline can read; {relogin}")
    elif account == "default":
        path = state_db()
        token = app_token(path)
        if token is None:
            raise RemoteError(f"cursor: no login in {path}; log in to Cursor, or run "
                              "`tokline auth login cursor`")
        user = _user_of(jwt_claims(token))
        what, relogin = f"Cursor's login in {path}", RELOGIN_APP
        if user is None:
            raise RemoteError(f"cursor: {what} is not a token tokline can read; {relogin}")
        found = (user, token)
    else:
        raise RemoteError(f"cursor: no session token for the account {account}; run "
                          f"`tokline auth login cursor --account {account}`")
    expired = _expired(found[1], now)
    if expired:
        raise RemoteError(f"cursor: {what} expired {expired}; {relogin}")
    return Login(found[0], found[1], relogin)


# --- the plan's quota -------------------------------------------------------------------

def _block(data: object, *path: str) -> dict[str, Any] | None:
    """A nested usage block, when it is an object and not switched off."""
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("enabled") is False:
        return None
    return data


def _money(block: dict[str, Any]) -> dict[str, Any]:
    """A block's cents as dollars: spent, limit (absent: none, i.e. unlimited), left."""
    used, limit = amount(block.get("used")), amount(block.get("limit"))
    left = amount(block.get("remaining"))
    if left is None and used is not None and limit is not None:
        left = max(0.0, limit - used)
    out = {"spent_usd": used / 100 if used is not None else None}
    if limit:
        out.update(limit_usd=limit / 100, remaining_usd=None if left is None else left / 100)
    return out


def _ratio(block: dict[str, Any] | None) -> float | None:
    if block is None:
        return None
    used, limit = amount(block.get("used")), amount(block.get("limit"))
    return round(100 * used / limit, 1) if used is not None and limit else None


def summary_windows(data: Any) -> list[dict[str, Any]]:
    """Windows from ``usage-summary`` (formats.md §10.1): ``plan`` (its percentage from
    ``totalPercentUsed``, else the mean of ``autoPercentUsed`` and ``apiPercentUsed``,
    else used/limit of the plan, of ``individualUsage.overall`` (an enterprise member's
    cap), of ``teamUsage.pooled``), ``on_demand`` and ``team_on_demand`` (spend; a
    percentage when there is a limit); all reset at ``billingCycleEnd``."""
    if not isinstance(data, dict):
        raise RemoteError("cursor: unexpected answer from usage-summary", transient=True)
    start, end = parse_time(data.get("billingCycleStart")), parse_time(data.get("billingCycleEnd"))
    plan_name = data.get("membershipType") if isinstance(data.get("membershipType"), str) \
        else None
    base: dict[str, Any] = {"source": NAME, "kind": "official", "plan": plan_name,
                            "resets_at": end}
    if start is not None and end is not None and end > start:
        base["window_s"] = end - start
    windows: list[dict[str, Any]] = []
    plan = _block(data, "individualUsage", "plan")
    percent = amount(plan.get("totalPercentUsed")) if plan else None
    if percent is None and plan:
        parts = [p for p in (amount(plan.get("autoPercentUsed")),
                             amount(plan.get("apiPercentUsed"))) if p is not None]
        percent = sum(parts) / len(parts) if parts else None
    source = plan
    for fallback in (plan, _block(data, "individualUsage", "overall"),
                     _block(data, "teamUsage", "pooled")):
        if percent is not None:
            break
        percent, source = _ratio(fallback), fallback
    if percent is not None or (plan and amount(plan.get("used")) is not None):
        windows.append({**base, "window": "plan", "used_percent": percent,
                        **_money(source or plan or {})})
    for name, path in (("on_demand", ("individualUsage", "onDemand")),
                       ("team_on_demand", ("teamUsage", "onDemand"))):
        block = _block(data, *path)
        if block is not None and amount(block.get("used")) is not None:
            windows.append({**base, "window": name, "used_percent": _ratio(block),
                            **_money(block)})
    return windows


def legacy_windows(data: Any) -> list[dict[str, Any]]:
    """A request-count plan (``/api/usage?user=…``): its premium (``gpt-4``) requests
    this month as the ``plan`` window."""
    entry = data.get("gpt-4") if isinstance(data, dict) else None
    if not isinstance(entry, dict):
        return []
    used = amount(entry.get("numRequests"))
    if used is None:
        used = amount(entry.get("numRequestsTotal"))
    limit = amount(entry.get("maxRequestUsage"))
    if used is None or not limit:
        return []
    start = parse_time(data.get("startOfMonth"))
    resets = None
    if start is not None:
        begun = datetime.fromtimestamp(start, timezone.utc)
        resets = (begun.replace(year=begun.year + 1, month=1) if begun.month == 12
                  else begun.replace(month=begun.month + 1)).timestamp()
    window = {"source": NAME, "kind": "official", "plan": None, "window": "plan",
              "used_percent": round(100 * used / limit, 1), "resets_at": resets,
              "remaining": max(0.0, limit - used), "entitlement": limit}
    if start is not None and resets is not None:
        window["window_s"] = resets - start
    return [window]


# --- usage events ------------------------------------------------------------------------

def _origin(base: str) -> str:
    """``Origin`` for the POSTs (Cursor checks it against CSRF)."""
    parts = urllib.parse.urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}"


def boundary_overlap(previous: list[Any], current: list[Any]) -> int:
    """How many rows ``current`` begins with that ``previous`` ends with (the most)."""
    for count in range(min(len(previous), len(current)), 0, -1):
        if previous[-count:] == current[:count]:
            return count
    return 0


def reconcile(pages: list[list[Any]], total: int | None) -> list[Any]:
    """The events of every page, less the rows repeated at page boundaries, as many as
    the reported total proves repeats; RemoteError when the counts do not agree (two
    equal rows the total counts twice stay two)."""
    rows = [row for page in pages for row in page]
    if total is None:
        return rows
    if len(rows) < total:
        raise RemoteError(f"cursor: {len(rows)} usage events read of {total}; asked again "
                          "later", transient=True)
    extra = len(rows) - total
    kept = list(pages[0]) if pages else []
    for before, page in itertools.pairwise(pages):
        removed = min(boundary_overlap(before, page), extra)
        kept.extend(page[removed:])
        extra -= removed
    if extra or len(kept) != total:
        raise RemoteError(f"cursor: the usage events do not add up ({len(rows)} read, "
                          f"{total} reported); asked again later", transient=True)
    return kept


def events(base: str, headers: dict[str, str], relogin: str, start_ms: int,
           end_ms: int) -> list[Any]:
    """Every usage event in [start, end], paged until a short or empty page."""
    url = base + "/api/dashboard/get-filtered-usage-events"
    headers = {**headers, "Origin": _origin(base)}
    pages: list[list[Any]] = []
    total: int | None = None
    for page in range(1, MAX_PAGES + 1):
        answer = get_json(url, headers, NAME, relogin, body={
            "page": page, "pageSize": PAGE_SIZE, "startDate": str(start_ms),
            "endDate": str(end_ms)})
        rows = answer.get("usageEventsDisplay") if isinstance(answer, dict) else None
        if not isinstance(rows, list):
            raise RemoteError("cursor: unexpected answer from the usage events",
                              transient=True)
        count = whole_number(answer.get("totalUsageEventsCount"))
        if count is not None:
            if total is not None and count != total:
                raise RemoteError("cursor: the usage events changed while read (total "
                                  f"{total}, then {count}); asked again later",
                                  transient=True)
            total = count
        if not rows:
            return reconcile(pages, total)
        pages.append(rows)
        if len(rows) < PAGE_SIZE:
            return reconcile(pages, total)
    raise RemoteError(f"cursor: more than {MAX_PAGES} pages of usage events in a week",
                      transient=True)


def store_events(base: str, headers: dict[str, str], who: Login, now: float) -> int:
    """Fetch the events since the last fetch's end (less LAG_MS; HISTORY_MS the first
    time) a slice at a time, and store each slice's rows with its end.  Returns the
    rows written."""
    from tokline.ledger.store import Ledger  # noqa: PLC0415 - the refresh's, loaded already
    from tokline.prompt.uptodate import ledger_path  # noqa: PLC0415

    meta = EVENTS_META + hashlib.sha256(who.user.encode()).hexdigest()[:16]
    now_ms = int(now * 1000)
    written = 0
    try:
        with Ledger(ledger_path()) as ledger:
            done = whole_number(ledger.get_meta(meta))
            start = min(done, now_ms) - LAG_MS if done is not None else now_ms - HISTORY_MS
            while True:
                end = min(start + SLICE_MS, now_ms)
                found, _ = events_usage(events(base, headers, who.relogin, start, end))
                with ledger.write():
                    written += store(ledger, found)
                    ledger.set_meta(meta, str(end))
                if end >= now_ms:
                    return written
                start = end
    except sqlite3.Error as exc:  # busy past its timeout, or worse: the next fetch tries
        raise RemoteError(f"cursor: could not store the usage events ({exc})",
                          transient=True) from None


def store(ledger: Ledger, found: dict[str, Usage]) -> int:
    """Inside ``ledger.write()``: Cursor's usage (events fetched, or a dashboard export's
    rows: tokline scan --cursor-csv) as rows, keyed by content so the same event from
    either, or fetched again, is one row.  Returns how many."""
    from tokline.sources.documents import rows  # noqa: PLC0415

    new = rows(NAME, found, ledger.context_id, None)
    ledger.upsert_usage(new)
    return len(new)


def fetch(base: str, account: str) -> list[dict[str, Any]]:
    now = time.time()
    who = login(account, now)
    root = base.rstrip("/")
    headers = {"Cookie": f"{COOKIE}={who.cookie}"}
    windows = summary_windows(get_json(root + "/api/usage-summary", headers, NAME,
                                       who.relogin))
    if not any(w["window"] == "plan" for w in windows):  # a request-count plan?
        try:
            windows += legacy_windows(get_json(
                root + "/api/usage?" + urllib.parse.urlencode({"user": who.user}), headers,
                NAME, who.relogin))
        except RemoteError as exc:
            if exc.transient:
                raise  # else none: the summary said what there is
    store_events(root, headers, who, now)
    return windows
