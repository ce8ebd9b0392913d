"""A fake provider server on 127.0.0.1 and an in-process keyring, for the remote tests; the
quota answers in each shape the providers send, the logins to ask with, and recording
stand-ins for the programs tokline runs (notify-send, security)."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeAlias

import keyring
import keyring.backend
import pytest

Answer = tuple[int, dict[str, str], Any]
# a fixed answer, answers served in turn (the last one repeats), or a function of the request
Route: TypeAlias = "Answer | list[Answer] | Callable[[Request], Answer]"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend that keeps passwords in this process."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username))


class SlowKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        time.sleep(3)
        return None


class Request:
    def __init__(self, method: str, target: str, headers: dict[str, str], body: str) -> None:
        self.method = method
        self.path, _, query = target.partition("?")
        self.query = urllib.parse.parse_qs(query)
        self.form = urllib.parse.parse_qs(body)
        self.body = body
        self.headers = headers


class Fake(http.server.BaseHTTPRequestHandler):
    # Each test gets its own subclass with fresh containers (the ``server`` fixture).
    routes: ClassVar[dict[str, Route]] = {}
    hits: ClassVar[dict[str, int]] = {}
    seen_auth: ClassVar[list[str]] = []
    requests: ClassVar[list[Request]] = []

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        request = Request(method, self.path, {k.lower(): v for k, v in self.headers.items()},
                          body)
        cls = type(self)
        cls.requests.append(request)
        cls.hits[self.path] = cls.hits.get(self.path, 0) + 1
        cls.seen_auth.append(self.headers.get("Authorization", ""))
        route = cls.routes.get(self.path) or cls.routes.get(request.path)
        count = sum(1 for r in cls.requests if r.path == request.path)
        if route is None:
            status, headers, answer = 404, {}, {"error": "no"}
        elif callable(route):
            status, headers, answer = route(request)
        elif isinstance(route, list):
            status, headers, answer = route[min(count, len(route)) - 1]
        else:
            status, headers, answer = route
        if answer == "hang":
            time.sleep(8)
            return
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(answer if isinstance(answer, bytes) else json.dumps(answer).encode())

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def log_message(self, *args: object) -> None:
        pass


PROVIDER_PATHS = {"OPENROUTER": "/api/v1", "CODEX": "/backend-api", "CLAUDE": "",
                  "COPILOT": "", "COPILOT_LOGIN": "", "ANTHROPIC_ADMIN": "", "OPENAI_ADMIN": "",
                  "CURSOR": ""}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, type[Fake]]]:
    handler = type("Handler", (Fake,), {"routes": {}, "hits": {}, "seen_auth": [],
                                        "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    for name, path in PROVIDER_PATHS.items():
        variable = "TOKLINE_COPILOT_LOGIN_URL" if name == "COPILOT_LOGIN" \
            else f"TOKLINE_{name}_BASE_URL"
        monkeypatch.setenv(variable, base + path)
    yield base, handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def ring() -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


# --- quota answers of every shape (remote_apis.md §1.2, §6), and logins to ask with ------

def iso(epoch: float) -> str:
    """An RFC 3339 time with microseconds and +00:00, as the Claude usage API writes it."""
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat()


def claude_legacy(five: float | None, seven: float | None, resets5: float | None,
                  resets7: float | None, **more: Any) -> dict[str, Any]:
    """The usage answer with only the top-level keys (the 2026-01 shape)."""
    def window(used: float | None, resets: float | None) -> dict[str, Any] | None:
        return None if used is None else {
            "utilization": used, "resets_at": None if resets is None else iso(resets)}

    return {"five_hour": window(five, resets5), "seven_day": window(seven, resets7),
            "seven_day_oauth_apps": None, "seven_day_opus": None, "iguana_necktie": None,
            "extra_usage": {"is_enabled": False, "monthly_limit": None, "used_credits": None,
                            "utilization": None}, **more}


def claude_limit(kind: str, percent: float | None, resets: float | None, active: bool = False,
                 model: str | None = None) -> dict[str, Any]:
    """One entry of the usage answer's ``limits[]``."""
    return {"kind": kind, "group": "session" if kind == "session" else "weekly",
            "percent": percent, "resets_at": None if resets is None else iso(resets),
            "scope": {"model": {"id": None, "display_name": model}, "surface": None}
            if model else None, "is_active": active}


