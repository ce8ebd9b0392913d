"""OpenAI organization spend this month (remote_apis.md §3.2): ``/v1/organization/costs``,
daily buckets, every page.  ``amount.value`` is dollars, a number or (some servers) a
string."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from tokline import secrets
from tokline.remote.http import RemoteError, get_pages
from tokline.remote.values import decimal_of, month_bounds, parse_time

NAME = "openai-admin"
DEFAULT_BASE = "https://api.openai.com"
TTL_S = 300.0
RELOGIN = "run `tokline auth login openai-admin` with an admin key (sk-admin-…)"
KEY_PREFIX = "sk-admin-"


def _dollars(amount: Any) -> Decimal | None:
    if not isinstance(amount, dict) or str(amount.get("currency") or "usd").lower() != "usd":
        return None
    return decimal_of(amount.get("value"))


def parse(buckets: list[Any], today_start: float) -> dict[str, Any]:
    month = today = Decimal(0)
    items: dict[str, Decimal] = {}
    for bucket in buckets:
        if not isinstance(bucket, dict):
            continue
        start = parse_time(bucket.get("start_time"))
        for row in bucket.get("results") or []:
            dollars = _dollars(row.get("amount")) if isinstance(row, dict) else None
            if dollars is None:
                continue
            month += dollars
            if start is not None and start >= today_start:
                today += dollars
            label = str(row.get("line_item") or "other")
            items[label] = items.get(label, Decimal(0)) + dollars
    return {"spent_usd": float(month), "today_usd": float(today),
            "line_items_usd": {name: float(d) for name, d in sorted(items.items())}}


def fetch(base: str, account: str) -> list[dict[str, Any]]:
    key = secrets.get(NAME, account)[0]
    if key is None:
        raise RemoteError(f"{NAME}: no key; {RELOGIN}")
    start, today, following = month_bounds(time.time())
    query = [("start_time", str(int(start.timestamp()))), ("bucket_width", "1d"),
             ("limit", "31"), ("group_by", "line_item")]
    buckets = get_pages(base.rstrip("/") + "/v1/organization/costs", query,
                        {"Authorization": f"Bearer {key}"}, NAME, RELOGIN)
    totals = parse(buckets, today.timestamp())
    return [{"source": NAME, "window": "month", "kind": "official", "used_percent": None,
             "resets_at": following.timestamp(), **totals}]
