"""Usage rows -> totals per local day, week, month, session, project and model (5-hour
blocks: accounting/blocks.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tokline.accounting.totals import Totals
from tokline.engine.records import SYNTHETIC
from tokline.ledger.store import StoredUsage


@dataclass
class Group:
    """One report row: a period (or session, project, model) with per-model totals.

    ``totals.requests`` counts Claude Code's synthetic messages (they are entries of the
    log, and ccusage counts them too) but ``models`` leaves them out (no model answered
    them), so ``synthetic`` says how many there are: the models' requests plus
    ``synthetic`` make ``totals.requests``."""

    key: str
    totals: Totals = field(default_factory=Totals)
    models: dict[str, Totals] = field(default_factory=dict)
    sources: dict[str, Totals] = field(default_factory=dict)
    devices: dict[int, Totals] = field(default_factory=dict)  # by device id (tokline/sync)
    first_ms: int = 0
    last_ms: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    synthetic: int = 0

    def add(self, row: StoredUsage, cost: float | None) -> None:
        if not self.totals.requests:
            self.first_ms = row.ts_ms
        self.last_ms = max(self.last_ms, row.ts_ms)
        self.first_ms = min(self.first_ms, row.ts_ms)
        self.totals.add(row, cost)
        self.sources.setdefault(row.source, Totals()).add(row, cost)
        self.devices.setdefault(row.device, Totals()).add(row, cost)
        if row.model != SYNTHETIC:
            self.models.setdefault(row.model, Totals()).add(row, cost)
        else:
            self.synthetic += 1


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
        total.synthetic += group.synthetic
        for model, totals in group.models.items():
            total.models.setdefault(model, Totals()).merge(totals)
        for source, totals in group.sources.items():
            total.sources.setdefault(source, Totals()).merge(totals)
        for device, totals in group.devices.items():
            total.devices.setdefault(device, Totals()).merge(totals)
    return total
