"""Local days, weeks and months of UTC milliseconds, in the configured or system zone."""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

from tokline.units import QUARTER_MS


class Calendar:
    """Local-time labels of UTC milliseconds in one zone, memoised per quarter hour."""

    def __init__(self, zone: dt.tzinfo, week_start: int = 0) -> None:
        self.zone = zone
        self.week_start = week_start
        self._dates: dict[int, dt.date] = {}

    def date(self, ts_ms: int) -> dt.date:
        quarter = ts_ms // QUARTER_MS
        found = self._dates.get(quarter)
        if found is None:
            found = dt.datetime.fromtimestamp(quarter * QUARTER_MS / 1000, self.zone).date()
            self._dates[quarter] = found
        return found

    def day(self, ts_ms: int) -> str:
        return self.date(ts_ms).isoformat()

    def week_start_date(self, day: dt.date) -> dt.date:
        return day - dt.timedelta(days=(day.weekday() - self.week_start) % 7)

    def week(self, ts_ms: int) -> str:
        """ISO label of the week's Monday (each week, whatever its first day, has one)."""
        start = self.week_start_date(self.date(ts_ms))
        monday = start + dt.timedelta(days=(7 - self.week_start) % 7)
        year, number, _ = monday.isocalendar()
        return f"{year}-W{number:02d}"

    def month(self, ts_ms: int) -> str:
        return self.date(ts_ms).isoformat()[:7]

    def start_ms(self, day: dt.date) -> int:
        """UTC milliseconds of local midnight starting ``day``."""
        local = dt.datetime.combine(day, dt.time(), self.zone)
        return int(local.timestamp() * 1000)


def resolve_zone(name: str | None) -> dt.tzinfo:
    """An IANA zone by name, else the system zone (TZ, then /etc/localtime), else UTC."""
    if name:
        return ZoneInfo(name)
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    link = os.path.realpath("/etc/localtime")
    if "zoneinfo/" in link:
        candidates.append(link.split("zoneinfo/", 1)[1])
    for candidate in candidates:
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (KeyError, ValueError, OSError):
                continue
    local = dt.datetime.now().astimezone().tzinfo
    return local if local is not None else dt.timezone.utc
