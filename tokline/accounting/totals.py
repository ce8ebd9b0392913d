"""Token and cost totals: the one place their JSON form (field names included) is made.

Two shapes of the same totals:

* ``Totals``: what the reports, the pictures and the dashboard add rows into, with the
  cache writes kept apart by duration.
* ``Sums``: the tuple ``Ledger.sums`` returns per ``source<US>model`` and the snapshot
  carries from one refresh to the next (in snapshot.json, hence a plain tuple):
  (input, output, cache writes, cache reads, web searches, cost, unpriced rows, requests).

Both become JSON through ``as_json``.  Imported on the prompt's refresh path (by the
snapshot): a plain class, not a dataclass (``dataclasses`` costs 8 ms to import).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from tokline.ledger.store import StoredUsage

Sums = tuple[int, int, int, int, int, float, int, int]
ZERO: Sums = (0, 0, 0, 0, 0, 0.0, 0, 0)


def as_json(inp: int, out: int, cache_creation: int, cache_read: int, cost_usd: float,
            unpriced: bool, requests: int) -> dict[str, Any]:
    """The JSON form of totals, in reports, exports and the snapshot alike."""
    return {"input_tokens": inp, "output_tokens": out,
            "cache_creation_tokens": cache_creation, "cache_read_tokens": cache_read,
            "total_tokens": inp + out + cache_creation + cache_read,
            "cost_usd": round(cost_usd, 6), "unpriced": unpriced, "requests": requests}


FIELDS = tuple(as_json(0, 0, 0, 0, 0.0, False, 0))  # its field names, in order


def sums_json(t: Sums) -> dict[str, Any]:
    inp, out, cw, cr, _web, cost, unpriced, requests = t
    return as_json(inp or 0, out or 0, cw or 0, cr or 0, cost or 0.0, bool(unpriced),
                   requests or 0)


def add_sums(a: Sums, b: Sums) -> Sums:
    return tuple((x or 0) + (y or 0) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def plus(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Sums]:
    """Keyed sums added key by key, field by field."""
    return {key: add_sums(a.get(key) or ZERO, b.get(key) or ZERO) for key in set(a) | set(b)}


def total_sums(keyed: Mapping[str, Sums]) -> Sums:
    """The sums of every key together."""
    if not keyed:
        return ZERO
    return tuple(sum(t[i] or 0 for t in keyed.values()) for i in range(8))  # type: ignore[return-value]


class Totals:
    """Totals rows are added into (``add``, ``add_sums``) and totals merged into."""

    __slots__ = (
        "cache_1h",
        "cache_5m",
        "cache_read",
        "cost_usd",
        "input",
        "output",
        "requests",
        "unpriced",
        "web_search",
    )

    def __init__(self, input: int = 0, output: int = 0, cache_5m: int = 0,
                 cache_1h: int = 0, cache_read: int = 0, web_search: int = 0,
                 requests: int = 0, cost_usd: float = 0.0, unpriced: bool = False) -> None:
        self.input = input
        self.output = output
        self.cache_5m = cache_5m
        self.cache_1h = cache_1h
        self.cache_read = cache_read
        self.web_search = web_search
        self.requests = requests
        self.cost_usd = cost_usd
        self.unpriced = unpriced

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Totals):
            return NotImplemented
        return self._values() == other._values()


    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Totals({fields})"

    @property
    def cache_creation(self) -> int:
        return self.cache_5m + self.cache_1h

    @property
    def total_tokens(self) -> int:
        return self.input + self.output + self.cache_5m + self.cache_1h + self.cache_read

    def add(self, row: StoredUsage, cost: float | None) -> None:
        self.input += row.input
        self.output += row.output
        self.cache_5m += row.cache_5m
        self.cache_1h += row.cache_1h
        self.cache_read += row.cache_read
        self.web_search += row.web_search
        self.requests += 1
        if cost is None:
            self.unpriced = True
        else:
            self.cost_usd += cost

    def add_sums(self, sums: tuple[Any, ...]) -> None:
        """Add one ``Ledger.grouped_sums`` row's sums (after its key columns): input,
        output, cache_5m, cache_1h, cache_read, web_search, cost, unpriced, requests."""
        inp, out, c5, c1, cr, web, cost, unpriced, requests = sums[:9]
        self.input += int(inp or 0)
        self.output += int(out or 0)
        self.cache_5m += int(c5 or 0)
        self.cache_1h += int(c1 or 0)
        self.cache_read += int(cr or 0)
        self.web_search += int(web or 0)
        self.cost_usd += float(cost or 0.0)
        self.unpriced = self.unpriced or bool(unpriced)
        self.requests += int(requests or 0)

    def merge(self, other: Totals) -> None:
        self.input += other.input
        self.output += other.output
        self.cache_5m += other.cache_5m
        self.cache_1h += other.cache_1h
        self.cache_read += other.cache_read
        self.web_search += other.web_search
        self.requests += other.requests
        self.cost_usd += other.cost_usd
        self.unpriced = self.unpriced or other.unpriced

    def as_json(self) -> dict[str, Any]:
        return as_json(self.input, self.output, self.cache_creation, self.cache_read,
                       self.cost_usd, self.unpriced, self.requests)
