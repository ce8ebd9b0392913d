"""Issue 18: desktop notifications on quota through a recording stand-in ``notify-send``
(and ``osascript``) on PATH, and ``tokline doctor``'s warning that Claude Code deletes its
logs before tokline reads them."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote_fakes import Fake, MemoryKeyring, claude_legacy, claude_login, recording_program

from tokline import cli, remote
from tokline.ledger.store import Ledger
from tokline.prompt import statefiles
from tokline.prompt.uptodate import ledger_path
from tokline.snapshot import notify
from tokline.snapshot.publish import publish

USAGE = "/api/oauth/usage"
HOUR = 3600.0
DAY = 86400.0


@pytest.fixture
def notifier(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A recording ``notify-send`` first on PATH; its calls file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return recording_program(bin_dir, "notify-send")  # type: ignore[no-any-return]


@pytest.fixture
def refresh(home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]]
            ) -> Iterator[Any]:
    """``refresh(answer)``: the usage stand-in answers ``answer``, a fetch asks it, and a
    refresh publishes the snapshot (which notifies), as the background refresh does."""
    _, fake = server
    claude_login(home)
    assert cli.main(["scan", "-q"]) == 0

    def step(answer: dict[str, Any]) -> None:
        fake.routes[USAGE] = (200, {}, answer)
        remote.fetch_due(force=True)
        with Ledger(ledger_path()) as ledger:
            publish(ledger)

    yield step


def sent(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def test_one_notification_per_threshold_and_period(notifier: Path, refresh: Any) -> None:
    now = time.time()
    first = now + 600  # 4h50m of the window gone: 85 % will not run out before the reset
    refresh(claude_legacy(85.0, 10.0, first, now + 3 * DAY))
    [warn] = sent(notifier)
    assert warn.startswith("tokline tokline: claude 5h quota 85% used, resets ")
    for step in range(20):  # 20 refreshes, the reset time jittering as the API's does
        refresh(claude_legacy(85.0 + step / 5, 10.0, first + (step % 3) * 0.3, now + 3 * DAY))
    assert len(sent(notifier)) == 1
    refresh(claude_legacy(96.0, 10.0, first, now + 3 * DAY))
    assert len(sent(notifier)) == 2 and "claude 5h quota 96% used" in sent(notifier)[-1]
    for _ in range(20):  # (96 % in 4h50m: the last 4 % take longer than the 10 min left)
        refresh(claude_legacy(96.0, 10.0, first, now + 3 * DAY))
    assert len(sent(notifier)) == 2
    # the window resets: its next period crosses the threshold anew
    refresh(claude_legacy(83.0, 10.0, first + 5 * HOUR, now + 3 * DAY))
    assert len(sent(notifier)) == 3 and "claude 5h quota 83% used" in sent(notifier)[-1]
    refresh(claude_legacy(84.0, 10.0, first + 5 * HOUR, now + 3 * DAY))
    assert len(sent(notifier)) == 3


def test_a_jump_straight_to_critical_is_one_notification(notifier: Path, refresh: Any) -> None:
    now = time.time()
    for _ in range(3):
        refresh(claude_legacy(10.0, 97.0, now + HOUR, now + 600))
    [crit] = sent(notifier)
    assert "claude 7d quota 97% used" in crit
    # the warning level counts as told with it: a lower reading of the period is quiet
    refresh(claude_legacy(10.0, 90.0, now + HOUR, now + 600))
    assert len(sent(notifier)) == 1


def test_runout_before_the_reset_is_told_once(notifier: Path, refresh: Any) -> None:
    now = time.time()
    # 50 % with 1 of 5 hours gone: 100 % in another hour, three before the reset
    for _ in range(20):
        refresh(claude_legacy(50.0, 10.0, now + 4 * HOUR, now + 3 * DAY))
    [runout] = sent(notifier)
    assert re.search(r"claude 5h quota \(50% used\) runs out about (\w{3} )?\d\d:\d\d at this rate",
                     runout), runout


def test_no_runout_notice_in_a_windows_first_minutes(notifier: Path, refresh: Any) -> None:
    now = time.time()
    # 20 % ten minutes in: the average says 100 % in 40 more, but it is one burst
    refresh(claude_legacy(20.0, 10.0, now + 5 * HOUR - 600, now + 3 * DAY))
    assert sent(notifier) == []
    assert cli.main(["quota", "--json"]) == 0  # the forecast is there all the same


def test_notify_off_sends_nothing(home: Path, notifier: Path, refresh: Any) -> None:
    config = home / ".config" / "tokline" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[status]\nnotify = false\n")
    now = time.time()
    refresh(claude_legacy(99.0, 99.0, now + 4 * HOUR, now + 3 * DAY))
    assert sent(notifier) == []


def test_macos_notification_center_gets_the_text_as_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = recording_program(tmp_path, "osascript")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(sys, "platform", "darwin")
    message = 'tokline: "x" 5h; do shell script "touch /tmp/owned"'
    notify.send([message])
    [call] = sent(calls)
    assert call == " ".join([*notify.OSASCRIPT, message])


# --- doctor: Claude Code's cleanupPeriodDays ----------------------------------------------

def doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(["doctor"])
    return code, capsys.readouterr().out


def claude_settings(home: Path, settings: dict[str, Any]) -> None:
    path = home / ".claude" / "settings.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(settings))


@pytest.mark.parametrize(("settings", "warned"), [
    ({}, None), ({"cleanupPeriodDays": 30}, None), ({"cleanupPeriodDays": 90}, None),
    ({"cleanupPeriodDays": "7"}, None), ({"cleanupPeriodDays": True}, None),
    ({"cleanupPeriodDays": 7}, "cleanupPeriodDays is 7 in "),
    ({"cleanupPeriodDays": 0}, "keeps no transcripts"),
])
def test_doctor_warns_of_a_short_cleanup_period(
        home: Path, capsys: pytest.CaptureFixture[str], settings: dict[str, Any],
        warned: str | None) -> None:
    claude_settings(home, settings)
    code, out = doctor(capsys)
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    if warned is None:
        assert warnings == []
    else:
        [line] = warnings
        assert warned in line and str(home / ".claude" / "settings.json") in line
    assert code == 0  # a warning, not a problem


def _scanned_ago(seconds: float) -> None:
    """The status's record of when the logs were last read, ``seconds`` ago."""
    path = Path(statefiles.state_dir()) / statefiles.LINES
    head, rest = path.read_text().split("\n", 1)
    parts = head.split()
    parts[6] = f"{int(time.time() - seconds)}"
    path.write_text(" ".join(parts) + "\n" + rest)


@pytest.mark.parametrize(("settings", "days_ago", "lost"), [
    ({}, 40, True), ({}, 20, False), ({"cleanupPeriodDays": 7}, 10, True),
    ({"cleanupPeriodDays": 60}, 40, False)])
def test_doctor_says_when_logs_may_have_gone_unseen(
        home: Path, capsys: pytest.CaptureFixture[str], settings: dict[str, Any],
        days_ago: int, lost: bool) -> None:
    claude_settings(home, settings)
    assert cli.main(["status", "--sync"]) == 0
    _scanned_ago(days_ago * DAY)
    code, out = doctor(capsys)
    problems = [line for line in out.splitlines() if "longer than Claude Code keeps" in line]
    assert len(problems) == lost and code == int(lost)
    if lost:
        assert problems[0].startswith(f"problem: the last scan was {days_ago} days ago")
