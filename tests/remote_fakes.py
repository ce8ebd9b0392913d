"""A fake provider server on 127.0.0.1 and an in-process keyring, for the remote tests; the
quota answers in each shape the providers send, the logins to ask with, and recording
stand-ins for the programs tokline runs (notify-send, security)."""

from __future__ import annotations

import datetime as dt
import http.server
import json
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
                  "COPILOT": "", "COPILOT_LOGIN": "", "ANTHROPIC_ADMIN": "", "OPENAI_ADMIN": ""}


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
