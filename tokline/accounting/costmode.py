"""The cost of a usage row under each cost mode (formats.md §1.8), in both forms tokline
computes it: in Python over report rows (``Coster``) and in SQL over stored rows
(``SQL``), which the snapshot and the SQL-summed views use.

    auto       the cost the log gave, else the one computed from the price table
    calculate  the computed cost, always
    display    the cost the log gave, else 0

A stored row keeps the logged cost in ``u.cost_usd`` and the computed one in
``u.cost_calc`` (Ledger.price_pending: 0 for synthetic rows, NULL for a model without a
price, which counts the row as unpriced).  Keep the two forms side by side:
tests/test_rules.py holds them to the same figures.

Imported on the prompt's refresh path (by the ledger): no imports beyond records.
"""

from __future__ import annotations

from tokline.engine.records import SYNTHETIC

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tokline.accounting.pricing import PriceBook
    from tokline.ledger.store import StoredUsage

# The SQL form, over ``usage u``.
SQL = {"auto": "coalesce(u.cost_usd, u.cost_calc)",
       "calculate": "u.cost_calc",
       "display": "coalesce(u.cost_usd, 0)"}
MODES = tuple(SQL)


class Coster:
    """The Python form: the cost of a report row under ``mode``, None when its model has
    no price; the unpriced models met are collected in ``unpriced_models``."""

    def __init__(self, book: PriceBook, mode: str = "auto") -> None:
        self.book = book
        self.mode = mode
        self.unpriced_models: set[str] = set()

    def __call__(self, row: StoredUsage) -> float | None:
        if row.model == SYNTHETIC:
            return 0.0
        if self.mode == "display":  # coalesce(u.cost_usd, 0)
            return row.cost_usd or 0.0
        if self.mode == "auto" and row.cost_usd is not None:  # coalesce(u.cost_usd, ...
            return row.cost_usd
        # u.cost_calc, which Ledger.price_pending stores from the same function
        cost = self.book.cost_of(row.model, row.input, row.output, row.cache_5m, row.cache_1h,
                                 row.cache_read, row.web_search, row.flags)
        if cost is None:
            self.unpriced_models.add(row.model)
        return cost