def codex_bucket(used: float, seconds: float | None, resets: float) -> dict[str, Any]:
    """A ``rate_limit`` window of the Codex usage answer (``limit_window_seconds``)."""
    bucket: dict[str, Any] = {"used_percent": used, "reset_after_seconds": 100,
                              "reset_at": resets}
    if seconds is not None:
        bucket["limit_window_seconds"] = seconds
    return bucket


def claude_login(home: Any, scopes: tuple[str, ...] = ("user:profile",)) -> Any:
    """Claude Code's login file, as Claude Code writes it on Linux."""
    creds = home / ".claude" / ".credentials.json"
    creds.parent.mkdir(exist_ok=True)
    creds.write_text(json.dumps({"claudeAiOauth": {
        "accessToken": "sk-ant-oat01-claude-secret", "refreshToken": "sk-ant-ort01-x",
        "expiresAt": 1767396165210, "scopes": list(scopes), "subscriptionType": "max"}}))
    return creds


def codex_login(home: Any) -> Any:
    auth = home / ".codex" / "auth.json"
    auth.parent.mkdir(exist_ok=True)
    auth.write_text(json.dumps({"OPENAI_API_KEY": None, "tokens": {
        "access_token": "codex-access-token", "refresh_token": "r", "account_id": "acct"}}))
    return auth


def recording_program(directory: Any, name: str, body: str = "") -> Any:
    """A stand-in program ``name`` in ``directory`` (put it first on PATH) that appends
    its arguments, one call a line, to ``directory/name.calls``, then runs ``body``
    (sh).  Returns the calls file."""
    calls = directory / f"{name}.calls"
    program = directory / name
    program.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{calls}"\n{body}\n')
    program.chmod(0o755)
    return calls


# --- Cursor (formats.md §10.1, remote_apis.md §7b) -----------------------------------------

CURSOR_USER = "user_01JTESTUSER0000000000000"


def cursor_jwt(exp: float, sub: str = f"auth0|{CURSOR_USER}") -> str:
    """A JWT as Cursor's access token is shaped (the signature is not checked by anyone)."""
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return ".".join([part({"alg": "HS256", "typ": "JWT"}),
                     part({"sub": sub, "exp": int(exp), "iss": "https://authentication.cursor.sh",
                           "scope": "openid profile email offline_access"}),
                     "c2lnbmF0dXJlLW5vdC1jaGVja2Vk"])


def cursor_state_db(home: Any, token: str | None, encoding: str | None = None,
                    wal: bool = False) -> Any:
    """Cursor's ``state.vscdb`` (VS Code's ItemTable) with ``cursorAuth/accessToken``
    as TEXT, or as a BLOB in ``encoding`` (utf-8, utf-16-le); ``wal``: in WAL mode (its
    -wal and -shm gone once closed, as when Cursor is not running)."""
    path = home / ".config" / "Cursor" / "User" / "globalStorage" / "state.vscdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE,"
               " value BLOB)")
    items: list[tuple[str, object]] = [
        ("workbench.panel.width", "300"), ("cursorAuth/cachedSignUpType", "Auth_0"),
        ("cursorAuth/refreshToken", "cursor-refresh-token-never-sent")]
    if token is not None:
        items.append(("cursorAuth/accessToken",
                      token if encoding is None else token.encode(encoding)))
    db.executemany("INSERT INTO ItemTable VALUES (?, ?)", items)
    db.commit()
    db.close()
    return path


def cursor_event(ts_ms: int, model: str, tokens: tuple[int, int, int, int] | None,
                 cents: float | None, charged: float | None = None,
                 as_strings: bool = False) -> dict[str, Any]:
    """One row of ``usageEventsDisplay``: ``tokens`` (input, output, cache writes, cache
    reads), None for an event without token details; the time always a string, the
    counts and cents too with ``as_strings``."""
    def num(value: float) -> Any:
        return str(value) if as_strings else value

    event: dict[str, Any] = {
        "timestamp": str(ts_ms), "model": model, "kind": "USAGE_EVENT_KIND_INCLUDED_IN_PRO",
        "requestsCosts": 1, "usageBasedCosts": "$0.00", "isTokenBasedCall": tokens is not None,
        "owningUser": "123456", "owningTeam": "0", "cursorTokenFee": 0,
        "isChargeable": False, "isHeadless": False}
    if tokens is not None:
        event["tokenUsage"] = {"inputTokens": num(tokens[0]), "outputTokens": num(tokens[1]),
                               "cacheWriteTokens": num(tokens[2]),
                               "cacheReadTokens": num(tokens[3])}
        if cents is not None:
            event["tokenUsage"]["totalCents"] = num(cents)
    if charged is not None:
        event["chargedCents"] = num(charged)
    return event


