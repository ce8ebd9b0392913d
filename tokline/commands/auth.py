"""``tokline auth login|status|logout PROVIDER``: keys for remote quota sources.

Keys go to the OS keyring (or an env var overrides them); Codex's plan usage reuses the
login Codex keeps, read-only.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from tokline import remote, secrets
from tokline.errors import ToklineError

KEYED = ("openrouter",)  # providers whose key tokline keeps
EXTERNAL = {"codex": "uses Codex's own login (read-only): "}


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline auth")
    sub = parser.add_subparsers(dest="action", required=True)
    login = sub.add_parser("login", help="store a provider's key (asked without echo)")
    login.add_argument("provider", choices=KEYED)
    login.add_argument("--account", default="default")
    logout = sub.add_parser("logout", help="forget a provider's key")
    logout.add_argument("provider", choices=KEYED)
    logout.add_argument("--account", default="default")
    sub.add_parser("status", help="every provider: configured?, where, last fetch and error")
    args = parser.parse_args(argv)
    if args.action == "login":
        key = getpass.getpass(f"{args.provider} key (not shown): ").strip() \
            if sys.stdin.isatty() else sys.stdin.readline().strip()
        if not key:
            raise ToklineError("no key given; nothing stored")
        where = secrets.store(args.provider, args.account, key)
        remote.mark_due()
        print(f"{args.provider} ({args.account}): key stored in the {where.split(' ')[0]}")
        return 0
    if args.action == "logout":
        removed = secrets.delete(args.provider, args.account)
        print(f"{args.provider} ({args.account}): " + ("key removed" if removed else "no key"))
        return 0
    state = remote.load_state()
    for provider in remote.PROVIDERS:
        entry = state.get(f"{provider}:default") or {}
        if provider in EXTERNAL:
            from tokline.remote.codex_usage import auth_file  # noqa: PLC0415

            found = remote.PROVIDERS[provider].has_credentials()
            where = EXTERNAL[provider] + auth_file() + ("" if found else " (not found)")
        else:
            where = secrets.get(provider)[1]
        fetched = entry.get("fetched_at")
        last = f"last fetch {_ago(fetched)}" if fetched else "never fetched"
        error = f"; last error: {entry['error']}" if entry.get("error") else ""
        print(f"{provider:<11} {where}; {last}{error}")
    return 0


def _ago(epoch: float) -> str:
    import time  # noqa: PLC0415

    seconds = int(time.time() - epoch)
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"
