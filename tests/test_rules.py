"""Rules tokline states in two forms (Python and SQL), held to the same answers."""

from __future__ import annotations

import itertools
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokline import config, sources
from tokline.accounting import blocks, costmode
from tokline.accounting.pricing import price_book
from tokline.engine.records import F_FAST, SYNTHETIC
from tokline.ledger.store import Ledger, StoredUsage
from tokline.units import HOUR_MS

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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 60 * HOUR_MS), max_size=40), st.integers(0, 70 * HOUR_MS),
       st.sampled_from([1, 5]))
def test_the_reports_and_the_snapshot_find_the_same_blocks(stamps: list[int], now: int,
                                                           hours: int) -> None:
    """``tokline blocks`` and the snapshot's walk: the same newest block, each report
    block opened where the walk opens one, gaps only where more than a block passed."""
    rows = [StoredUsage(ts, "claude", "s", "p", "m", 1, 1, 0, 0, 0, 0, 0.5, 0) for ts in stamps]
    found = blocks.blocks(rows, lambda row: row.cost_usd, now, hours)
    real = [b for b in found if not b.gap]
    ordered = sorted(stamps)
    newest, _ = blocks.walk(ordered, hours)
    assert ((real[-1].start_ms, real[-1].first_ms, real[-1].last_ms) if real else None) == newest
    assert [b.first_ms for b in real] == [ordered[i] for i in blocks.openings(ordered, hours)]
    assert sum(b.totals.requests for b in real) == len(stamps)
    for before, gap, after in zip(found, found[1:], found[2:], strict=False):
        if gap.gap:
            assert after.first_ms - before.last_ms > hours * HOUR_MS
    if real and real[-1].active:
        last = real[-1]
        tokens = 2 * sum(1 for t in stamps if t >= last.first_ms)  # 1 input, 1 output each
        assert last.burn(now) == blocks.burn(last.first_ms, last.last_ms, last.end_ms, now,
                                             tokens, 0.5 * tokens / 2)


def test_every_source_module_is_in_the_registry_once() -> None:
    modules = {m.name for m in pkgutil.iter_modules(sources.__path__)} - {"documents", "totals"}
    assert sorted(sources.NAMES) == sorted(modules)
    for source in sources.ALL:
        assert source.name == source.module.NAME
        assert (source.whole_files or source.appended) == hasattr(source.module, "SUFFIXES")
        assert not (source.whole_files and source.appended)


def test_the_manifest_key_holds_every_variable_a_source_reads() -> None:
    """A variable that moves a source's logs must change the stat manifest's key, or a
    prompt after changing it would say nothing changed (tokline/prompt/manifest.py)."""
    for source in sources.ALL:
        text = Path(source.module.__file__).read_text(encoding="utf-8")
        # the modules name environment variables only as string literals with an underscore
        read = set(re.findall(r'"([A-Z][A-Z0-9]*_[A-Z0-9_]+)"', text)) | {"HOME"}
        assert read <= set(source.env) | set(sources.COMMON_ENV), (source.name, read)
        assert set(source.env) <= read, source.name


def test_the_vscode_setting_lists_every_source() -> None:
    package = json.loads((Path(__file__).resolve().parent.parent / "editors" / "vscode"
                          / "package.json").read_text(encoding="utf-8"))
    setting = package["contributes"]["configuration"]["properties"]["tokline.sources"]
    assert setting["items"]["enum"] == list(sources.NAMES)


def test_the_registry_imports_no_source_until_asked() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, tokline.sources;"
         " print(' '.join(m for m in sys.modules if m.startswith('tokline')))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert sorted(loaded) == ["tokline", "tokline._version", "tokline.sources"]
