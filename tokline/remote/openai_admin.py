"""OpenAI organization spend this month (remote_apis.md §3.2): ``/v1/organization/costs``,
daily buckets, every page.  ``amount.value`` is dollars, a number or (some servers) a
string."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from tokline.prompt.quotaview import CACHE_S
from tokline.remote import credentials
from tokline.remote.cost_report import Row, month_window
from tokline.remote.http import RemoteError, get_pages
from tokline.remote.values import decimal_of, month_bounds

NAME = "openai-admin"
DEFAULT_BASE = "https://api.openai.com"
TTL_S = CACHE_S[NAME]  # the cache time of every provider: tokline/prompt/quotaview.py
RELOGIN = "run `tokline auth login openai-admin` with an admin key (sk-admin-…)"
KEY_PREFIX = "sk-admin-"


def _dollars(row: Row) -> Decimal | None:
    amount = row.get("amount")
    if not isinstance(amount, dict) or str(amount.get("currency") or "usd").lower() != "usd":
        return None
    return decimal_of(amount.get("value"))


def _label(row: Row) -> str:
    return str(row.get("line_item") or "other")


def fetch(base: str, account: str) -> list[dict[str, Any]]:
    key = credentials.get(NAME, account)[0]
    if key is None:
        raise RemoteError(f"{NAME}: no key; {RELOGIN}")
    start, today, following = month_bounds(time.time())
    query = [("start_time", str(int(start.timestamp()))), ("bucket_width", "1d"),
             ("limit", "31"), ("group_by", "line_item")]
    buckets = get_pages(base.rstrip("/") + "/v1/organization/costs", query,
                        {"Authorization": f"Bearer {key}"}, NAME, RELOGIN)
    return [month_window(NAME, buckets, "start_time", today.timestamp(), following.timestamp(),
                         _dollars, _label, "line_items_usd")]
