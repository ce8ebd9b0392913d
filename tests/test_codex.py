"""Codex CLI rollouts: fixtures worked out by hand, forks, quota, generated corpora."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, GENCORPUS

from tokline.accounting.costmode import Coster
from tokline.accounting.localtime import Calendar, resolve_zone
from tokline.accounting.pricing import PriceBook, bundled_table
from tokline.engine.refresh import refresh
from tokline.ledger.store import Ledger
from tokline.snapshot.quota import windows as quota_windows
from tokline.sources import codex

CODEX = FIXTURES / "codex"


def _install(home: Path, *files: tuple[Path, str]) -> None:
    for source, rel in files:
        dest = home / ".codex" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest)


def _totals(ledger: Ledger) -> tuple[int, int, int, int]:
    rows = list(ledger.usage(sources=["codex"]))
    return (sum(r.input + r.cache_read for r in rows), sum(r.cache_read for r in rows),
            sum(r.output for r in rows), len(rows))


def test_reemitted_rows_count_once(home: Path, ledger: Ledger) -> None:
    # formats.md §2.4: 55 rows with info, 27 re-emits; the right total is the last
    # cumulative one: input 1,751,428 (1,651,968 cached), output 14,600 (= 1,766,028).
    name = "rollout-2026-02-23T12-41-04-019c8a4d-8f45-7010-8b5d-7fad920aa6f9.jsonl"
    _install(home, (CODEX / "localpush" / "sessions" / name, f"sessions/2026/02/23/{name}"))
    refresh(ledger, {"HOME": str(home)})
    inp, cached, out, rows = _totals(ledger)
    assert (inp, cached, out) == (1_751_428, 1_651_968, 14_600)
    assert inp + out == 1_766_028 and rows == 55 - 27


def test_all_localpush_files(home: Path, ledger: Ledger) -> None:
    for path in (CODEX / "localpush" / "sessions").glob("*.jsonl"):
        _install(home, (path, f"sessions/2026/02/23/{path.name}"))
    refresh(ledger, {"HOME": str(home)})
    inp, _cached, out, _ = _totals(ledger)
    assert inp + out == 1_766_028 + 299_496 + 34_900


def test_old_cli_without_context_window(home: Path, ledger: Ledger) -> None:
    _install(home, (CODEX / "vibecodingtracker" / "codex.jsonl", "sessions/2025/09/20/a.jsonl"))
    refresh(ledger, {"HOME": str(home)})
    inp, cached, out, _ = _totals(ledger)
    assert (inp, cached, out) == (270_530, 136_832, 12_551)


def test_fork_replay_counts_once_in_either_order(home: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The child replays the parent's 180 token rows with new timestamps.  In total-usage
    deltas (formats.md §2.4 table) the parent ends at 24,992,392 tokens and the child adds
    1,809,519 of its own: 26,801,911, where summing both files would give twice the parent.
    (The manifest's 26,938,802 is the same dedup in last_token_usage units, which also
    count the parent's row 120 whose total did not move.)  The fixture is dated 2030: the
    latest valid line time (tokline/engine/validate.py) is moved past it."""
    monkeypatch.setenv("TOKLINE_LATEST_MS", "1924992000000")  # 2031-01-01
    family = CODEX / "codexbar-live-fork-4d90-52bf"
    oracle = json.loads((family / "manifest.json").read_text())["oracle"]
    parent_only = Ledger(tmp_path / "parent-only.sqlite3")
    _install(home, (family / "codex-home" / "archived_sessions" / "parent.jsonl",
                    "archived_sessions/parent.jsonl"))
    refresh(parent_only, {"HOME": str(home)})
    inp, _cached, out, _ = _totals(parent_only)
    assert inp + out == 24_992_392
    parent_only.close()
    shutil.rmtree(home / ".codex")
    for order in (("parent", "child"), ("child", "parent")):
        ledger = Ledger(tmp_path / f"{order[0]}.sqlite3")
        for name in order:
            _install(home, (family / "codex-home" / "archived_sessions" / f"{name}.jsonl",
                            f"archived_sessions/{name}.jsonl"))
            refresh(ledger, {"HOME": str(home)})
        inp, _cached, out, _ = _totals(ledger)
        assert inp + out == 24_992_392 + 1_809_519
        assert oracle["naiveLastTokens"] == 52_068_085 > 2 * 24_992_392
        ledger.close()
        shutil.rmtree(home / ".codex")


