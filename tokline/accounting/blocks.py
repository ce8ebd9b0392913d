"""5-hour blocks (formats.md §7): the one walk over activity times that finds them, and
what is made of it.

A block starts at its first activity floored to the UTC hour and lasts ``hours``; an
activity more than that after the block's start, or after the activity before it,
opens the next block.  ``openings`` walks the times; on it stand

* ``blocks``: every block of some report rows, with the gaps between them and their
  totals (``tokline blocks``);
* ``walk``, ``current_block`` and ``current_walk``: the newest block's bounds for the
  snapshot, which resumes the walk from a state it kept at a mark;
* ``p90_block_tokens``: the ``custom`` plan's limit, from the finished blocks of 30 days;

and ``is_active`` and ``burn`` say whether a block goes on, and at what rate.

Imported on the prompt's refresh path (by the snapshot): no dataclasses here.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from tokline.accounting.totals import Totals
from tokline.config import PLAN_BLOCK_TOKENS
from tokline.engine.records import SYNTHETIC
from tokline.units import DAY_MS, HOUR_MS, MINUTE_MS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from tokline.ledger.store import Ledger, StoredUsage

Bounds = tuple[int, int, int]  # a block's start, first and last activity (ms)
NO_BLOCK: Bounds = (-1, -1, -1)  # the walk's state before any activity


def openings(stamps: Sequence[int], hours: int, before: Bounds = NO_BLOCK) -> list[int]:
    """Indices of the sorted times ``stamps`` that open a block, the walk going on from
    the state ``before`` (the bounds of the block it was in; NO_BLOCK: none yet)."""
    length = hours * HOUR_MS
    start, _first, last = before
    found: list[int] = []
    for i, ts in enumerate(stamps):
        if start < 0 or ts - start > length or ts - last > length:
            start = ts - ts % HOUR_MS
            found.append(i)
        last = ts
    return found


def _spans(opened: list[int], count: int) -> Iterator[tuple[int, int]]:
    """(first, end) indices of each block opened, its times being stamps[first:end]."""
    for k, first in enumerate(opened):
        yield first, opened[k + 1] if k + 1 < len(opened) else count


def block_end(start_ms: int, hours: int) -> int:
    return start_ms + hours * HOUR_MS


def is_active(last_ms: int, end_ms: int, now_ms: int, hours: int) -> bool:
    """A block goes on until its end, or until ``hours`` pass without activity."""
    return now_ms - last_ms < hours * HOUR_MS and now_ms < end_ms


def burn(first_ms: int, last_ms: int, end_ms: int, now_ms: int, tokens: float,
         cost_usd: float) -> dict[str, float] | None:
    """An active block's tokens per minute and USD per hour over its activity so far, and
    its totals projected to its end at that rate; None while its activity spans no time."""
    minutes = (last_ms - first_ms) / MINUTE_MS
    if minutes <= 0:
        return None
    tpm = tokens / minutes
    usd_per_hour = cost_usd / minutes * 60
    remaining = max(0.0, (end_ms - now_ms) / MINUTE_MS)
    return {
        "tokens_per_minute": tpm,
        "usd_per_hour": usd_per_hour,
        "remaining_minutes": remaining,
        "projected_tokens": tokens + tpm * remaining,
        "projected_cost_usd": cost_usd + usd_per_hour / 60 * remaining,
    }


# --- the reports ----------------------------------------------------------------------

class Block:
    """One block of a report (or the gap between two), with its totals and models."""

    __slots__ = (
        "active",
        "end_ms",
        "first_ms",
        "gap",
        "last_ms",
        "models",
        "start_ms",
        "totals",
    )

    def __init__(self, start_ms: int, end_ms: int, first_ms: int, last_ms: int,
                 totals: Totals, models: set[str], gap: bool = False,
                 active: bool = False) -> None:
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.first_ms = first_ms
        self.last_ms = last_ms
        self.totals = totals
        self.models = models
        self.gap = gap
        self.active = active

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Block):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)


    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Block({fields})"

    def burn(self, now_ms: int) -> dict[str, float] | None:
        """Tokens per minute and USD per hour while active, with the projected block total."""
        if not self.active:
            return None
        return burn(self.first_ms, self.last_ms, self.end_ms, now_ms,
                    self.totals.total_tokens, self.totals.cost_usd)


def blocks(rows: Iterable[StoredUsage], cost: Callable[[StoredUsage], float | None],
           now_ms: int, hours: int = 5) -> list[Block]:
    """ccusage-style blocks (formats.md §7.1) of ``rows``, with a gap block wherever more
    than ``hours`` passed without activity; the last one is active while it goes on."""
    length = hours * HOUR_MS
    ordered = sorted(rows, key=lambda r: r.ts_ms)
    stamps = [row.ts_ms for row in ordered]
    found: list[Block] = []
    previous: Block | None = None
    for first, end in _spans(openings(stamps, hours), len(stamps)):
        ts = stamps[first]
        if previous is not None and ts - previous.last_ms > length:
            found.append(Block(previous.last_ms + length, ts, previous.last_ms + length, ts,
                               Totals(), set(), gap=True))
        start = ts - ts % HOUR_MS
        block = Block(start, block_end(start, hours), ts, stamps[end - 1], Totals(), set())
        for row in ordered[first:end]:
            block.totals.add(row, cost(row))
            if row.model != SYNTHETIC:
                block.models.add(row.model)
        found.append(block)
        previous = block
    if previous is not None:
        previous.active = is_active(previous.last_ms, previous.end_ms, now_ms, hours)
    return found


# --- the snapshot ---------------------------------------------------------------------

def walk(stamps: Sequence[int], hours: int, before: Bounds = NO_BLOCK, mark: int = 0
         ) -> tuple[Bounds | None, Bounds]:
    """(start, first, last) of the last block over sorted timestamps, which continue the
    walk's state ``before``; and the state the walk was in before the first timestamp at
    or after ``mark``, to go on from there later (NO_BLOCK: none yet)."""
    opened = openings(stamps, hours, before)

    def state(seen: int) -> Bounds:
        """The walk's state after the first ``seen`` timestamps."""
        if seen == 0:
            return before
        k = bisect_right(opened, seen - 1)  # blocks opened among them
        if k == 0:
            return before[0], before[1], stamps[seen - 1]
        ts = stamps[opened[k - 1]]
        return ts - ts % HOUR_MS, ts, stamps[seen - 1]

    final = state(len(stamps))
    return (None if final[0] < 0 else final), state(bisect_left(stamps, mark))


