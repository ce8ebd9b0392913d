"""The team server's ASGI application (Starlette): JSON API, sync endpoints, web pages.

Why these libraries: Starlette is a small, well-kept ASGI toolkit (routing, requests,
responses, Jinja2 templates) without a framework's weight; SQLAlchemy Core gives one
query layer over PostgreSQL (psycopg 3) and the embedded SQLite default, with its
connection pool; Alembic versions the schema; uvicorn serves it.

Security: API calls authenticate with ``Authorization: Bearer <token>``; pages with a
session cookie (HttpOnly, SameSite=Lax, Secure over https) and every form carries a CSRF
token checked against the session's (before sign-in: a double-submit cookie).  Login,
device-code and push endpoints are rate limited per client address; request bodies are
size-limited.  Nothing is loaded from elsewhere (a Content-Security-Policy says so).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hmac
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from tokline.server import accounts, ingest, queries
from tokline.server.accounts import AccountError, User
from tokline.server.db import engine_for, writer
from tokline.server.merger import Merger
from tokline.server.ratelimit import RateLimiter

log = logging.getLogger("tokline.server")


def _templates() -> Jinja2Templates:
    """The pages' Jinja2 environment: autoescaping on for every template whatever its
    name (select_autoescape goes by the file's extension), an undefined name an error
    (the page tests catch a typo), and the number formats every page shares."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    env.filters.update(usd=_usd, count=_count, when=_when, pct=_pct)
    return Jinja2Templates(env=env)


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def _count(value: int) -> str:
    return f"{value:,}"


def _when(ms: int | None) -> str:
    """An epoch-millisecond moment as UTC minutes ("never" for none)."""
    if not ms:
        return "never"
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _pct(part: float, whole: float) -> str:
    """``part`` as a percentage of ``whole`` with one decimal (a label, a CSS width)."""
    return f"{100 * part / whole:.1f}" if whole > 0 else "0"


TEMPLATES = _templates()
SESSION_COOKIE = "tl_session"
PRE_CSRF_COOKIE = "tl_csrf"
MAX_FORM = 16 << 10  # bytes of a form post
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class Server:
    """What the handlers share: the database, the price book, the rate limiters."""

    def __init__(self, engine: Engine) -> None:
        from tokline.accounting.pricing import price_book  # noqa: PLC0415

        self.engine = engine  # reads
        self.writer = writer(engine)  # transactions that write
        self.cost_of = price_book().cost_of
        self.logins = RateLimiter(per_minute=10, burst=10)
        self.pushes = RateLimiter(per_minute=600, burst=120)
        self.device_codes = RateLimiter(per_minute=10, burst=10)
        self.merger = Merger(engine, self.cost_of)


def create_app(database: str | None = None, migrate_first: bool = True) -> Starlette:
    engine = engine_for(database)
    if migrate_first:
        from tokline.server.migrate import migrate  # noqa: PLC0415

        migrate(engine)
    server = Server(engine)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        log.info(json.dumps({"event": "start"}))
        # What the imports and the start made lives as long as the process: kept out of
        # the collector's sight, the full collections a push's thousands of rows set off
        # stop walking it (pauses of 40-60 ms in a push otherwise).
        gc.collect()
        gc.freeze()
        server.merger.start()
        yield
        server.merger.stop()
        engine.dispose()  # graceful: requests in flight are done when uvicorn gets here
        log.info(json.dumps({"event": "stop"}))

    def route(path: str, fn: Callable[[Server, Request], Response],
              methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            # The body is read here (bounded by _Guard), the handler runs in a worker
            # thread: its database calls block, and must not stall every other request.
            request.state.body = await request.body()
            return await run_in_threadpool(fn, server, request)
        return Route(path, endpoint, methods=methods)

    app = Starlette(routes=[
        route("/healthz", healthz, ["GET"]),
        route("/api/v1/me", api_me, ["GET"]),
        route("/api/v1/leaderboard", api_leaderboard, ["GET"]),
        route("/api/v1/users/{name}", api_user, ["GET"]),
        route("/api/v1/team", api_team, ["GET"]),
        route("/api/v1/sync/segments", api_segments, ["GET"]),
        route("/api/v1/sync/segments/{device}/{file}", api_segment, ["GET", "PUT"]),
        route("/api/v1/device/code", api_device_code, ["POST"]),
        route("/api/v1/device/token", api_device_token, ["POST"]),
        route("/", page_leaderboard, ["GET"]),
        route("/u/{name}", page_profile, ["GET"]),
        route("/team", page_team, ["GET"]),
        route("/login", page_login, ["GET", "POST"]),
        route("/logout", page_logout, ["POST"]),
        route("/invite/{token}", page_invite, ["GET", "POST"]),
        route("/device", page_device, ["GET", "POST"]),
        route("/settings", page_settings, ["GET", "POST"]),
    ], lifespan=lifespan)
    app.add_middleware(_Guard)
    app.state.server = server
    return app


class _TooLarge(Exception):
    pass


def body_limit(method: str, path: str) -> int:
    """Bytes a request's body may have: a segment on its PUT, a small form elsewhere."""
    if method == "PUT" and path.startswith("/api/v1/sync/segments/"):
        return ingest.MAX_PUSH
    return MAX_FORM


class _Guard:
    """Security headers, bounded request bodies, a structured log line per request, and
    no traceback to a client."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]
        limit = body_limit(scope.get("method", ""), scope.get("path", ""))
        received = [0]

        async def bounded_receive() -> Any:
            # uvicorn reads any body it is sent: a request past its limit stops here,
            # whether its Content-Length said so or not (chunked)
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > limit:
                    raise _TooLarge
            return message

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", CSP.encode()),
                            (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"same-origin"),
                            (b"x-frame-options", b"DENY")]
                message = {**message, "headers": headers}
            await send(message)

        declared = dict(scope.get("headers") or []).get(b"content-length")
        try:
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                raise _TooLarge
            await self.app(scope, bounded_receive, send_with_headers)
        except _TooLarge:
            if not status[0]:
                await _error(413, f"the request is larger than {_size(limit)}")(
                    scope, receive, send_with_headers)
        except Exception:
            log.exception(json.dumps({"event": "error", "path": scope.get("path")}))
            if not status[0]:  # else the client sees the answer cut short
                await JSONResponse({"error": "internal error"}, status_code=500)(
                    scope, receive, send_with_headers)
        finally:
            log.info(json.dumps({
                "event": "request", "method": scope.get("method"),
                "path": logged_path(scope.get("path", "")),
                "status": status[0], "ms": round(1000 * (time.perf_counter() - started), 1),
                "client": (scope.get("client") or ["?"])[0]}))


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"


# --- who is asking --------------------------------------------------------------------

def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def bearer_user(server: Server, request: Request) -> User | None:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return None
    # a read; the write of the token's last use (once a minute) apart, so an API read
    # does not wait for SQLite's write lock
    with server.engine.connect() as conn:
        found = accounts.token_owner(conn, auth[7:].strip())
    if found is None:
        return None
    if found[1] is not None:
        with server.writer.begin() as conn:
            accounts.note_token_use(conn, found[1])
    return found[0]


def session_user(server: Server, request: Request) -> tuple[User, str] | None:
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        return None
    with server.engine.connect() as conn:
        return accounts.session(conn, sid)


def viewer(server: Server, request: Request) -> User | None:
    found = bearer_user(server, request)
    if found is not None:
        return found
    signed_in = session_user(server, request)
    return signed_in[0] if signed_in else None


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def _limited(seconds: float) -> JSONResponse:
    return JSONResponse({"error": "too many requests; slow down"}, status_code=429,
                        headers={"retry-after": str(max(1, round(seconds)))})


# --- JSON API -------------------------------------------------------------------------

def healthz(server: Server, request: Request) -> Response:
    try:
        with server.engine.connect() as conn:
            waiting = ingest.backlog(conn)
    except Exception:
        return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
    return JSONResponse({"ok": True, "database": server.engine.dialect.name,
                         "merge_backlog": waiting})


def _board_args(request: Request) -> tuple[str, str, str | None]:
    period = request.query_params.get("period", "week")
    metric = request.query_params.get("metric", "cost")
    model = request.query_params.get("model") or None
    if period not in queries.PERIODS or metric not in queries.METRICS:
        raise ValueError("period is day, week, month or all; metric is cost or tokens")
    if model is not None and (len(model) > 200 or not model.isprintable()):
        raise ValueError("not a model name")
    return period, metric, model


def api_me(server: Server, request: Request) -> Response:
    who = bearer_user(server, request)
    if who is None:
        return _error(401, "a bearer token is needed")
    return JSONResponse({"user": who.name, "admin": who.is_admin,
                         "visibility": who.visibility})


def api_leaderboard(server: Server, request: Request) -> Response:
    try:
        period, metric, model = _board_args(request)
    except ValueError as exc:
        return _error(400, str(exc))
    who = viewer(server, request)
    with server.engine.connect() as conn:
        return JSONResponse(queries.leaderboard(conn, who, period, metric, model))


def api_user(server: Server, request: Request) -> Response:
    who = viewer(server, request)
    with server.engine.connect() as conn:
        found = queries.profile(conn, who, request.path_params["name"])
    return JSONResponse(found) if found is not None else _error(404, "no such user")


def api_team(server: Server, request: Request) -> Response:
    who = viewer(server, request)
    if who is None:
        return _error(401, "sign in (a bearer token) to see the team")
    with server.engine.connect() as conn:
        return JSONResponse(queries.team(conn, who))


def api_segments(server: Server, request: Request) -> Response:
    who = bearer_user(server, request)
    if who is None:
        return _error(401, "a bearer token is needed (tokline login URL)")
    with server.engine.connect() as conn:
        return JSONResponse({"names": ingest.segment_names(conn, who.id)})


def api_segment(server: Server, request: Request) -> Response:
    who = bearer_user(server, request)
    if who is None:
        return _error(401, "a bearer token is needed (tokline login URL)")
    name = f"{request.path_params['device']}/{request.path_params['file']}"
    if request.method == "GET":
        with server.engine.connect() as conn:
            data = ingest.segment_data(conn, who.id, name)
        if data is None:
            return _error(404, "no such segment")
        return Response(data, media_type="application/gzip")
    wait = server.pushes.take(f"{who.id}:{_client(request)}")
    if wait:
        return _limited(wait)
    body: bytes = request.state.body  # at most MAX_PUSH (_Guard)
    started = time.perf_counter()
    try:
        segment = ingest.check(name, body)  # before a connection is taken: it is slow
        checked = time.perf_counter()
        with server.writer.begin() as conn:
            result = ingest.accept(conn, who, name, body, segment)
    except ingest.PushError as exc:
        return _error(exc.status, str(exc))
    if result["status"] == "stored":
        server.merger.poke()
    # where a push's time goes (the request line has the whole): for operations
    log.info(json.dumps({"event": "push", "user": who.name, "segment": name,
                         "status": result["status"], "rows": result["rows"],
                         "bytes": len(body), "check_ms": round(1000 * (checked - started), 1),
                         "store_ms": round(1000 * (time.perf_counter() - checked), 1)}))
    return JSONResponse(result, status_code=201 if result["status"] == "stored" else 200)


def _payload(request: Request) -> dict[str, Any]:
    """A small JSON or form body, as a dict ({} when it is neither)."""
    raw: bytes = request.state.body  # at most MAX_FORM (_Guard)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            found = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}
    from urllib.parse import parse_qs  # noqa: PLC0415

    return {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}


def api_device_code(server: Server, request: Request) -> Response:
    wait = server.device_codes.take(_client(request))
    if wait:
        return _limited(wait)
    body = _payload(request)
    label = str(body.get("label") or "a device")[:128]
    with server.writer.begin() as conn:
        found = accounts.new_device_code(conn, label)
    base = str(request.base_url).rstrip("/")
    return JSONResponse({**found, "verification_uri": f"{base}/device",
                         "verification_uri_complete": f"{base}/device?code={found['user_code']}"})


def api_device_token(server: Server, request: Request) -> Response:
    body = _payload(request)
    code = body.get("device_code")
    if not isinstance(code, str) or not code:
        return _error(400, "device_code is missing")
    with server.writer.begin() as conn:
        found = accounts.poll_device(conn, code)
    return JSONResponse(found, status_code=400 if "error" in found else 200)


# --- pages ----------------------------------------------------------------------------

def _page(request: Request, name: str, context: dict[str, Any], status: int = 200,
          user: User | None = None, csrf: str | None = None) -> Response:
    # base: this server's address as the browser reached it, for the `tokline login`
    # instructions on the pages (escaped like everything else)
    response = TEMPLATES.TemplateResponse(request, name, {
        "user": user, "csrf": csrf, "base": str(request.base_url).rstrip("/"), **context},
        status_code=status)
    return response


def _message(request: Request, status: int, title: str, text: str,
             signed: tuple[User, str] | None = None) -> Response:
    """A refusal or notice as a page of the site (header, a way back), not a bare line."""
    return _page(request, "message.html", {"title": title, "text": text}, status=status,
                 user=signed[0] if signed else None, csrf=signed[1] if signed else None)


def _expired(request: Request, signed: tuple[User, str] | None = None) -> Response:
    return _message(request, 403, "The form expired",
                    "Go back, reload the page and try again.", signed)


def _set_cookie(request: Request, response: Response, name: str, value: str,
                max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")


def _csrf_ok(given: object, expected: str | None) -> bool:
    return isinstance(given, str) and bool(expected) and hmac.compare_digest(
        given.encode(), str(expected).encode())


def page_leaderboard(server: Server, request: Request) -> Response:
    signed = session_user(server, request)
    who = signed[0] if signed else None
    try:
        period, metric, model = _board_args(request)
    except ValueError as exc:
        return _message(request, 400, "Not a leaderboard", str(exc), signed)
    with server.engine.connect() as conn:
        board = queries.leaderboard(conn, who, period, metric, model)
        names = queries.models(conn, who) if who is not None else []
    return _page(request, "leaderboard.html", {"board": board, "models": names,
                                               "periods": queries.PERIODS},
                 user=who, csrf=signed[1] if signed else None)


def page_profile(server: Server, request: Request) -> Response:
    signed = session_user(server, request)
    who = signed[0] if signed else None
    with server.engine.connect() as conn:
        found = queries.profile(conn, who, request.path_params["name"])
    if found is None:
        return _page(request, "missing.html", {}, status=404, user=who,
                     csrf=signed[1] if signed else None)
    from tokline.server.pictures import contribution, daily_bars  # noqa: PLC0415

    return _page(request, "profile.html", {
        "p": found, "graph": contribution(found),
        "bars": daily_bars(found["days"], found["until"]),
        "own": who is not None and who.name == found["user"]},
        user=who, csrf=signed[1] if signed else None)


def page_team(server: Server, request: Request) -> Response:
    signed = session_user(server, request)
    if signed is None:
        return RedirectResponse("/login?next=/team", status_code=303)
    with server.engine.connect() as conn:
        found = queries.team(conn, signed[0])
    from tokline.server.pictures import daily_bars  # noqa: PLC0415

    bars = daily_bars(found["days"], found["until"], label="Team cost per day")
    return _page(request, "team.html", {"t": found, "bars": bars}, user=signed[0],
                 csrf=signed[1])


def _safe_next(target: object) -> str:
    """Only a path of this site (no scheme, no host, no //): nothing redirects elsewhere."""
    if isinstance(target, str) and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target and len(target) < 500:
        return target
    return "/"


def page_login(server: Server, request: Request) -> Response:
    if request.method == "GET":
        token = secrets.token_urlsafe(32)
        response = _page(request, "login.html", {"next": _safe_next(
            request.query_params.get("next")), "error": None, "name": ""}, csrf=token)
        _set_cookie(request, response, PRE_CSRF_COOKIE, token, 3600)
        return response
    form = _payload(request)
    if not _csrf_ok(form.get("csrf"), request.cookies.get(PRE_CSRF_COOKIE)):
        return _expired(request)
    wait = server.logins.take(_client(request))
    if wait:
        return HTMLResponse("<p>Too many sign-in attempts; wait a minute.</p>", status_code=429,
                            headers={"retry-after": str(round(wait))})
    with server.writer.begin() as conn:
        user = accounts.login(conn, str(form.get("name", ""))[:64],
                              str(form.get("password", ""))[:1024])
        if user is None:
            token = secrets.token_urlsafe(32)
            response = _page(request, "login.html", {
                "next": _safe_next(form.get("next")), "name": str(form.get("name", ""))[:64],
                "error": "Wrong name or password."}, status=401, csrf=token)
            _set_cookie(request, response, PRE_CSRF_COOKIE, token, 3600)
            return response
        sid, _csrf = accounts.new_session(conn, user)
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, sid, accounts.SESSION_TTL_MS // 1000)
    response.delete_cookie(PRE_CSRF_COOKIE, path="/")
    return response


def page_logout(server: Server, request: Request) -> Response:
    signed = session_user(server, request)
    form = _payload(request)
    if signed is None or not _csrf_ok(form.get("csrf"), signed[1]):
        return HTMLResponse("<p>Not signed in, or the form expired.</p>", status_code=403)
    with server.writer.begin() as conn:
        accounts.end_session(conn, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def page_invite(server: Server, request: Request) -> Response:
    token = request.path_params["token"]
    if request.method == "GET":
        with server.engine.connect() as conn:
            name = accounts.invite_name(conn, token)
        pre = secrets.token_urlsafe(32)
        response = _page(request, "invite.html", {"valid": bool(name), "name": name,
                                                  "error": None},
                         status=200 if name else 404, csrf=pre)
        _set_cookie(request, response, PRE_CSRF_COOKIE, pre, 3600)
        return response
    form = _payload(request)
    if not _csrf_ok(form.get("csrf"), request.cookies.get(PRE_CSRF_COOKIE)):
        return _expired(request)
    password = str(form.get("password", ""))[:1024]
    if password != str(form.get("again", ""))[:1024]:
        return _page(request, "invite.html", {"valid": True,
                                              "error": "The two passwords differ."},
                     status=400, csrf=request.cookies.get(PRE_CSRF_COOKIE))
    try:
        with server.writer.begin() as conn:
            user = accounts.take_invite(conn, token, password)
            sid, _csrf = accounts.new_session(conn, user)
    except AccountError as exc:
        return _page(request, "invite.html", {"valid": True, "error": str(exc)}, status=400,
                     csrf=request.cookies.get(PRE_CSRF_COOKIE))
    response = RedirectResponse(f"/u/{user.name}", status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, sid, accounts.SESSION_TTL_MS // 1000)
    return response


def page_device(server: Server, request: Request) -> Response:
    signed = session_user(server, request)
    if signed is None:
        code = request.query_params.get("code", "")
        back = "/device" + (f"?code={accounts.normal_user_code(code)}" if code else "")
        return RedirectResponse(f"/login?next={back}", status_code=303)
    who, csrf = signed
    if request.method == "GET":
        return _page(request, "device.html", {
            "code": accounts.normal_user_code(request.query_params.get("code", ""))[:16],
            "done": None}, user=who, csrf=csrf)
    form = _payload(request)
    if not _csrf_ok(form.get("csrf"), csrf):
        return _expired(request, signed)
    allow = form.get("action") == "approve"
    with server.writer.begin() as conn:
        ok = accounts.approve_device(conn, who, str(form.get("code", ""))[:32], allow)
    done = ("approved" if allow else "denied") if ok else "unknown"
    return _page(request, "device.html", {"code": "", "done": done},
                 status=200 if ok else 400, user=who, csrf=csrf)


def page_settings(server: Server, request: Request) -> Response:
    signed = session_user(server, request)
    if signed is None:
        return RedirectResponse("/login?next=/settings", status_code=303)
    who, csrf = signed
    saved = False
    if request.method == "POST":
        form = _payload(request)
        if not _csrf_ok(form.get("csrf"), csrf):
            return _expired(request, signed)
        try:
            with server.writer.begin() as conn:
                accounts.set_visibility(conn, who, str(form.get("visibility")),
                                        form.get("show_projects") == "on")
                refreshed = accounts.by_name(conn, who.name)
        except AccountError as exc:
            return _message(request, 400, "Not saved", str(exc), signed)
        assert refreshed is not None
        who, saved = refreshed, True
    return _page(request, "settings.html", {"saved": saved,
                                            "choices": accounts.VISIBILITY},
                 user=who, csrf=csrf)


def logged_path(path: str) -> str:
    """A request's path as the log keeps it: an invite link's token is a password until
    it is used, so it is not written where log readers (or a log shipper) would see it."""
    if path.startswith("/invite/"):
        return "/invite/…"
    return path
