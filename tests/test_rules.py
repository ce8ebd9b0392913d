"""Rules tokline states in two forms (Python and SQL), held to the same answers."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tokline import config
from tokline.accounting import costmode
from tokline.accounting.pricing import price_book
from tokline.engine.records import F_FAST, SYNTHETIC
from tokline.ledger.store import Ledger

MODELS = ("claude-sonnet-4-20250514", "gpt-5", "no-such-model-1", SYNTHETIC)
LOGGED = (None, 0.0, 0.125)


def _sample_ledger(path: Path) -> Ledger:
    """A row for every model (priced, unpriced, synthetic), logged cost and fast flag.
    Claude Code's synthetic lines carry no cost, so none is given one here: with one, the
    Python form would still say 0 and the SQL form would take the logged figure."""
    ledger = Ledger(path)
    book = price_book({})
    rows = []
    for i, (model, logged, flags) in enumerate(itertools.product(MODELS, LOGGED, (0, F_FAST))):
        if model == SYNTHETIC and logged:
            continue
        rows.append((model, logged, flags, i))
    with ledger.write():
        ledger.upsert_usage([
            (i + 1, 1_000 + i, ledger.context_id("claude", "s", "p", model),
             100 * (i + 1), 10 * i, 1_000, 500, 20_000, i % 2, logged, flags, None, 0)
            for model, logged, flags, i in rows])
        ledger.price_pending(0, book.cost_of)
    return ledger


@pytest.mark.parametrize("mode", costmode.MODES)
def test_cost_modes_agree_in_python_and_sql(tmp_path: Path, mode: str) -> None:
    with _sample_ledger(tmp_path / "ledger.sqlite3") as ledger:
        coster = costmode.Coster(price_book({}), mode)
        python = [coster(row) for row in ledger.usage()]
        sql = [cost for (cost,) in ledger.db.execute(
            f"SELECT {costmode.SQL[mode]} FROM usage u ORDER BY u.ts_ms")]
    assert len(python) == len(sql) == 4 * 3 * 2 - 2
    assert sql == pytest.approx(python)
    assert (None in python) == (mode != "display")


def test_the_config_knows_the_cost_modes() -> None:
    assert config.COST_MODES == costmode.MODES
