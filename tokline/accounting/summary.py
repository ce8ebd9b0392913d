"""Usage rows -> totals per local day, week, month, session, project, model and 5-hour block."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tokline.accounting.totals import Totals
from tokline.engine.records import SYNTHETIC
from tokline.ledger.store import StoredUsage
from tokline.units import HOUR_MS


@dataclass
class Group:
    """One report row: a period (or session, project, model) with per-model totals."""

    key: str
    totals: Totals = field(default_factory=Totals)
    models: dict[str, Totals] = field(default_factory=dict)
    sources: dict[str, Totals] = field(default_factory=dict)
    first_ms: int = 0
    last_ms: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def add(self, row: StoredUsage, cost: float | None) -> None:
        if not self.totals.requests:
            self.first_ms = row.ts_ms
        self.last_ms = max(self.last_ms, row.ts_ms)
        self.first_ms = min(self.first_ms, row.ts_ms)
        self.totals.add(row, cost)
        self.sources.setdefault(row.source, Totals()).add(row, cost)
        if row.model != SYNTHETIC:
            self.models.setdefault(row.model, Totals()).add(row, cost)


def group_by(rows: Iterable[StoredUsage], key: Callable[[StoredUsage], str],
             cost: Callable[[StoredUsage], float | None]) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    for row in rows:
        label = key(row)
        group = groups.get(label)
        if group is None:
            group = groups[label] = Group(label)
        group.add(row, cost(row))
    return groups


def grand_total(groups: Iterable[Group]) -> Group:
    total = Group("total")
    for group in groups:
        total.totals.merge(group.totals)
        for model, totals in group.models.items():
            total.models.setdefault(model, Totals()).merge(totals)
        for source, totals in group.sources.items():
            total.sources.setdefault(source, Totals()).merge(totals)
    return total


@dataclass
class Block:
    start_ms: int
    end_ms: int
    first_ms: int
    last_ms: int
    totals: Totals
    models: set[str]
    gap: bool = False
    active: bool = False

    def burn(self, now_ms: int) -> dict[str, float] | None:
        """Tokens per minute and USD per hour while active, with the projected block total."""
        minutes = (self.last_ms - self.first_ms) / 60_000
        if not self.active or minutes <= 0:
            return None
        tpm = self.totals.total_tokens / minutes
        usd_per_hour = self.totals.cost_usd / minutes * 60
        remaining = max(0.0, (self.end_ms - now_ms) / 60_000)
        return {
            "tokens_per_minute": tpm,
            "usd_per_hour": usd_per_hour,
            "remaining_minutes": remaining,
            "projected_tokens": self.totals.total_tokens + tpm * remaining,
            "projected_cost_usd": self.totals.cost_usd + usd_per_hour / 60 * remaining,
        }


def blocks(rows: Iterable[StoredUsage], cost: Callable[[StoredUsage], float | None],
           now_ms: int, hours: int = 5) -> list[Block]:
    """ccusage-style blocks (formats.md §7.1): start floored to the UTC hour; a block ends
    ``hours`` after its start or after a gap of ``hours`` with no activity."""
    length = hours * HOUR_MS
    found: list[Block] = []
    current: Block | None = None
    for row in sorted(rows, key=lambda r: r.ts_ms):
        ts = row.ts_ms
        if current is None or ts - current.start_ms > length or ts - current.last_ms > length:
            if current is not None:
                found.append(current)
                if ts - current.last_ms > length:
                    found.append(Block(current.last_ms + length, ts, current.last_ms + length,
                                       ts, Totals(), set(), gap=True))
            start = ts - ts % HOUR_MS
            current = Block(start, start + length, ts, ts, Totals(), set())
        current.last_ms = ts
        current.totals.add(row, cost(row))
        if row.model != SYNTHETIC:
            current.models.add(row.model)
    if current is not None:
        found.append(current)
        current.active = now_ms - current.last_ms < length and now_ms < current.end_ms
    return found
