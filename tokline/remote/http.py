"""GET (or POST a form) and read JSON with connect/read timeouts; errors say what to do,
never the key."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
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


def get_json(url: str, headers: Mapping[str, str], provider: str, relogin: str,
             form: Mapping[str, str] | None = None, body: Any = None) -> Any:
    """The decoded answer; with ``form``, a POST of that urlencoded form; with ``body``,
    a POST of that value as JSON."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    sent = {"Accept": "application/json", "User-Agent": "tokline"}
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers={**sent, **headers})
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


def get_pages(url: str, query: list[tuple[str, str]], headers: Mapping[str, str],
              provider: str, relogin: str, max_pages: int = 24) -> list[Any]:
    """Every bucket of a paginated report (``data`` + ``has_more``/``next_page``), the
    cursor passed back as ``page``.  A cursor that repeats, or too many pages, is an error
    rather than an endless loop."""
    buckets: list[Any] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(max_pages):
        params = query + ([("page", cursor)] if cursor else [])
        answer = get_json(url + "?" + urllib.parse.urlencode(params), headers, provider,
                          relogin)
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
            raise RemoteError(f"{provider}: unexpected answer (no data list)", transient=True)
        buckets.extend(answer["data"])
        cursor = answer.get("next_page")
        if not answer.get("has_more") or not isinstance(cursor, str) or not cursor:
            return buckets
        if cursor in seen:
            raise RemoteError(f"{provider}: the report's pages loop", transient=True)
        seen.add(cursor)
    raise RemoteError(f"{provider}: more than {max_pages} pages in the report", transient=True)
