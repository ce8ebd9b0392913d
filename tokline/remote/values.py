"""Times and amounts as the provider APIs write them, and the UTC month the admin cost
reports bucket by (their days are UTC days)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from tokline.prompt.quotaview import number  # one reading of a JSON number, everywhere

__all__ = ["decimal_of", "month_bounds", "number", "parse_time"]


def month_bounds(now: float) -> tuple[datetime, datetime, datetime]:
    """(start of this UTC month, start of today UTC, start of next UTC month)."""
    current = datetime.fromtimestamp(now, timezone.utc)
    start = current.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    today = current.replace(hour=0, minute=0, second=0, microsecond=0)
    following = start.replace(year=start.year + 1, month=1) if start.month == 12 \
        else start.replace(month=start.month + 1)
    return start, today, following


def parse_time(value: object) -> float | None:
    """Epoch seconds from an RFC 3339 string or a number (seconds, or milliseconds when
    it is too large to be seconds)."""
    seconds = number(value)
    if seconds is not None:
        return seconds / 1000 if seconds > 1e11 else seconds
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def decimal_of(value: object) -> Decimal | None:
    """An exact amount from a JSON number or a decimal string; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None
