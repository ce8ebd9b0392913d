"""GET a JSON document with connect/read timeouts; errors say what to do, never the key."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

TIMEOUT_S = 5.0


class RemoteError(Exception):
    """A failed request: ``transient`` ones (429, 5xx, timeouts) back off and retry."""

    def __init__(self, message: str, transient: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own back-off


def get_json(url: str, headers: dict[str, str], provider: str, relogin: str) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json",
                                                   "User-Agent": "tokline", **headers})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise RemoteError(f"{provider}: not authorized ({exc.code}); {relogin}") from None
        if exc.code == 429:
            raise RemoteError(f"{provider}: rate limited (429)", transient=True,
                              retry_after=_retry_after(exc.headers.get("Retry-After"))) from None
        if exc.code >= 500:
            raise RemoteError(f"{provider}: server error {exc.code}", transient=True,
                              retry_after=_retry_after(exc.headers.get("Retry-After"))) from None
        raise RemoteError(f"{provider}: HTTP {exc.code}") from None
    except TimeoutError:
        raise RemoteError(f"{provider}: no answer within {TIMEOUT_S:.0f} s",
                          transient=True) from None
    except urllib.error.URLError as exc:
        raise RemoteError(f"{provider}: cannot connect ({exc.reason})", transient=True) from None
    try:
        return json.loads(body)
    except ValueError:
        raise RemoteError(f"{provider}: the answer is not JSON", transient=True) from None