def test_archived_copy_of_an_active_file(home: Path, ledger: Ledger) -> None:
    name = "rollout-2026-02-23T20-34-25-019c8bfe-ec25-79e0-97d7-bda6a9c575ff.jsonl"
    source = CODEX / "localpush" / "sessions" / name
    _install(home, (source, f"sessions/2026/02/23/{name}"), (source, f"archived_sessions/{name}"))
    refresh(ledger, {"HOME": str(home)})
    inp, _cached, out, _ = _totals(ledger)
    assert inp + out == 299_496


def test_legacy_totals_and_models(home: Path, ledger: Ledger) -> None:
    _install(home, (CODEX / "toktrack" / "sample-session.jsonl", "sessions/2026/01/15/s.jsonl"))
    report = refresh(ledger, {"HOME": str(home)})
    assert report.malformed == 0  # the invalid line holds no token_count: not a candidate
    rows = sorted(ledger.usage(sources=["codex"]), key=lambda r: r.ts_ms)
    assert [(r.model, r.input + r.cache_read, r.cache_read, r.output) for r in rows] == [
        ("o4-mini", 150, 25, 75), ("gpt-4.1", 350, 75, 125)]
    assert {r.session_id for r in rows} == {"session-001"}


def test_model_on_the_token_row_wins(home: Path, ledger: Ledger) -> None:
    _install(home, (CODEX / "ccusage" / "sessions" / "project-alpha" / "session-alpha.jsonl",
                    "sessions/2026/05/13/a.jsonl"))
    refresh(ledger, {"HOME": str(home)})
    rows = sorted(ledger.usage(sources=["codex"]), key=lambda r: r.ts_ms)
    assert [(r.model, r.input + r.cache_read, r.output) for r in rows] == [
        ("gpt-5.2-codex", 1000, 125), ("gpt-5.3-codex", 2500, 300)]
    coster = Coster(PriceBook(bundled_table()), "calculate")
    # gpt-5.2-codex at 1.75/14 per MTok with cached input at 0.175
    assert coster(rows[0]) == pytest.approx((750 * 1.75 + 250 * 0.175 + 125 * 14) / 1e6)


