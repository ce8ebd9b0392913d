"""``tokline server``: the self-hosted team server, and its administration.

    tokline server [--database URL] [--host H] [--port P]   serve (migrating first)
    tokline server migrate [--database URL]                   bring the schema up to date
    tokline server add-user NAME [--admin]                    prints a one-time invite link
    tokline server token NAME [--label TEXT]                  prints an API token

The database is ``--database``, else TOKLINE_SERVER_DATABASE, else an SQLite file under
the XDG data directory.  Its dependencies are the ``server`` extra; nothing of them is
imported by any other command.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from tokline.errors import ToklineError

DEFAULT_PORT = 8787


def _need_extra() -> None:
    try:
        import alembic  # noqa: F401, PLC0415
        import sqlalchemy  # noqa: F401, PLC0415
        import starlette  # noqa: F401, PLC0415
        import uvicorn  # noqa: F401, PLC0415
    except ImportError as exc:
        raise ToklineError(f"tokline server needs its extra ({exc.name} is missing): "
                           "pip install 'tokline[server]'") from None


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline server")
    parser.add_argument("action", nargs="?", default="serve",
                        choices=["serve", "migrate", "add-user", "token"])
    parser.add_argument("name", nargs="?", help="the user (add-user, token)")
    parser.add_argument("--database", help="postgresql://… or sqlite:///… (default: "
                        "$TOKLINE_SERVER_DATABASE, else an SQLite file in the data dir)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--admin", action="store_true", help="add-user: an administrator")
    parser.add_argument("--label", default="api token", help="token: what it is for")
    parser.add_argument("--public-url", help="the server's address as people reach it, for "
                        "invite links (default: $TOKLINE_SERVER_URL or http://HOST:PORT)")
    args = parser.parse_args(argv)
    _need_extra()
    database = args.database or os.environ.get("TOKLINE_SERVER_DATABASE") or None
    if args.action == "serve":
        return _serve(database, args.host, args.port)
    from tokline.server.db import engine_for  # noqa: PLC0415
    from tokline.server.migrate import migrate  # noqa: PLC0415

    try:
        engine = engine_for(database)
        migrate(engine)
    except ValueError as exc:
        raise ToklineError(str(exc)) from None
    except Exception as exc:
        raise ToklineError(f"the server database cannot be used: {_reason(exc)}") from None
    if args.action == "migrate":
        print("the server database is at the newest schema")
        return 0
    if not args.name:
        parser.error(f"{args.action} needs a user name")
    from tokline.server import accounts  # noqa: PLC0415

    base = (args.public_url or os.environ.get("TOKLINE_SERVER_URL")
            or f"http://{args.host}:{args.port}").rstrip("/")
    from tokline.server.db import writer  # noqa: PLC0415

    with writer(engine).begin() as conn:
        try:
            if args.action == "add-user":
                user, invite = accounts.add_user(conn, args.name, args.admin)
                print(f"{base}/invite/{invite}")
                print(f"(one-time link for {user.name}, valid 7 days)", file=sys.stderr)
                return 0
            found = accounts.by_name(conn, args.name)
            if found is None:
                raise ToklineError(f"no user {args.name}")
            print(accounts.new_token(conn, found, args.label))
        except accounts.AccountError as exc:
            raise ToklineError(str(exc)) from None
    return 0


def _reason(exc: BaseException) -> str:
    # the driver's first line, never the URL (it may hold a password)
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _serve(database: str | None, host: str, port: int) -> int:
    import uvicorn  # noqa: PLC0415

    from tokline.server.app import create_app  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        app = create_app(database)
    except ValueError as exc:
        raise ToklineError(str(exc)) from None
    except Exception as exc:
        raise ToklineError(f"the server database cannot be used: {_reason(exc)}") from None
    print(f"tokline server on http://{host}:{port}", file=sys.stderr)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", proxy_headers=True,
                            timeout_graceful_shutdown=20)
    _server_class()(config).run()
    return 0


def _server_class() -> type[Any]:
    import uvicorn  # noqa: PLC0415

    class Server(uvicorn.Server):
        """uvicorn's server, but a stop asked for by SIGTERM or SIGINT is a clean exit:
        uvicorn raises the signal again once it has shut down, so the process would end
        by it (exit 143) though every request in flight was answered."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    captured = getattr(self, "_captured_signals", None)
                    if isinstance(captured, list):
                        captured.clear()

    return Server
