"""The status fast path, the snapshot, stale-while-revalidate and budgets."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import noon_zone
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tokline import cli
from tokline.commands import setup
from tokline.commands.demo import install_sample
from tokline.prompt import fields, statefiles

HEAVY = {"sqlite3", "_sqlite3", "json", "json.decoder", "tomllib", "tomli", "keyring",
         "tokline.engine._claude_c", "tokline.engine._codex_c", "tokline.engine._keys_c",
         "tokline.prompt._manifest_c", "argparse", "re", "typing", "pathlib", "zoneinfo",
         "subprocess",
         "tokline.ledger.store", "tokline.snapshot.build", "concurrent.futures"}


def _tokline(home: Path, *args: str, env: dict[str, str] | None = None,
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tokline", *args], capture_output=True,
                          text=True, timeout=120, env=env or dict(os.environ), input=stdin)


@pytest.fixture
def sample(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # the sample's last hours are today's wherever it is run (tokline reads TZ by name)
    monkeypatch.setenv("TZ", noon_zone())
    install_sample(home)
    assert cli.main(["scan", "-q"]) == 0
    return home


def _lines_path() -> Path:
    return Path(statefiles.state_dir()) / statefiles.LINES


def _age(seconds: float) -> None:
    """Make the status ``seconds`` old: the head's CHECKED, which every reader takes the
    age from (tokline/prompt/statefiles.py), and the files' mtimes."""
    then = time.time() - seconds
    path = _lines_path()
    head, rest = path.read_text().split("\n", 1)
    parts = head.split()
    parts[6] = f"{int(parts[6]) - int(seconds)}"
    path.write_text(" ".join(parts) + "\n" + rest)
    for name in (statefiles.LINES, statefiles.SNAPSHOT):
        os.utime(Path(statefiles.state_dir()) / name, (then, then))


def test_status_prints_the_pre_rendered_line(sample: Path) -> None:
    out = _tokline(sample, "status").stdout.strip()
    assert out.startswith("$") and " today" in out and "5h $" in out and "left)" in out
    snap = json.loads((Path(statefiles.state_dir()) / "snapshot.json").read_text())
    assert out.startswith(f"${snap['today']['cost_usd']:,.2f} today")
    assert oct(_lines_path().stat().st_mode & 0o777) == "0o600"


def imported(*args: str, stdin: str | None = None) -> tuple[set[str], str]:
    """Modules a command imports beyond what the interpreter's start-up (site, an
    editable install's finder) already loads."""
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-X", "importtime", *argv], input=stdin,
                              capture_output=True, text=True, check=True)

    def names(proc: subprocess.CompletedProcess[str]) -> set[str]:
        return {ln.rsplit("|", 1)[-1].strip() for ln in proc.stderr.splitlines() if "|" in ln}

    proc = run(*args)
    return names(proc) - names(run("-c", "pass")), proc.stdout


def test_fresh_status_imports_nothing_heavy(sample: Path) -> None:
    loaded, out = imported("-c", "from tokline.cli import main; raise SystemExit(main(['status']))")
    assert "$" in out
    assert "tokline.prompt.status" in loaded
    assert not loaded & HEAVY, loaded & HEAVY


def test_fresh_status_starts_no_refresh(sample: Path, tmp_path: Path) -> None:
    log = tmp_path / "refreshes.log"
    env = {**os.environ, "TOKLINE_REFRESH_LOG": str(log)}
    for _ in range(3):
        _tokline(sample, "status", env=env)
    time.sleep(0.5)
    assert not log.exists()