def test_appends_continue_the_running_total(home: Path, ledger: Ledger) -> None:
    name = "rollout-2026-02-23T12-41-04-019c8a4d-8f45-7010-8b5d-7fad920aa6f9.jsonl"
    data = (CODEX / "localpush" / "sessions" / name).read_bytes()
    dest = home / ".codex" / "sessions" / "2026" / "02" / "23" / name
    dest.parent.mkdir(parents=True)
    cut = data.rfind(b"\n", 0, len(data) // 2) + 1
    dest.write_bytes(data[:cut] + data[cut:cut + 100])  # half, and a partial line
    refresh(ledger, {"HOME": str(home)})
    dest.write_bytes(data)
    report = refresh(ledger, {"HOME": str(home)})
    assert report.files_rescanned == 0
    inp, _cached, out, _ = _totals(ledger)
    assert inp + out == 1_766_028


def test_latest_rate_limits_become_official_quota(home: Path, ledger: Ledger) -> None:
    _install(home, (CODEX / "vibecodingtracker" / "codex_session_rate_limits.jsonl",
                    "sessions/2026/06/09/r.jsonl"))
    refresh(ledger, {"HOME": str(home)})
    stored = json.loads(ledger.get_meta(codex.LIMITS_META) or "{}")
    windows = quota_windows(None, None, time.time(), stored)
    assert {(w["source"], w["window"], w["used_percent"], w["kind"]) for w in windows} == {
        ("codex", "5h", 42.0, "official"), ("codex", "7d", 69.0, "official")}


def test_zero_placeholder_keeps_the_real_figure() -> None:
    real = codex.latest_limits(None, 1_000_000, {
        "primary": {"used_percent": 30.0, "window_minutes": 300, "resets_at": 5000},
        "secondary": None})
    placeholder = codex.latest_limits(real, 1_100_000, {
        "primary": {"used_percent": 0.0, "window_minutes": 300, "resets_at": 6000}})
    assert placeholder is not None and placeholder["windows"][0]["used_percent"] == 30.0
    weekly_only = codex.classify({"primary": {"used_percent": 7, "window_minutes": 10080,
                                              "resets_in_seconds": 60}}, 2_000_000)
    assert weekly_only == [{"window": "7d", "used_percent": 7.0, "resets_at": 2060.0,
                            "window_s": 604800.0}]


@pytest.mark.skipif(not GENCORPUS.exists(), reason="../shared/tools not present")
def test_generated_codex_matches_ground_truth(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    subprocess.run([sys.executable, str(GENCORPUS), "--out", str(corpus), "--size", "6M",
                    "--seed", "4", "--codex-share", "0.5", "--end", "2026-11-20T12:00:00Z"],
                   check=True, capture_output=True)
    truth: dict[str, Any] = json.loads((corpus / "ground_truth.json").read_text())
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        refresh(ledger, {"HOME": str(corpus)})
        cal = Calendar(resolve_zone("UTC"))
        coster = Coster(PriceBook(bundled_table()), "calculate")
        got: dict[str, dict[str, list[float]]] = defaultdict(dict)
        for row in ledger.usage(sources=["codex"]):
            cell = got[cal.day(row.ts_ms)].setdefault(row.model, [0, 0, 0, 0.0])
            cell[0] += row.input + row.cache_read
            cell[1] += row.cache_read
            cell[2] += row.output
            cell[3] += coster(row) or 0.0
    want = truth["codex"]["daily"]
    assert sorted(got) == sorted(want)
    for day, models in want.items():
        for model, cell in models.items():
            mine = got[day][model]
            assert (mine[0], mine[1], mine[2]) == (cell["input"], cell["cached_input"],
                                                   cell["output"]), (day, model)
            assert mine[3] == pytest.approx(cell["cost"], rel=1e-9)


def test_per_response_records_replace_token_count_deltas(home: Path, ledger: Ledger) -> None:
    """Newer rollouts write one token_usage_record per response; from the first one on
    they are the usage and token_count rows only keep the running total."""
    def line(kind: str, payload: dict[str, Any], second: int) -> str:
        return json.dumps({"timestamp": f"2026-10-01T10:00:{second:02d}Z", "type": kind,
                           "payload": payload}) + "\n"

    def count(total: int) -> dict[str, Any]:
        usage = {"input_tokens": total, "cached_input_tokens": 0, "output_tokens": 0,
                 "total_tokens": total}
        return {"type": "token_count", "info": {"total_token_usage": usage}}

    record = {"input_tokens": 70, "cached_input_tokens": 20, "output_tokens": 5,
              "total_tokens": 75}
    text = (line("session_meta", {"id": "s-rec"}, 0)
            + line("turn_context", {"model": "gpt-5"}, 1)
            + line("event_msg", count(100), 2)  # before any record: a delta of 100
            + line("token_usage_record", {"response_id": "resp_1", "usage": record}, 3)
            + line("event_msg", count(175), 4)  # the same response as a snapshot: skipped
            + line("token_usage_record", {"response_id": "resp_1", "usage": record}, 5))
    dest = home / ".codex" / "sessions" / "2026" / "10" / "01" / "rollout-x.jsonl"
    dest.parent.mkdir(parents=True)
    dest.write_text(text)
    refresh(ledger, {"HOME": str(home)})
    inp, cached, out, rows = _totals(ledger)
    assert (inp, cached, out, rows) == (100 + 70, 20, 5, 2)


def test_rate_limits_from_both_scanner_threads_are_kept_safely() -> None:
    """Both scanner threads report Codex rate limits; the trimming sort once raced an
    append from the other thread ("list modified during sort") and failed a cold scan."""
    import sys
    import threading

    from tokline.engine.refresh import NewestLimits

    limits = NewestLimits()
    errors: list[BaseException] = []

    def hammer(offset: int) -> None:
        try:
            for n in range(20_000):
                limits.add(offset + 2 * n, {"n": n})
        except BaseException as exc:
            errors.append(exc)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert errors == []
    newest = max(ts for ts, _ in limits.items)
    assert newest == 3 + 2 * 19_999 and len(limits.items) <= 65
