"""The command line: report shapes, errors as one line, pricing update, demo, doctor."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_fixture_projects

from tokline import cli, paths

SPOTTER = "-home-USER-projects-spotter-worktrees-spotter-4te"
FIELDS = {"input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens",
          "total_tokens", "cost_usd", "unpriced"}


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert cli.main(list(args)) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_daily_json_shape(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy_fixture_projects(home, "claude", "spotter", "projects", SPOTTER)
    out = run_json(capsys, "daily", "--json", "--tz", "UTC")
    assert [r["period"] for r in out["rows"]] == ["2026-02-12"]
    row = out["rows"][0]
    assert set(row) >= FIELDS and all(isinstance(row[f], int) for f in FIELDS - {
        "cost_usd", "unpriced"})
    assert (row["input_tokens"], row["output_tokens"], row["cache_creation_tokens"],
            row["cache_read_tokens"]) == (2445, 2034, 197529, 335139)
    assert row["total_tokens"] == 2445 + 2034 + 197529 + 335139
    assert {m["model"] for m in row["models"]} >= {"claude-opus-4-6"}
    assert all(set(m) >= FIELDS for m in row["models"])
    assert set(out["totals"]) >= FIELDS
    assert out["totals"]["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in out["rows"]))


def test_local_day_follows_the_time_zone(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy_fixture_projects(home, "claude", "toktrack", "claude-sample.jsonl")  # 10:00-10:15Z
    assert [r["period"] for r in run_json(capsys, "daily", "--json", "--tz", "UTC")["rows"]] \
        == ["2026-01-15"]
    assert [r["period"] for r in run_json(
        capsys, "daily", "--json", "--tz", "Pacific/Kiritimati")["rows"]] == ["2026-01-16"]


def test_synthetic_messages_counted_apart_from_models(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The toktrack sample holds one <synthetic> line among 4 requests: it is a request of
    # the day (as ccusage counts it) but no model's, so every row says how many such
    # requests it holds, and the models' requests plus those add up to the row's.
    copy_fixture_projects(home, "claude", "toktrack", "claude-sample.jsonl")
    daily = run_json(capsys, "daily", "--json", "--tz", "UTC")
    for row in [*daily["rows"], daily["totals"]]:
        assert row["requests"] == 4 and row["synthetic_requests"] == 1
        assert "<synthetic>" not in {m["model"] for m in row["models"]}
        assert sum(m["requests"] for m in row["models"]) + row["synthetic_requests"] \
            == row["requests"]
    models = run_json(capsys, "models", "--json")
    assert "<synthetic>" not in {r["key"] for r in models["rows"]}
    assert models["totals"]["synthetic_requests"] == 1
    assert sum(r["requests"] for r in models["rows"]) + 1 == models["totals"]["requests"]
    assert cli.main(["models", "--offline"]) == 0
    table = capsys.readouterr().out
    assert "<synthetic>" not in table and "include 1 synthetic message" in table


@pytest.mark.parametrize("report", ["weekly", "monthly", "session", "projects", "models"])
def test_every_report_totals_the_same(home: Path, capsys: pytest.CaptureFixture[str],
                                      report: str) -> None:
    copy_fixture_projects(home, "claude", "spotter", "projects", SPOTTER)
    daily = run_json(capsys, "daily", "--json")["totals"]
    assert run_json(capsys, report, "--json")["totals"]["total_tokens"] == daily["total_tokens"]


def test_weekly_and_monthly_labels(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy_fixture_projects(home, "claude", "spotter", "projects", SPOTTER)
    assert run_json(capsys, "weekly", "--json", "--tz", "UTC")["rows"][0]["period"] == "2026-W07"
    assert run_json(capsys, "monthly", "--json", "--tz", "UTC")["rows"][0]["period"] == "2026-02"


def _unpriced_session(home: Path, inp: int, out: int) -> None:
    """One response from a model the price table does not know."""
    proj = home / ".claude" / "projects" / "p"
    proj.mkdir(parents=True)
    (proj / "s.jsonl").write_text(
        '{"type":"assistant","timestamp":"2026-11-01T10:00:00Z","requestId":"r",'
        '"message":{"id":"m","model":"kimi-for-coding","usage":{"input_tokens":'
        f'{inp},"output_tokens":{out}}}}}}}\n')


def test_unpriced_model_is_flagged(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _unpriced_session(home, 10, 5)
    out = run_json(capsys, "daily", "--json")
    assert out["rows"][0]["unpriced"] is True and out["unpriced_models"] == ["kimi-for-coding"]
    assert out["rows"][0]["total_tokens"] == 15
    assert cli.main(["daily"]) == 0
    assert "+?" in capsys.readouterr().out


def test_since_until_filter(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy_fixture_projects(home, "claude", "ccusage", "projects")
    rows = run_json(capsys, "daily", "--json", "--tz", "UTC", "--since", "2026-01-10",
                    "--until", "20260131")["rows"]
    assert [r["period"] for r in rows] == ["2026-01-10"]


def test_bad_date_is_one_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["daily", "--since", "yesterday"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--since" in err


def test_corrupt_ledger_says_how_to_rebuild(home: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    ledger = paths.ledger_file()
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(b"garbage" * 1000)
    assert cli.main(["daily"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "tokline scan --rebuild" in err
    copy_fixture_projects(home, "claude", "spotter", "projects", SPOTTER)
    assert cli.main(["scan", "--rebuild"]) == 0
    assert "usage rows in the ledger" in capsys.readouterr().out
    assert list(ledger.parent.glob("ledger.sqlite3.old-*"))
    assert run_json(capsys, "daily", "--json")["totals"]["output_tokens"] == 2034


@pytest.mark.parametrize(("text", "key"), [
    ('timezone = "Mars/Olympus"', "timezone"),
    ("week_start = 3", "week_start"),
    ('cost_mode = "guess"', "cost_mode"),
    ("[blocks]\nhours = 99", "blocks.hours"),
    ('[pricing.overrides."m"]\ninput = -1\noutput = 1', 'pricing.overrides."m".input'),
    ("colour = 1", "colour"),
    ("timezone = ", "not valid TOML"),
])
def test_bad_config_names_the_key(home: Path, capsys: pytest.CaptureFixture[str], text: str,
                                  key: str) -> None:
    cfg = paths.config_file()
    cfg.parent.mkdir(parents=True)
    cfg.write_text(text + "\n")
    assert cli.main(["daily"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and key in err


def test_price_override_from_config(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = paths.config_file()
    cfg.parent.mkdir(parents=True)
    cfg.write_text('cost_mode = "calculate"\n[pricing.overrides."kimi-for-coding"]\n'
                   "input = 1.0\noutput = 2.0\n")
    _unpriced_session(home, 1_000_000, 1_000_000)
    assert run_json(capsys, "daily", "--json")["totals"]["cost_usd"] == pytest.approx(3.0)


class _Prices(http.server.BaseHTTPRequestHandler):
    body = b"{}"
    status = 200
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def price_server() -> Iterator[tuple[str, type[_Prices]]]:
    handler = type("Handler", (_Prices,), {})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/prices.json", handler
    server.shutdown()
    server.server_close()


def test_pricing_update_keeps_the_last_good_table(home: Path, capsys: pytest.CaptureFixture[str],
                                                  price_server: tuple[str, type[_Prices]]
                                                  ) -> None:
    url, handler = price_server
    cfg = paths.config_file()
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f'[pricing]\nurl = "{url}"\nttl_hours = 24\n')
    handler.body = json.dumps({"my-model": {"input_cost_per_token": 1e-6,
                                            "output_cost_per_token": 2e-6,
                                            "mode": "chat"}}).encode()
    assert cli.main(["pricing", "update"]) == 0
    assert cli.main(["pricing", "show", "my-model"]) == 0
    assert "my-model" in capsys.readouterr().out
    assert cli.main(["pricing", "update"]) == 0  # within the ttl: no request
    assert handler.hits == 1
    handler.status, handler.body = 500, b"oops"
    assert cli.main(["pricing", "update", "--force"]) == 1
    err = capsys.readouterr().err
    assert "keeping the last fetched table" in err and err.strip().count("\n") == 0
    assert cli.main(["pricing", "show", "my-model"]) == 0


def test_doctor_reports(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy_fixture_projects(home, "claude", "spotter", "projects", SPOTTER)
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "14 usage rows from 3 files" in out and "no problems found" in out
    assert f"claude logs: {home / '.claude' / 'projects'}" in out
    for source in ("codex", "gemini", "opencode", "copilot"):
        assert f"{source} logs: none found in {home}" in out


def test_demo_runs_in_a_private_home(home: Path) -> None:
    before = sorted(p.name for p in home.iterdir())
    out = subprocess.run([sys.executable, "-m", "tokline", "demo"], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert "Daily report" in out and "ACTIVE" in out and "$" in out
    assert "Claude 5h 38% (resets " in out and " today · 5h $" in out
    assert sorted(p.name for p in home.iterdir()) == before