def test_many_prompts_on_a_stale_status_start_one_refresh(sample: Path, tmp_path: Path) -> None:
    _age(600)
    log = tmp_path / "refreshes.log"
    env = {**os.environ, "TOKLINE_REFRESH_LOG": str(log)}
    procs = [subprocess.Popen([sys.executable, "-m", "tokline", "status"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(50)]
    outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert all(o.startswith("$") for o in outputs)  # every prompt answered at once
    deadline = time.time() + 20
    while time.time() < deadline and (not log.exists() or
                                      (Path(statefiles.state_dir()) / statefiles.LOCK).exists()):
        time.sleep(0.1)
    assert len(log.read_text().splitlines()) == 1
    assert time.time() - _lines_path().stat().st_mtime < 30  # the refresh marked it current


def test_very_old_status_says_stale(sample: Path) -> None:
    _age(3 * 3600)
    assert "(stale 3h)" in _tokline(sample, "status").stdout


def test_the_day_ending_shows_nothing_of_yesterday(sample: Path) -> None:
    """A snapshot past its day's end shows the next day's empty figures at once."""
    path = _lines_path()
    head, *rest = path.read_text().split("\n")
    parts = head.split()
    first_end = float(parts[7])
    past = time.time() - 1
    # Move every boundary into the past, keeping their order.
    shifted = [f"{past - (len(parts) - 8 - i):.0f}" for i in range(len(parts) - 7)]
    path.write_text(" ".join(parts[:7] + shifted) + "\n" + "\n".join(rest))
    assert first_end > past
    out = _tokline(sample, "status").stdout
    assert out.startswith("$0.00 today") and "5h" not in out


def test_templates_targets_and_json(sample: Path) -> None:
    tmux = _tokline(sample, "status", "--format", "{today.cost} #{block.left}", "--target",
                    "tmux").stdout.strip()
    assert tmux.startswith("$") and "##" in tmux
    snap = json.loads(_tokline(sample, "status", "--json").stdout)
    for name in ("today", "week", "month", "block"):
        assert {"cost_usd", "total_tokens", "unpriced"} <= set(snap[name])
    assert {"start", "end", "remaining_minutes", "burn_rate_usd_per_hour",
            "projected_cost_usd"} <= set(snap["block"])
    assert isinstance(snap["quota"], list) and "stale_seconds" in snap
    bad = _tokline(sample, "status", "--format", "{today.price}")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "today.price" in bad.stderr


def test_no_color_and_bash_escaping(sample: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "tokline" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("[budget]\ndaily_usd = 0.5\n[status]\nnotify = false\n"
                   'template = "{today.cost} [{budget.daily.pct}]"\n')
    assert cli.main(["scan"]) == 0
    colored = _tokline(sample, "status", "--target", "bash").stdout
    assert colored.startswith("\001\033[31m\002$")
    plain = _tokline(sample, "status", "--target", "bash", env=env).stdout
    assert "\033" not in plain and "\001" not in plain and plain.startswith("$")


def test_budget_notifies_once_per_period(sample: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    shim = bin_dir / "notify-send"
    shim.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "tokline" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("[budget]\ndaily_usd = 0.01\nmonthly_usd = 100000\n")
    for _ in range(3):
        assert cli.main(["daily", "--json"]) == 0
    lines = calls.read_text().splitlines()
    assert len(lines) == 1 and "daily budget" in lines[0]


def test_statusline_fields_of_the_fixture(sample: Path) -> None:
    from conftest import FIXTURES

    payload = json.loads((FIXTURES / "claude-statusline" / "payload.example.json").read_text())
    payload["rate_limits"]["five_hour"]["resets_at"] = time.time() + 3600
    out = _tokline(sample, "statusline", stdin=json.dumps(payload)).stdout.strip()
    parts = out.split(" · ")
    assert parts[0] == "Opus 4.6 (1M context)" and parts[1] == "$0.01 session"
    assert parts[2].endswith(" today") and parts[3].startswith("5h $")
    assert "ctx 8%" in parts and parts[-1].startswith("5h 42% ↻")
    assert parts[-1].endswith("7d 0%")  # its reset time (2026-03) has passed
    state = json.loads((Path(statefiles.state_dir()) / "claude-status.json").read_text())
    assert state["rate_limits"]["five_hour"]["used_percentage"] == 42


@pytest.mark.parametrize("payload", [
    "", "not json", "[]", "null", '{"model": null, "cost": null, "context_window": null}',
    '{"model": {"id": 5}, "cost": {"total_cost_usd": "lots"}, "rate_limits": {"five_hour": 3}}',
    '{"rate_limits": {"five_hour": {"used_percentage": null}}, "future": {"x": [1, {}]}}',
    '{"context_window": {"context_window_size": 0, "current_usage": {"input_tokens": 5}}}',
])
def test_statusline_survives_odd_payloads(sample: Path, payload: str) -> None:
    proc = _tokline(sample, "statusline", stdin=payload)
    assert proc.returncode == 0 and " today" in proc.stdout and "left)" in proc.stdout
    assert proc.stderr == ""


def test_statusline_counts_its_sessions_turn_before_printing(sample: Path) -> None:
    # Claude Code renders the line right after a turn and not when a detached refresh is
    # done, so a transcript written after the snapshot is scanned first, in the call.
    transcript = next((sample / ".claude" / "projects").rglob("*.jsonl"))
    payload = json.dumps({"session_id": "s", "transcript_path": str(transcript),
                          "cost": {"total_cost_usd": 1.5}})
    before = json.loads((Path(statefiles.state_dir()) / "snapshot.json").read_text())
    first = _tokline(sample, "statusline", stdin=payload).stdout
    assert f"{fields.money(before['today']['cost_usd'])} today" in first
    stamp = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    with transcript.open("a") as fh:  # $0.30 of input and $1.50 of output for sonnet 4.5
        fh.write(json.dumps({
            "type": "assistant", "timestamp": stamp, "sessionId": "s", "requestId": "req_turn",
            "message": {"id": "msg_turn", "model": "claude-sonnet-4-5-20250929",
                        "usage": {"input_tokens": 100_000, "output_tokens": 100_000}}}) + "\n")
    later = time.time() + 1  # newer than the snapshot, whatever the file system's clock
    os.utime(transcript, (later, later))
    after = _tokline(sample, "statusline", stdin=payload).stdout
    want = fields.money(before["today"]["cost_usd"] + 1.8)
    assert f"{want} today" in after, after
    # an unrelated payload (no transcript, or one older than the snapshot) scans nothing
    os.utime(transcript, (later - 3600, later - 3600))
    loaded, _ = imported("-m", "tokline", "statusline", stdin=payload)
    assert "tokline.engine.refresh" not in loaded


def test_statusline_never_scans(home: Path) -> None:
    from conftest import FIXTURES

    payload = (FIXTURES / "claude-statusline" / "statusline-test.json").read_text()
    loaded, out = imported("-m", "tokline", "statusline", stdin=payload)
    assert not loaded & {"sqlite3", "tokline.ledger.store", "tokline.engine._claude_c",
                         "tokline.engine._codex_c", "tokline.engine.refresh"}
    assert out.strip() == "Sonnet 4 · $0.06 session"


@pytest.fixture
def launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process runs as an installed launcher in a directory not on PATH (a venv)."""
    path = tmp_path / "venv bin" / "tokline"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(path)])
    return path


def test_setup_claude_is_idempotent_and_keeps_a_backup(home: Path, launcher: Path) -> None:
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{"theme": "dark"}')
    assert cli.main(["setup", "claude"]) == 0
    data = json.loads(settings.read_text())
    # the launcher by its absolute path (Claude Code's shell may not have it on PATH)
    assert data["theme"] == "dark" \
        and data["statusLine"]["command"] == f"'{launcher}' statusline"
    # re-run on a timer too (Claude Code 2.1), not only on Claude Code's own events
    assert data["statusLine"]["refreshInterval"] == setup.REFRESH_INTERVAL_S
    backups = list(settings.parent.glob("settings.json.bak-*"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == {"theme": "dark"}
    assert cli.main(["setup", "claude"]) == 0
    assert len(list(settings.parent.glob("settings.json.bak-*"))) == 1
    assert json.loads(settings.read_text()) == data


def test_setup_claude_respects_another_tools_line(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str],
                                                  launcher: Path) -> None:
    config = home / "cc"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config))
    config.mkdir()
    (config / "settings.json").write_text(
        '{"statusLine": {"type": "command", "command": "ccstatusline"}}')
    assert cli.main(["setup", "claude"]) == 1
    assert "--force" in capsys.readouterr().err
    assert cli.main(["setup", "claude", "--force"]) == 0
    assert json.loads((config / "settings.json").read_text())["statusLine"]["command"] \
        == f"'{launcher}' statusline"


def test_setup_claude_updates_an_earlier_bare_tokline_line(home: Path, launcher: Path) -> None:
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{"statusLine": {"type": "command", "command": "tokline statusline",'
                        ' "padding": 2}}')
    assert cli.main(["setup", "claude"]) == 0  # tokline's own line: no --force needed
    assert json.loads(settings.read_text())["statusLine"] == {
        "type": "command", "command": f"'{launcher}' statusline", "padding": 2,
        "refreshInterval": setup.REFRESH_INTERVAL_S}
    # an interval the user chose stays, and then the line is already as wanted
    line = json.loads(settings.read_text())
    line["statusLine"]["refreshInterval"] = 5
    settings.write_text(json.dumps(line))
    assert cli.main(["setup", "claude"]) == 0
    assert json.loads(settings.read_text()) == line


def test_time_left_counts_down_without_a_refresh(sample: Path) -> None:
    from tokline.prompt import fields
    from tokline.prompt import status as fast

    first = _tokline(sample, "status").stdout
    head = _lines_path().read_text().split("\n")[0].split()
    block_end = float(head[5])
    minutes = int((block_end - time.time()) // 60)
    assert f"({fast.time_left(minutes * 60 + 30)} left)" in first or \
        f"({fast.time_left((minutes + 1) * 60)} left)" in first
    assert fast.time_left(7500) == fields.duration(125) == "2h05m"
    assert fast.time_left(59) == fields.duration(0.9) == "0m"


def test_snapshot_periods_match_the_ledger_after_appends(sample: Path) -> None:
    """Week and month reuse the sums of earlier days; they must equal a full sum."""
    from tokline.ledger.store import Ledger
    from tokline.prompt.uptodate import ledger_path

    log = next(sample.rglob("*.jsonl"))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 60))
    for i in range(3):
        with log.open("a") as fh:
            fh.write(json.dumps({
                "type": "assistant", "timestamp": stamp, "requestId": f"rq{i}",
                "sessionId": "s", "message": {"id": f"mx{i}", "model": "claude-sonnet-4-5-20250929",
                                              "usage": {"input_tokens": 1000,
                                                        "output_tokens": 500}}}) + "\n")
        assert cli.main(["scan", "-q"]) == 0
        snap = json.loads((Path(statefiles.state_dir()) / "snapshot.json").read_text())
        with Ledger(ledger_path()) as led:
            for name in ("today", "week", "month"):
                full = led.sums(snap[name]["start"] * 1000, snap[name]["end"] * 1000)
                assert snap[name]["total_tokens"] == sum(t[0] + t[1] + t[2] + t[3]
                                                         for t in full.values())
                assert snap[name]["cost_usd"] == pytest.approx(
                    sum(t[5] for t in full.values()), abs=1e-6)


def test_snapshot_periods_break_down_by_model(sample: Path) -> None:
    snap = json.loads((Path(statefiles.state_dir()) / "snapshot.json").read_text())
    for name in ("today", "month"):
        models = snap[name]["models"]
        assert "<synthetic>" not in models
        assert sum(m["requests"] for m in models.values()) + snap[name]["synthetic_requests"] \
            == snap[name]["requests"]
        assert sum(m["total_tokens"] for m in models.values()) <= snap[name]["total_tokens"]
        assert sum(m["cost_usd"] for m in models.values()) == pytest.approx(
            snap[name]["cost_usd"], abs=1e-5)


def test_partials_of_an_older_layout_are_recomputed(sample: Path) -> None:
    path = Path(statefiles.state_dir()) / "snapshot.json"
    snap = json.loads(path.read_text())
    old = snap["partials"]
    old["key"] = old["key"].split(":", 1)[1]  # the key as version 1 wrote it
    old["month"] = {"claude": [1, 1, 1, 1, 0, 1.0, 0, 1]}  # per source, not source+model
    path.write_text(json.dumps(snap))
    append_line = next((sample / ".claude").rglob("*.jsonl"))
    with append_line.open("a") as fh:
        fh.write(json.dumps({"type": "assistant", "requestId": "old", "sessionId": "s",
                             "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                             "message": {"id": "old", "model": "claude-opus-4-5",
                                         "usage": {"input_tokens": 1}}}) + "\n")
    assert cli.main(["scan", "-q"]) == 0
    fresh = json.loads(path.read_text())
    assert fresh["partials"]["key"].startswith("2:")
    assert fresh["month"]["total_tokens"] > 4


def _assistant(ts: str, rid: str, inp: int, out: int) -> str:
    return json.dumps({"type": "assistant", "timestamp": ts, "requestId": rid, "sessionId": "s",
                       "message": {"id": "m" + rid, "model": "claude-sonnet-4-5-20250929",
                                   "usage": {"input_tokens": inp, "output_tokens": out}}}) + "\n"


def test_week_and_month_see_rows_written_for_earlier_days(home: Path) -> None:
    """The kept sums of the days before today are dropped when a refresh writes a row for
    one of them: a new one, or a copy that changes an older row (a stream resumed later)."""
    from tokline.accounting.pricing import price_book
    from tokline.config import parse
    from tokline.engine.refresh import refresh
    from tokline.ledger.store import Ledger
    from tokline.prompt.uptodate import ledger_path
    from tokline.snapshot import build as snapshot
    from tokline.snapshot import lines as status_lines

    now = 1_779_278_400.0  # Wednesday 2026-05-20 12:00 UTC
    cfg = parse({"timezone": "UTC"})
    book = price_book()
    log = home / ".claude" / "projects" / "p" / "s.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text(_assistant("2026-05-20T09:00:00Z", "today", 10, 1))
    env = dict(os.environ)

    def publish() -> dict[str, object]:
        with Ledger(ledger_path()) as led:
            refresh(led, env, prices=book)
            snap = snapshot.build(led, cfg, book, env, now_s=now)
            status_lines.write(snap, cfg, env)
            for name in ("week", "month"):
                start, end = snap[name]["start"] * 1000, snap[name]["end"] * 1000
                full = led.sums(start, end, cfg.cost_mode)
                assert snap[name]["input_tokens"] == sum(t[0] for t in full.values()), name
                assert snap[name]["output_tokens"] == sum(t[1] for t in full.values()), name
        return snap

    assert publish()["week"]["input_tokens"] == 10
    with log.open("a") as fh:  # Tuesday, found after Wednesday's snapshot
        fh.write(_assistant("2026-05-19T10:00:00Z", "tue", 100, 1))
    assert publish()["week"]["input_tokens"] == 110
    with log.open("a") as fh:  # Tuesday's response again, with its final output count
        fh.write(_assistant("2026-05-19T10:00:05Z", "tue", 100, 50))
    snap = publish()
    assert snap["week"]["output_tokens"] == snap["month"]["output_tokens"] == 51
    assert snap["today"]["input_tokens"] == 10


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40 * 3_600_000), min_size=1, max_size=60), st.data())
def test_a_block_continued_from_a_prefix_equals_the_block_of_all(stamps: list[int],
                                                                  data: st.DataObject) -> None:
    from tokline.accounting.blocks import walk

    ordered = sorted(stamps)
    cut = data.draw(st.integers(1, len(ordered)))
    prefix = walk(ordered[:cut], 5)[0]
    assert prefix is not None
    # The continuation re-reads from the block's first activity on, as the snapshot does.
    start, first, last = prefix
    for resume in (first, last):
        rest = [t for t in ordered if t >= resume]
        assert walk(rest, 5, (start, first, resume))[0] == walk(ordered, 5)[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 60 * 3_600_000), min_size=1, max_size=60),
       st.lists(st.integers(0, 60 * 3_600_000), min_size=1, max_size=3))
def test_a_walk_resumed_at_its_marks_ends_in_the_same_block(stamps: list[int],
                                                           marks: list[int]) -> None:
    """The state a walk over the timestamps leaves at a mark, resumed over the timestamps
    from the mark on, leads to the block of all of them; so does a chain of such resumes."""
    from tokline.accounting.blocks import NO_BLOCK, walk

    ordered = sorted(stamps)
    whole, _ = walk(ordered, 5)
    state, point = NO_BLOCK, 0
    for mark in sorted(marks):
        _, at_mark = walk([t for t in ordered if t >= point], 5, state, mark)
        state, point = at_mark, mark
        assert walk([t for t in ordered if t >= point], 5, state)[0] == whole


def test_snapshot_block_follows_appends_and_late_rows(home: Path) -> None:
    from tokline.accounting import blocks
    from tokline.accounting.pricing import price_book
    from tokline.config import parse
    from tokline.engine.refresh import refresh
    from tokline.ledger.store import Ledger
    from tokline.prompt.uptodate import ledger_path
    from tokline.snapshot import build as snapshot
    from tokline.snapshot import lines as status_lines

    now = 1_779_278_400.0  # 2026-05-20 12:00 UTC
    cfg = parse({"timezone": "UTC"})
    book = price_book()
    log = home / ".claude" / "projects" / "p" / "s.jsonl"
    log.parent.mkdir(parents=True)
    log.touch()
    env = dict(os.environ)
    steps = [["2026-05-20T01:10:00Z"], ["2026-05-20T02:00:00Z", "2026-05-20T04:30:00Z"],
             ["2026-05-20T07:00:00Z"],  # past 01:00 + 5h: a new block at 07:00
             ["2026-05-20T06:20:00Z"],  # found late: the block starts at 06:00 instead
             ["2026-05-20T11:50:00Z"]]  # past 06:00 + 5h: a new block at 11:00
    starts = []
    for i, stamps in enumerate(steps):
        with log.open("a") as fh:
            for j, stamp in enumerate(stamps):
                fh.write(_assistant(stamp, f"r{i}-{j}", 10, 1))
        with Ledger(ledger_path()) as led:
            refresh(led, env, prices=book)
            snap = snapshot.build(led, cfg, book, env, now_s=now)
            status_lines.write(snap, cfg, env)
            start, first, last = blocks.current_block(led, int(now * 1000), 5) or (0, 0, 0)
        block = snap["block"]
        assert (block["start"], block["first_activity"], block["last_activity"]) == (
            start // 1000, first // 1000, last // 1000), i
        starts.append(time.strftime("%H:%M", time.gmtime(block["start"])))
    assert starts == ["01:00", "01:00", "07:00", "06:00", "11:00"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40),  # minutes the clock moves on
                          st.lists(st.tuples(st.integers(-300, 0),  # a line's age, minutes
                                             st.integers(0, 5),  # which response
                                             st.integers(1, 9)), max_size=4)),
                min_size=1, max_size=6))
# A response seen at 11:59 streams on at 12:00 after a refresh with nothing new: the row
# moves off the block's last activity, which a resumed walk must not keep.
@example(steps=[(0, [(-1, 0, 1)]), (0, []), (0, [(0, 0, 2)])])
def test_carried_sums_equal_sums_of_the_ledger(tmp_path_factory: pytest.TempPathFactory,
                                               steps: list[tuple[int, list[tuple[int, int,
                                                                                 int]]]]) -> None:
    """Today's and the block's sums, carried between snapshots while only recent rows are
    re-summed, equal sums read whole, whatever arrives late or streams on."""
    from tokline.accounting import blocks
    from tokline.accounting.pricing import price_book
    from tokline.config import parse
    from tokline.engine.refresh import refresh
    from tokline.ledger.store import Ledger
    from tokline.snapshot import build as snapshot
    from tokline.snapshot import lines as status_lines

    home = tmp_path_factory.mktemp("home")
    env = {"HOME": str(home), "XDG_STATE_HOME": str(home / "state")}
    cfg = parse({"timezone": "UTC"})
    book = price_book()
    log = home / ".claude" / "projects" / "p" / "s.jsonl"
    log.parent.mkdir(parents=True)
    log.touch()
    now = 1_779_278_400.0  # 2026-05-20 12:00 UTC
    with Ledger(home / "ledger.sqlite3") as led:
        for minutes, lines in steps:
            now += minutes * 60
            with log.open("a") as fh:
                for age, response, output in lines:
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + age * 60))
                    fh.write(_assistant(stamp, f"r{response}", 10, output))
            refresh(led, env, prices=book)
            snap = snapshot.build(led, cfg, book, env, now_s=now)
            status_lines.write(snap, cfg, env)
            fresh = blocks.current_block(led, int(now * 1000), 5)
            block = snap["block"]
            assert (block and (block["start"], block["first_activity"],
                               block["last_activity"])) == (
                fresh and (fresh[0] // 1000, fresh[1] // 1000, fresh[2] // 1000))
            periods = [("today", None), ("block", "claude")] if snap["block"] else [
                ("today", None)]
            for name, source in periods:
                full = led.sums(snap[name]["start"] * 1000, snap[name]["end"] * 1000,
                                cfg.cost_mode, source)
                assert snap[name]["output_tokens"] == sum(t[1] for t in full.values()), name
                assert snap[name]["requests"] == sum(t[7] for t in full.values()), name
                assert snap[name]["cost_usd"] == pytest.approx(
                    sum(t[5] for t in full.values()), abs=1e-6)