class CursorEvents:
    """``POST /api/dashboard/get-filtered-usage-events`` as Cursor answers it: the
    events in [startDate, endDate] (epoch ms strings, both ends in), newest first,
    ``page``/``pageSize`` of the JSON body.  ``repeat[n]``: page n begins with the last
    rows of page n-1 again (a repeat at a page boundary; the total stays the true
    count).  ``grow``: an event that appears after the first page was served (the total
    changes while the client reads).  Refuses a request without the session cookie or
    Cursor's Origin."""

    def __init__(self, origin: str, cookie: str, events: list[dict[str, Any]]) -> None:
        self.origin = origin
        self.cookie = cookie
        self.events = events
        self.repeat: dict[int, int] = {}
        self.grow: dict[str, Any] | None = None
        self.count_as_string = False

    def __call__(self, request: Request) -> Answer:
        if request.headers.get("origin") != self.origin:
            return 403, {}, {"error": "Invalid origin for state-changing request"}
        if request.headers.get("cookie") != self.cookie:
            return 401, {}, {"error": "Not authenticated"}
        body = json.loads(request.body)
        start, end = int(body["startDate"]), int(body["endDate"])
        page, size = int(body["page"]), int(body["pageSize"])
        if page > 1 and self.grow is not None:
            self.events.append(self.grow)
            self.grow = None
        rows = sorted((e for e in self.events if start <= int(e["timestamp"]) <= end),
                      key=lambda e: -int(e["timestamp"]))
        offset = (page - 1) * size - sum(self.repeat.get(p, 0) for p in range(2, page + 1))
        total: Any = str(len(rows)) if self.count_as_string else len(rows)
        return 200, {}, {"totalUsageEventsCount": total,
                         "usageEventsDisplay": rows[max(0, offset):offset + size]}


def cursor_summary(kind: str, start: str = "2026-07-01T00:00:00.000Z",
                   end: str = "2099-01-01T00:00:00.000Z") -> dict[str, Any]:
    """``usage-summary`` answers: ``pro`` (remote_apis.md §7b), ``enterprise`` (a team
    member's personal cap in ``overall``, formats.md §10.1), ``team`` (only the pooled
    usage), ``unlimited`` (on-demand without a limit; numbers as strings)."""
    cycle = {"billingCycleStart": start, "billingCycleEnd": end}
    if kind == "pro":
        return {**cycle, "membershipType": "pro", "limitType": "user", "isUnlimited": False,
                "individualUsage": {
                    "plan": {"enabled": True, "used": 1500, "limit": 5000, "remaining": 3500,
                             "breakdown": {"included": 1400, "bonus": 100, "total": 1500},
                             "autoPercentUsed": 12.5, "apiPercentUsed": 7.5,
                             "totalPercentUsed": 30.0},
                    "onDemand": {"enabled": True, "used": 500, "limit": 10000,
                                 "remaining": 9500}},
                "teamUsage": {"onDemand": {"enabled": True, "used": 2000, "limit": 50000,
                                           "remaining": 48000}}}
    if kind == "enterprise":
        return {**cycle, "membershipType": "enterprise", "limitType": "team",
                "isUnlimited": False,
                "individualUsage": {
                    "onDemand": {"enabled": True, "used": 0, "limit": None, "remaining": None},
                    "overall": {"enabled": True, "used": 71, "limit": 10000,
                                "remaining": 9929}},
                "teamUsage": {"onDemand": {"enabled": True, "used": 0, "limit": 5000000,
                                           "remaining": 5000000},
                              "pooled": {"enabled": True, "used": 250000, "limit": 1000000,
                                         "remaining": 750000}}}
    if kind == "team":
        return {**cycle, "membershipType": "team", "limitType": "team", "isUnlimited": False,
                "individualUsage": {"onDemand": {"enabled": False}},
                "teamUsage": {"pooled": {"enabled": True, "used": 250000, "limit": 1000000,
                                         "remaining": 750000}}}
    if kind == "unlimited":
        return {**cycle, "membershipType": "pro", "limitType": "user", "isUnlimited": False,
                "individualUsage": {
                    "plan": {"enabled": True, "used": "2000", "limit": "2000",
                             "remaining": "0", "autoPercentUsed": "40",
                             "apiPercentUsed": "100"},
                    "onDemand": {"enabled": True, "used": "1234", "limit": None,
                                 "remaining": None}}}
    raise ValueError(kind)
