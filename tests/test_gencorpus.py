"""Generated corpora (../shared/tools/gencorpus.py) against their ground_truth.json."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from conftest import GENCORPUS

from tokline.accounting.blocks import blocks
from tokline.accounting.costmode import Coster
from tokline.accounting.localtime import Calendar, resolve_zone
from tokline.accounting.pricing import PriceBook, bundled_table
from tokline.engine.refresh import refresh
from tokline.ledger.store import Ledger

pytestmark = pytest.mark.skipif(not GENCORPUS.exists(), reason="../shared/tools not present")
END = "2026-11-20T12:00:00Z"


def _gen(out: Path, *args: str) -> dict[str, Any]:
    subprocess.run([sys.executable, str(GENCORPUS), "--out", str(out), *args], check=True,
                   capture_output=True)
    truth: dict[str, Any] = json.loads((out / "ground_truth.json").read_text())
    return truth


def _daily(ledger: Ledger) -> dict[str, dict[str, dict[str, float]]]:
    cal = Calendar(resolve_zone("UTC"))
    coster = Coster(PriceBook(bundled_table()), "calculate")
    out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for row in ledger.usage(sources=["claude"]):
        cell = out[cal.day(row.ts_ms)].setdefault(row.model, defaultdict(float))
        cell["input"] += row.input
        cell["output"] += row.output
        cell["cache_creation_5m"] += row.cache_5m
        cell["cache_creation_1h"] += row.cache_1h
        cell["cache_read"] += row.cache_read
        cell["requests"] += 1
        cell["cost"] += coster(row) or 0.0
    return out


def _assert_matches(ledger: Ledger, truth: dict[str, Any]) -> None:
    got = _daily(ledger)
    want = truth["claude"]["daily"]
    assert sorted(got) == sorted(want)
    for day, models in want.items():
        assert sorted(got[day]) == sorted(models), day
        for model, cell in models.items():
            mine = got[day][model]
            for field in ("input", "output", "cache_creation_5m", "cache_creation_1h",
                          "cache_read", "requests"):
                assert mine[field] == cell[field], (day, model, field)
            assert mine["cost"] == pytest.approx(cell["cost"], rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("block_usage", "threaded"),
                         [("streaming", False), ("identical", False), ("streaming", True)])
def test_corpus_matches_ground_truth(tmp_path: Path, block_usage: str, threaded: bool,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "c"
    truth = _gen(corpus, "--size", "6M", "--seed", "11", "--end", END,
                 "--block-usage", block_usage)
    if threaded:  # the scanner threads of a big cold scan, with many small batches
        from tokline.engine import refresh as refresh_mod
        from tokline.engine.native import USE_EXTENSIONS

        if not USE_EXTENSIONS:
            pytest.skip("the twin scans without threads")
        monkeypatch.setattr(refresh_mod, "THREADS_FROM_BYTES", 0)
        monkeypatch.setattr(refresh_mod, "BATCH_BYTES", 64 << 10)
        monkeypatch.setattr(refresh_mod, "FLUSH_ROWS", 50)
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        report = refresh(ledger, {"HOME": str(corpus)})
        assert report.malformed <= truth["stats"].get("claude_malformed_lines", 0)
        _assert_matches(ledger, truth)

        # sessions, and the block at the corpus' end
        coster = Coster(PriceBook(bundled_table()), "calculate")
        per_session: dict[str, float] = defaultdict(float)
        rows = list(ledger.usage(sources=["claude"]))
        for row in rows:
            per_session[row.session_id] += coster(row) or 0.0
        for sid, cost in truth["session_costs"].items():
            assert per_session[sid] == pytest.approx(cost, abs=1e-9)
        last = blocks(rows, coster, _ms(truth["meta"]["end"]))[-1]
        want = truth["claude_block_at_end"]
        assert last.start_ms == _ms(want["start"])
        assert last.totals.requests == want["entries"]
        assert last.totals.total_tokens == want["tokens"]
        assert last.totals.cost_usd == pytest.approx(want["cost"])
        assert last.active == want["active_at_end"]


def _ms(iso: str) -> int:
    from tokline.engine._claude_py import parse_iso_ms

    value = parse_iso_ms(iso)
    assert value is not None
    return value


def test_appends_match_ground_truth(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    _gen(corpus, "--size", "4M", "--seed", "3", "--end", END)
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        refresh(ledger, {"HOME": str(corpus)})
        for step, end in enumerate(("2026-11-20T12:20:00Z", "2026-11-20T13:05:00Z"), 1):
            truth = _gen(corpus, "--append-mb", "1", "--end", end)
            report = refresh(ledger, {"HOME": str(corpus)})
            assert report.files_rescanned == 0, step
            assert report.bytes_scanned < 2 << 20
            _assert_matches(ledger, truth)


def test_snapshot_block_matches_ground_truth(tmp_path: Path) -> None:
    from tokline.accounting.blocks import current_block

    corpus = tmp_path / "c"
    truth = _gen(corpus, "--size", "6M", "--seed", "21", "--end", END)
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        refresh(ledger, {"HOME": str(corpus)})
        bounds = current_block(ledger, _ms(truth["meta"]["end"]), 5)
        assert bounds is not None
        start, _first, last = bounds
        assert start == _ms(truth["claude_block_at_end"]["start"])
        assert last == _ms(truth["claude_block_at_end"]["last_entry"])
