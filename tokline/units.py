"""Lengths of time in milliseconds, the unit of every timestamp in the ledger."""

QUARTER_MS = 900_000  # every UTC offset in use is a multiple of 15 minutes
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000  # a UTC day; local days come from accounting.localtime.Calendar
