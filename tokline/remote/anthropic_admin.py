"""Anthropic organization spend this month (remote_apis.md §2.2): the Admin API's
``cost_report``, daily buckets, every page.  Amounts are decimal strings in cents."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from tokline import secrets
from tokline.remote.http import RemoteError, get_pages
from tokline.remote.values import decimal_of, month_bounds, parse_time

NAME = "anthropic-admin"
DEFAULT_BASE = "https://api.anthropic.com"
TTL_S = 300.0
RELOGIN = "run `tokline auth login anthropic-admin` with an admin key (sk-ant-admin…)"
KEY_PREFIX = "sk-ant-admin"
VERSION = "2023-06-01"


def parse(buckets: list[Any], today_start: float) -> dict[str, Any]:
    """Month and today totals in dollars, and the month per model (``description`` group)."""
    month = today = Decimal(0)
    models: dict[str, Decimal] = {}
    for bucket in buckets:
        if not isinstance(bucket, dict):
            continue
        start = parse_time(bucket.get("starting_at"))
        for row in bucket.get("results") or []:
            if not isinstance(row, dict) or str(row.get("currency") or "USD").upper() != "USD":
                continue
            cents = decimal_of(row.get("amount"))
            if cents is None:
                continue
            month += cents
            if start is not None and start >= today_start:
                today += cents
            label = row.get("model") or row.get("cost_type") or "other"
            models[str(label)] = models.get(str(label), Decimal(0)) + cents
    return {"spent_usd": float(month / 100), "today_usd": float(today / 100),
            "models_usd": {name: float(c / 100) for name, c in sorted(models.items())}}


def fetch(base: str, account: str) -> list[dict[str, Any]]:
    key = secrets.get(NAME, account)[0]
    if key is None:
        raise RemoteError(f"{NAME}: no key; {RELOGIN}")
    start, today, following = month_bounds(time.time())
    query = [("starting_at", start.strftime("%Y-%m-%dT%H:%M:%SZ")), ("bucket_width", "1d"),
             ("limit", "31"), ("group_by[]", "description")]
    headers = {"x-api-key": key, "anthropic-version": VERSION}
    buckets = get_pages(base.rstrip("/") + "/v1/organizations/cost_report", query, headers,
                        NAME, RELOGIN)
    totals = parse(buckets, today.timestamp())
    return [{"source": NAME, "window": "month", "kind": "official", "used_percent": None,
             "resets_at": following.timestamp(), **totals}]
