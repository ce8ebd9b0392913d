"""Real and upstream fixtures, with totals worked out by hand from the files."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, claude_projects, copy_fixture_projects, do_refresh, stored, totals

from tokline.accounting.costmode import Coster
from tokline.accounting.pricing import PriceBook, bundled_table
from tokline.ledger.store import Ledger

SPOTTER = "-home-USER-projects-spotter-worktrees-spotter-4te"


def test_spotter_streamed_messages_keep_the_final_output(home: Path, ledger: Ledger) -> None:
    # formats.md §1.7 oracle: 46 assistant lines, 14 keys; the per-key maximum gives
    # input 2,445 / output 2,034 / cache writes 197,529 / cache reads 335,139.
    # Summing every line would give 16,473 / 2,163 / 372,159 / 980,419, and the
    # agent_progress copies in the main file would count the subagent twice.
    copy_fixture_projects(home, "claude", "spotter", "projects", SPOTTER)
    report = do_refresh(ledger, home)
    assert report.files_scanned == 3
    assert report.malformed == 0
    assert totals(ledger) == (2445, 2034, 197529, 335139, 14)


def test_spotter_subagent_rows_belong_to_the_parent_session(home: Path, ledger: Ledger) -> None:
    copy_fixture_projects(home, "claude", "spotter", "projects", SPOTTER)
    do_refresh(ledger, home)
    sessions = {row.session_id for row in stored(ledger)}
    assert sessions == {"ae4a77f8-aedd-4bc1-888f-c94edc91af04"}
    assert {row.project for row in stored(ledger)} == {
        "/home/USER/projects/spotter-worktrees/spotter-4te"}


def test_toktrack_sample_edge_lines(home: Path, ledger: Ledger) -> None:
    # Lines: a user line, msg-001 (100/50/10/20), a non-JSON line (no usage bytes, so not
    # even a candidate), msg-002 (500/200, costUSD 0.025), a line without ids (150/75)
    # and a <synthetic> line with zero usage.
    copy_fixture_projects(home, "claude", "toktrack", "claude-sample.jsonl")
    do_refresh(ledger, home)
    assert totals(ledger) == (750, 325, 10, 20, 4)
    rows = stored(ledger)
    coster = Coster(PriceBook(bundled_table()), "auto")
    costs = {row.model: 0.0 for row in rows}
    for row in rows:
        cost = coster(row)
        assert cost is not None
        costs[row.model] += cost
    # sonnet-4 at 3/15/3.75/0.3 per MTok: msg-001 = 0.0010935, the id-less line = 0.001575
    assert costs["claude-sonnet-4-20250514"] == pytest.approx(0.0010935 + 0.001575)
    assert costs["claude-opus-4-20250514"] == pytest.approx(0.025)  # its costUSD
    assert costs["<synthetic>"] == 0.0


def test_ccusage_fixtures_without_type_use_cost_usd(home: Path, ledger: Ledger) -> None:
    copy_fixture_projects(home, "claude", "ccusage", "projects")
    do_refresh(ledger, home)
    rows = stored(ledger)
    assert totals(ledger) == (100 + 200 + 300 + 50 + 80, 50 + 75 + 125 + 25 + 35,
                              25 + 50 + 0 + 5 + 10, 10 + 20 + 40 + 15 + 25, 5)
    auto = Coster(PriceBook(bundled_table()), "auto")
    assert sum(auto(r) or 0 for r in rows) == pytest.approx(0.12 + 0.34 + 0.56 + 0.03 + 0.04)
    fast = [r for r in rows if r.flags & 4]
    assert len(fast) == 1 and fast[0].input == 200


def test_representative_messages_old_schema(home: Path, ledger: Ledger) -> None:
    copy_fixture_projects(home, "claude", "claude-code-log", "representative_messages.jsonl")
    report = do_refresh(ledger, home)
    assert report.malformed == 0
    lines = (FIXTURES / "claude" / "claude-code-log" / "representative_messages.jsonl"
             ).read_text().splitlines()
    import json

    expected = [json.loads(x) for x in lines]
    wanted = [o for o in expected if o.get("type") == "assistant"
              and isinstance(o.get("message", {}).get("usage"), dict)]
    assert len(stored(ledger)) == len({(o["message"].get("id"), o.get("requestId"))
                                      for o in wanted})
    assert totals(ledger)[0] == sum(
        {(o["message"].get("id"), o.get("requestId")): o["message"]["usage"].get(
            "input_tokens", 0) for o in wanted}.values())


def test_missing_roots_are_silent(home: Path, ledger: Ledger) -> None:
    report = do_refresh(ledger, home)
    assert report.files_seen == 0 and not report.problems


def test_claude_config_dir_list(home: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch,
                                tmp_path: Path) -> None:
    first = tmp_path / "a"
    second = tmp_path / "b" / "projects"
    (first / "projects" / "p").mkdir(parents=True)
    (second / "q").mkdir(parents=True)
    src = FIXTURES / "claude" / "toktrack" / "claude-sample.jsonl"
    (first / "projects" / "p" / "s.jsonl").write_bytes(src.read_bytes())
    (second / "q" / "t.jsonl").write_bytes(
        (FIXTURES / "claude" / "spotter" / "misc" / "short.jsonl").read_bytes())
    from tokline.engine.refresh import refresh

    report = refresh(ledger, {"HOME": str(home), "CLAUDE_CONFIG_DIR": f"{first}, {second}"})
    assert report.files_seen == 2
    claude_projects(home)  # the default root is ignored while the variable is set
    assert totals(ledger)[4] > 4


def test_requestless_gateway_lines_do_not_collide(home: Path, ledger: Ledger) -> None:
    """Gateways without requestId: every message of a session keys apart (ccusage#985)."""
    import json

    proj = claude_projects(home) / "gw"
    proj.mkdir()
    lines = [json.dumps({"type": "assistant", "timestamp": "2026-11-01T10:00:00Z",
                         "sessionId": "s", "message": {"id": f"chatcmpl-{i}", "model": "kimi",
                                                       "usage": {"input_tokens": 1}}})
             for i in range(3000)]
    (proj / "s.jsonl").write_text("\n".join(lines) + "\n")
    do_refresh(ledger, home)
    assert totals(ledger)[0] == 3000
