"""Anthropic organization spend this month (remote_apis.md §2.2): the Admin API's
``cost_report``, daily buckets, every page.  Amounts are decimal strings in cents."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from tokline.prompt.quotaview import CACHE_S
from tokline.remote import credentials
from tokline.remote.cost_report import Row, month_window
from tokline.remote.http import RemoteError, get_pages
from tokline.remote.values import decimal_of, month_bounds

NAME = "anthropic-admin"
DEFAULT_BASE = "https://api.anthropic.com"
TTL_S = CACHE_S[NAME]  # the cache time of every provider: tokline/prompt/quotaview.py
RELOGIN = "run `tokline auth login anthropic-admin` with an admin key (sk-ant-admin…)"
KEY_PREFIX = "sk-ant-admin"
VERSION = "2023-06-01"


def _dollars(row: Row) -> Decimal | None:
    """``amount`` is a decimal string in cents (fractional cents allowed)."""
    if str(row.get("currency") or "USD").upper() != "USD":
        return None
    cents = decimal_of(row.get("amount"))
    return None if cents is None else cents / 100


def _label(row: Row) -> str:
    """The model (``description`` grouping), else the kind of cost (web search, …)."""
    return str(row.get("model") or row.get("cost_type") or "other")


def fetch(base: str, account: str) -> list[dict[str, Any]]:
    key = credentials.get(NAME, account)[0]
    if key is None:
        raise RemoteError(f"{NAME}: no key; {RELOGIN}")
    start, today, following = month_bounds(time.time())
    query = [("starting_at", start.strftime("%Y-%m-%dT%H:%M:%SZ")), ("bucket_width", "1d"),
             ("limit", "31"), ("group_by[]", "description")]
    headers = {"x-api-key": key, "anthropic-version": VERSION}
    buckets = get_pages(base.rstrip("/") + "/v1/organizations/cost_report", query, headers,
                        NAME, RELOGIN)
    return [month_window(NAME, buckets, "starting_at", today.timestamp(), following.timestamp(),
                         _dollars, _label, "models_usd")]