def current_block(ledger: Ledger, now_ms: int, hours: int) -> Bounds | None:
    """The newest block of Claude Code's rows."""
    return current_walk(ledger, now_ms, hours, 0)[0]


def current_walk(ledger: Ledger, now_ms: int, hours: int, mark: int
                 ) -> tuple[Bounds | None, Bounds]:
    """The newest block and the walk's state at ``mark`` (see ``walk``).  A gap longer
    than a block starts a new one whatever came before, so history is read back only to
    the last such gap (a state of NO_BLOCK before it leads to the same block)."""
    length = hours * HOUR_MS
    since = now_ms - 48 * HOUR_MS
    while True:
        stamps = ledger.timestamps(since)
        for i in range(len(stamps) - 1, 0, -1):
            if stamps[i] - stamps[i - 1] > length:
                return walk(stamps[i:], hours, NO_BLOCK, mark)
        before = ledger.last_before(stamps[0] if stamps else since)
        if before is None or (stamps and stamps[0] - before > length):
            return walk(stamps, hours, NO_BLOCK, mark)
        since = min(since, before) - 48 * HOUR_MS


def p90_block_tokens(ledger: Ledger, now_ms: int, hours: int) -> int:
    """Plan ``custom``: the 90th percentile of input+output tokens of Claude Code's
    finished blocks in the last 30 days (formats.md §7.2), at least the pro limit."""
    rows = ledger.io_tokens(now_ms - 30 * DAY_MS)
    stamps = [ts for ts, _used in rows]
    finished = []
    for first, end in _spans(openings(stamps, hours), len(stamps)):
        start = stamps[first] - stamps[first] % HOUR_MS
        used = sum(used for _ts, used in rows[first:end])
        if block_end(start, hours) <= now_ms and used > 0:
            finished.append(used)
    finished.sort()
    if not finished:
        return PLAN_BLOCK_TOKENS["pro"]
    return max(finished[min(len(finished) - 1, int(0.9 * len(finished)))],
               PLAN_BLOCK_TOKENS["pro"])
