"""``tokline auth login|status|logout PROVIDER``: credentials for remote quota sources.

Keys go to the OS keyring (an env var overrides them), one entry per provider account.
Copilot logs in through GitHub's device flow (or takes a token on stdin); Claude and
Codex reuse the logins their own CLIs keep, read-only, and so does Cursor unless given a
session token.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
import time

from tokline import remote
from tokline.errors import ToklineError
from tokline.remote import credentials as secrets
from tokline.remote import device_flow
from tokline.remote.http import RemoteError

ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}\Z")


def _account(text: str) -> str:
    if not ACCOUNT.match(text):
        raise argparse.ArgumentTypeError(
            "an account name is letters, digits, '-' and '_' (up to 32)")
    return text


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline auth")
    sub = parser.add_subparsers(dest="action", required=True)
    login = sub.add_parser("login", help="store a provider's key (asked without echo)")
    login.add_argument("provider", choices=sorted(remote.PROVIDERS))
    login.add_argument("--account", type=_account, default="default",
                       help="a name for a second key of the same provider")
    login.add_argument("--with-token", action="store_true",
                       help="copilot: read a GitHub token from stdin (e.g. `gh auth token`)")
    logout = sub.add_parser("logout", help="forget a provider's key")
    logout.add_argument("provider", choices=sorted(remote.KEYED))
    logout.add_argument("--account", type=_account, default="default")
    sub.add_parser("status", help="every provider: configured?, where, last fetch and error")
    args = parser.parse_args(argv)
    if args.action == "login":
        return _login(args.provider, args.account, args.with_token)
    if args.action == "logout":
        removed = secrets.delete(args.provider, args.account)
        remote.remember_account(args.provider, args.account, present=False)
        remote.mark_due()
        print(f"{args.provider} ({args.account}): " + ("key removed" if removed else "no key"))
        return 0
    return _status()


def _login(provider: str, account: str, with_token: bool) -> int:
    if provider not in remote.KEYED:  # Claude, Codex: their own CLI's login
        module = remote.PROVIDERS[provider]
        where = _external_where(provider)
        if module.has_credentials():
            remote.mark_due()
            print(f"{provider}: nothing to store; tokline reads {where} (read-only)")
            return 0
        raise ToklineError(f"{provider}: no login found in {where}; run `{provider}` and "
                           "log in there, tokline then reads it")
    if provider == "copilot" and not with_token:
        try:
            secret = device_flow.login(_login_url(), _show_code)
        except RemoteError as exc:
            raise ToklineError(str(exc)) from None
    elif sys.stdin.isatty() and not with_token:
        prompt = getattr(remote.PROVIDERS[provider], "LOGIN_PROMPT",
                         f"{provider} key (not shown): ")
        secret = getpass.getpass(prompt).strip()
    else:
        secret = sys.stdin.readline().strip()
    if not secret:
        raise ToklineError("no key given; nothing stored")
    check = getattr(remote.PROVIDERS[provider], "check_key", None)
    problem = check(secret) if check is not None else None
    if problem:
        raise ToklineError(problem)
    prefix = getattr(remote.PROVIDERS[provider], "KEY_PREFIX", None)
    if prefix and not secret.startswith(prefix):
        print(f"tokline: warning: {provider} keys start with {prefix}; this one does not, "
              "and the API will likely refuse it", file=sys.stderr)
    where = secrets.store(provider, account, secret)
    remote.remember_account(provider, account, present=True)
    remote.mark_due()
    print(f"{provider} ({account}): stored in the {where.split(' ')[0]}")
    return 0


def _login_url() -> str:
    from tokline.config import load  # noqa: PLC0415

    return remote.env_base_url("copilot", "LOGIN_URL") \
        or (load().remote.get("copilot") or {}).get("login_url") or device_flow.DEFAULT_BASE


def _show_code(code: str, url: str) -> None:
    print(f"Open {url} and enter the code {code}\nWaiting for GitHub…", flush=True)


def _external_where(provider: str) -> str:
    if provider == "claude":
        from tokline.remote.claude_usage import credentials_files  # noqa: PLC0415

        return " or ".join(credentials_files())
    if provider == "cursor":
        from tokline.sources.cursor import state_db  # noqa: PLC0415

        return state_db()
    from tokline.remote.codex_usage import auth_file  # noqa: PLC0415

    return auth_file()


def _status() -> int:
    state = remote.load_state()
    for provider in remote.PROVIDERS:
        for account in remote.accounts_of(provider):
            label = provider if account == "default" else f"{provider} ({account})"
            entry = state.get(f"{provider}:{account}") or {}
            if provider not in remote.KEYED:
                found = remote.has_credentials(provider, account)
                where = ("reads " if found else "not configured: no login in ") \
                    + _external_where(provider)
            else:
                try:
                    source = secrets.get(provider, account)[1]
                except ToklineError as exc:
                    source = f"keyring unavailable ({exc})"
                if source == "none":
                    if account != "default":
                        continue
                    source = f"not configured (tokline auth login {provider})"
                    if hasattr(remote.PROVIDERS[provider], "has_credentials"):
                        # a login the tool keeps itself (Cursor's), read while none is given
                        where = _external_where(provider)
                        source = f"reads {where} (read-only)" \
                            if remote.has_credentials(provider, account) else \
                            f"not configured: no login in {where} (tokline auth login {provider})"
                where = source
            fetched = entry.get("fetched_at")
            last = f"last fetch {_ago(fetched)}" if fetched else "never fetched"
            error = f"; last error: {entry['error']}" if entry.get("error") else ""
            print(f"{label:<15} {where}; {last}{error}")
    return 0


def _ago(epoch: float) -> str:
    seconds = int(time.time() - epoch)
    if seconds < 120:
        return f"{seconds}s ago"
    return f"{seconds // 60}m ago" if seconds < 7200 else f"{seconds // 3600}h ago"
