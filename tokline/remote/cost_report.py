"""What the two organization cost reports (Anthropic §2.2, OpenAI §3.2) share: daily
buckets summed into this UTC month's and today's spend, with a breakdown by label, as
one quota window.  Each provider says how to read a row's amount (in dollars) and label."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tokline.remote.values import parse_time

Row = dict[str, Any]


def month_window(source: str, buckets: list[Any], start_key: str, today_start: float,
                 resets_at: float, amount_of: Callable[[Row], Decimal | None],
                 label_of: Callable[[Row], str], breakdown: str) -> dict[str, Any]:
    month = today = Decimal(0)
    by_label: dict[str, Decimal] = {}
    for bucket in buckets:
        if not isinstance(bucket, dict):
            continue
        start = parse_time(bucket.get(start_key))
        for row in bucket.get("results") or []:
            dollars = amount_of(row) if isinstance(row, dict) else None
            if dollars is None:
                continue
            month += dollars
            if start is not None and start >= today_start:
                today += dollars
            label = label_of(row)
            by_label[label] = by_label.get(label, Decimal(0)) + dollars
    return {"source": source, "window": "month", "kind": "official", "used_percent": None,
            "resets_at": resets_at, "spent_usd": float(month), "today_usd": float(today),
            breakdown: {name: float(d) for name, d in sorted(by_label.items())}}
