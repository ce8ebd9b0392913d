"""``tokline dashboard`` driven headless by Textual's pilot, and once for real inside a
private tmux server."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tokline import cli
from tokline.commands.dashboard import make_app
from tokline.commands.demo import install_sample
from tokline.prompt import statefiles
from tokline.surfaces import dashboard_text
from tokline.surfaces.dashboard import HelpScreen, to_text


@pytest.fixture
def sample(home: Path) -> Path:
    install_sample(home)
    assert cli.main(["scan", "-q"]) == 0
    return home


def test_every_tab_and_key(sample: Path) -> None:
    app, ledger = make_app(["--no-live"])
    refreshed: list[bool] = []
    app.refresher = lambda: refreshed.append(True)
    snap = json.loads((Path(statefiles.state_dir()) / "snapshot.json").read_text())

    async def drive() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            tabs = app.query_one("#tabs")
            overview = app.tab_text("overview")
            assert f"Today  {'$' + format(snap['today']['cost_usd'], ',.2f'):>11}" in overview
            assert "5-hour block" in overview and "Quota" in overview
            assert "of the block gone" in overview  # the block's time gauge
            await pilot.press("2")
            assert tabs.active == "daily"  # type: ignore[attr-defined]
            daily = app.tab_text("daily")
            assert "Cost per day, last 30" in daily and "Total $" in daily
            assert daily.count("\n") >= 30
            await pilot.press("j", "j", "j")
            await pilot.pause()
            assert app.query_one("#daily-scroll").scroll_y > 0
            await pilot.press("k")
            await pilot.press("w")
            assert "Cost per week, last 26" in app.tab_text("daily")
            await pilot.press("m")
            assert "Cost per month, last 12" in app.tab_text("daily")
            await pilot.press("d")
            await pilot.press("3")
            assert tabs.active == "models"  # type: ignore[attr-defined]
            models = app.tab_text("models")
            assert "Models by cost" in models and "claude-" in models and "%" in models
            await pilot.press("4")
            sessions = app.tab_text("sessions")
            assert "Projects by cost" in sessions and "Sessions by cost" in sessions
            await pilot.press("5")
            assert tabs.active == "quota"  # type: ignore[attr-defined]
            assert "Remote providers" in app.tab_text("quota")
            await pilot.press("tab")
            assert tabs.active == "overview"  # type: ignore[attr-defined]
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            assert "d / w / m" in str(app.screen.query_one("#help").render())
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert refreshed == [True]
            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(drive())
    ledger.close()


def test_live_updates_come_from_the_feed(sample: Path) -> None:
    app, ledger = make_app(["--no-live"])
    snap = json.loads((Path(statefiles.state_dir()) / "snapshot.json").read_text())
    snap["today"]["cost_usd"] = 4321.5
    fed: list[str] = []

    def feed() -> Iterator[str]:
        fed.append("started")
        yield json.dumps(snap) + "\n"

    app.feed = feed

    async def drive() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(50):
                if app.updates:
                    break
                await pilot.pause(0.05)
            await pilot.pause()
            assert app.updates == 1 and fed == ["started"]
            assert "$4,321.50" in app.tab_text("overview")

    asyncio.run(drive())
    ledger.close()


def test_narrow_terminal_and_no_color(sample: Path) -> None:
    app, ledger = make_app(["--no-live"])
    app.color = False

    async def drive() -> None:
        async with app.run_test(size=(48, 16)) as pilot:
            await pilot.press("2")
            assert "Cost per day" in app.tab_text("daily")
            assert app.data is not None
            for draw in (dashboard_text.daily, dashboard_text.models):
                for line in dashboard_text.plain(draw(app.data, 44)).splitlines():
                    assert len(line) <= 48, line
            text = to_text(dashboard_text.overview(app.data, 44), color=False)
            assert {str(span.style) for span in text.spans} <= {"dim", "bold", ""}

    asyncio.run(drive())
    ledger.close()


def test_empty_history_says_so(home: Path) -> None:
    app, ledger = make_app(["--no-live"])

    async def drive() -> None:
        async with app.run_test(size=(80, 24)):
            assert "No usage yet this month" in app.tab_text("overview")
            assert "No usage in this window" in app.tab_text("models")

    asyncio.run(drive())
    ledger.close()


def append_usage(home: Path) -> None:
    """One more Claude response, now, in the newest log: a copy of a usage line with new
    ids and a million output tokens."""
    newest = max((home / ".claude" / "projects").rglob("*.jsonl"),
                 key=lambda p: p.stat().st_mtime)
    record = next(json.loads(line) for line in reversed(newest.read_text().splitlines())
                  if '"usage"' in line and '"assistant"' in line)
    record["message"]["id"] = "msg_dashboard_live_test"
    record["requestId"] = "req_dashboard_live_test"
    record["uuid"] = "dashboard-live-test"
    record["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    record["message"]["usage"]["output_tokens"] = 1_000_000
    with newest.open("a") as fh:
        fh.write(json.dumps(record) + "\n")


def _capture(server: list[str]) -> str:
    return subprocess.run([*server, "capture-pane", "-p", "-t", "dash"], capture_output=True,
                          text=True, check=False).stdout


def _start(server: list[str], *args: str) -> None:
    """``tokline ARGS`` in an 80x24 session of a private tmux server, in this environment."""
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in os.environ.items()
                   if k in ("HOME", "PATH", "PYTHONPATH") or k.startswith(("XDG_", "TOKLINE_")))
    command = (f"env {env} TERM=xterm-256color {shlex.quote(sys.executable)} -m tokline "
               + " ".join(args))
    subprocess.run([*server, "new-session", "-d", "-s", "dash", "-x", "80", "-y", "24",
                    command], check=True)


def _wait_for(server: list[str], text: str, seconds: float) -> str:
    screen = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and text not in screen:
        time.sleep(0.2)
        screen = _capture(server)
    return screen


def _quit(server: list[str]) -> bool:
    """Press q; True once the session (the program) has ended."""
    subprocess.run([*server, "send-keys", "-t", "dash", "q"], check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if subprocess.run([*server, "has-session", "-t", "dash"],
                          capture_output=True, check=False).returncode != 0:
            return True
        time.sleep(0.2)
    return False


def test_demo_opens_the_dashboard_on_its_sample(home: Path) -> None:
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    before = sorted(p.name for p in home.iterdir())
    server = ["tmux", "-L", f"tokline-demo-{os.getpid()}", "-f", "/dev/null"]
    _start(server, "demo", "--dashboard")
    try:
        screen = _wait_for(server, "1 Overview", 60)
        assert "1 Overview" in screen and "Today" in screen and "$" in screen
        assert _quit(server), "q did not quit the demo's dashboard"
    finally:
        subprocess.run([*server, "kill-server"], capture_output=True, check=False)
    assert sorted(p.name for p in home.iterdir()) == before  # the user's home untouched


def test_first_screen_in_a_real_tmux(sample: Path, tmp_path: Path) -> None:
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    server = ["tmux", "-L", f"tokline-dash-{os.getpid()}", "-f", "/dev/null"]
    _start(server, "dashboard")
    try:
        screen = _wait_for(server, "Today", 30)
        assert "1 Overview" in screen and "Today" in screen and "5-hour block" in screen
        assert len(screen.splitlines()[0]) <= 80
        before = next(line for line in screen.splitlines() if "Today" in line)
        append_usage(sample)  # the watch feed refreshes and the tab follows, no keypress
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and before in screen:
            time.sleep(0.2)
            screen = _capture(server)
        assert before not in screen, "the dashboard did not follow the new usage"
        subprocess.run([*server, "send-keys", "-t", "dash", "2"], check=True)
        assert "Cost per day, last 30" in _wait_for(server, "Cost per day", 10)
        assert _quit(server), "q did not quit the dashboard"
    finally:
        subprocess.run([*server, "kill-server"], capture_output=True, check=False)
