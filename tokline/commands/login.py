"""``tokline login URL [--token T]`` and ``tokline logout URL``: this device and a team
server.

``login`` signs in by device code (GitHub's device flow, RFC 8628): it shows a code and
the page to approve it on, polls at the server's interval (longer after ``slow_down``)
until approved, denied or expired, keeps the token in the OS keyring (as ``tokline auth``
does; never in a file of tokline's unless TOKLINE_PLAINTEXT_SECRETS is set) and makes the
server this device's ``[sync] target``.  ``--token T`` (or ``--token -`` for stdin) is for
headless machines and CI runners, with a token from ``tokline server token NAME``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from tokline.errors import ToklineError
from tokline.prompt.safetext import clean
from tokline.remote import credentials
from tokline.sync.targets import TOKEN_PROVIDER, server_base

TIMEOUT_S = 30.0


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"tokline {name}")
    parser.add_argument("url", help="the server, e.g. https://tokline.example.com")
    if name == "login":
        parser.add_argument("--token", help="an API token (`-`: read it from stdin) instead "
                            "of the device-code sign-in")
    args = parser.parse_args(argv)
    try:
        base = server_base(args.url)
    except ValueError as exc:
        raise ToklineError(str(exc)) from None
    if name == "logout":
        removed = credentials.delete(TOKEN_PROVIDER, base)
        print(f"{base}: " + ("signed out (token removed)" if removed else "no token kept"))
        return 0
    token = args.token
    if token == "-":
        token = sys.stdin.readline().strip()
    if token:
        user = _whoami(base, token)
    else:
        token, user = _device_flow(base)
    where = credentials.store(TOKEN_PROVIDER, base, token)
    set_sync_target(base)
    print(f"signed in to {base} as {clean(user, 64)} (token kept in the {where.split()[0]}); "
          "`tokline sync` now exchanges with it")
    return 0


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json",
                                              "user-agent": "tokline-login"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            return answer.status, _json(answer.read(65536))
    except urllib.error.HTTPError as exc:
        return exc.code, _json(exc.read(65536))
    except (urllib.error.URLError, OSError) as exc:
        raise ToklineError(f"{url} cannot be reached ({getattr(exc, 'reason', exc)})") \
            from None


def _json(raw: bytes) -> dict[str, Any]:
    try:
        found = json.loads(raw)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _whoami(base: str, token: str) -> str:
    request = urllib.request.Request(base + "/api/v1/me", headers={
        "authorization": f"Bearer {token}", "user-agent": "tokline-login"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            found = _json(answer.read(65536))
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise ToklineError(f"{base} does not accept this token") from None
        raise ToklineError(f"{base}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ToklineError(f"{base} cannot be reached ({getattr(exc, 'reason', exc)})") \
            from None
    return str(found.get("user") or "?")


def _device_flow(base: str) -> tuple[str, str]:
    status, start = _post(base + "/api/v1/device/code", {"label": socket.gethostname()})
    if status != 200 or not isinstance(start.get("device_code"), str):
        raise ToklineError(f"{base} did not start a sign-in (HTTP {status}); is it a tokline "
                           "server?")
    code = clean(str(start.get("user_code")), 16)
    page = clean(str(start.get("verification_uri")), 300)
    print(f"Open {page} and enter the code {code}", file=sys.stderr)
    # the server's pace, within reason (a number it sends is not a reason to spin)
    interval = _seconds(start.get("interval"), 5, 1, 60)
    deadline = time.monotonic() + _seconds(start.get("expires_in"), 900, 10, 3600)
    while time.monotonic() < deadline:
        time.sleep(interval)
        status, answer = _post(base + "/api/v1/device/token",
                               {"device_code": start["device_code"]})
        if status == 200 and isinstance(answer.get("access_token"), str):
            return answer["access_token"], str(answer.get("user") or "?")
        error = answer.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval = _seconds(answer.get("interval"), interval + 5, interval, 120)
            continue
        if error == "access_denied":
            raise ToklineError("the sign-in was denied in the browser")
        if error == "expired_token":
            break
        raise ToklineError(f"{base} refused the sign-in ({clean(str(error), 80)})")
    raise ToklineError("the code expired before it was approved; run tokline login again")


def _seconds(value: object, default: float, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return default
    return min(high, max(low, float(value)))


def set_sync_target(base: str) -> None:
    """Make ``base`` the ``[sync] target`` of config.toml, keeping everything else."""
    from tokline.prompt.statefiles import config_path, write_private  # noqa: PLC0415

    path = config_path()
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        lines = []
    value = f"target = {json.dumps(base)}"
    section = None
    start = -1
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
            if stripped == "[sync]":
                start = number
            continue
        if section == "[sync]" and stripped.split("=", 1)[0].strip() == "target":
            lines[number] = value
            break
    else:
        if start >= 0:
            lines.insert(start + 1, value)
        else:
            lines += ["", "[sync]", value]
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    write_private(path, ("\n".join(lines) + "\n").encode())
