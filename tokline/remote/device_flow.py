"""GitHub's OAuth device flow (remote_apis.md §5a) for ``tokline auth login copilot``.

GitHub answers the polling requests with HTTP 200 and an ``error`` key, so the state
machine branches on that key: ``authorization_pending`` keeps polling, ``slow_down`` adds
five seconds to the interval for good, ``expired_token`` and ``access_denied`` stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tokline.remote.http import RemoteError, get_json

CLIENT_ID = "Iv1.b507a08c87ecfe98"  # the client id Copilot's editor plugins use
SCOPE = "read:user"
DEFAULT_BASE = "https://github.com"
GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PROVIDER = "GitHub login"
RELOGIN = "run `tokline auth login copilot` again"


class DeviceFlowError(RemoteError):
    """The login ended without a token; the message says why and what to do."""


def _post(base: str, path: str, form: dict[str, str]) -> dict[str, Any]:
    answer = get_json(base.rstrip("/") + path, {}, PROVIDER, RELOGIN, form=form)
    if not isinstance(answer, dict):
        raise DeviceFlowError(f"{PROVIDER}: unexpected answer from {path}")
    return answer


def login(base: str, show: Callable[[str, str], None],
          sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> str:
    """Run the flow to the end and return the access token.  ``show(code, url)`` tells the
    user what to enter where."""
    code = _post(base, "/login/device/code", {"client_id": CLIENT_ID, "scope": SCOPE})
    device_code, user_code = code.get("device_code"), code.get("user_code")
    if not isinstance(device_code, str) or not isinstance(user_code, str):
        raise DeviceFlowError(f"{PROVIDER}: no device code in the answer "
                              f"({code.get('error_description') or code.get('error') or '?'})")
    show(user_code, str(code.get("verification_uri") or "https://github.com/login/device"))
    interval = float(code.get("interval") or 5)
    expires = clock() + float(code.get("expires_in") or 900)
    form = {"client_id": CLIENT_ID, "device_code": device_code, "grant_type": GRANT}
    while clock() < expires:
        sleep(interval)
        answer = _post(base, "/login/oauth/access_token", form)
        token = answer.get("access_token")
        if isinstance(token, str) and token:
            return token
        error = answer.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            given = answer.get("interval")
            interval = float(given) if isinstance(given, (int, float)) and given > interval \
                else interval + 5
            continue
        if error == "expired_token":
            break
        if error == "access_denied":
            raise DeviceFlowError(f"{PROVIDER}: the request was cancelled in the browser")
        detail = answer.get("error_description") or error or "no token in the answer"
        raise DeviceFlowError(f"{PROVIDER}: {detail}")
    raise DeviceFlowError(f"{PROVIDER}: the code expired before it was entered; {RELOGIN}")
