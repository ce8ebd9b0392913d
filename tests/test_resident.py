"""The resident refresher (tokline/surfaces/resident.py) and ``tokline service``: while it
runs, a prompt shows an appended line's spend within a second and starts no process."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_shell import init_script, shim  # noqa: F401 - shim is a fixture
from test_watch import append

from tokline.commands.demo import install_sample
from tokline.prompt import statefiles

TOKLINE = [sys.executable, "-m", "tokline"]


def hook_status(script: Path) -> str:
    """What the bash hook puts in the prompt now (a real bash, the hook as `init` prints it)."""
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                           f'source "{script}"; __tokline_update; printf %s "$TOKLINE_STATUS"'],
                          capture_output=True, text=True, timeout=10, check=True)
    return done.stdout


def test_a_prompt_shows_new_spend_within_a_second_and_starts_nothing(
        home: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    config = home / ".config" / "tokline" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    # a short interval: a prompt would start a refresh after 2 s without the resident one
    config.write_text('[status]\ntemplate = "{today.tokens}"\nrefresh_interval = 2\n')
    tokline, calls = request.getfixturevalue("shim")  # a sample history; a recording tokline
    script = init_script("bash", tokline, tmp_path)
    service = subprocess.Popen([*TOKLINE, "service", "run"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while statefiles.read_head(statefiles.state_dir()) is None or \
                subprocess.run([*TOKLINE, "service", "status"], capture_output=True,
                               text=True).stdout.count("running (pid") == 0:
            assert time.monotonic() < deadline and service.poll() is None
            time.sleep(0.1)
        shown = hook_status(script)
        lags = []
        for n in range(6):  # over 3 refresh intervals, so the heartbeat is needed too
            append(home, 500 + n, tokens=100_000_000)
            appended = time.monotonic()
            while True:
                now_shown = hook_status(script)
                if now_shown != shown:
                    break
                assert time.monotonic() - appended < 1.0, \
                    f"the prompt still shows {now_shown!r} a second after the append"
                time.sleep(0.05)
            lags.append(time.monotonic() - appended)
            shown = now_shown
            time.sleep(0.4)
        time.sleep(2.5)  # a whole interval with nothing new: still no refresh by a prompt
        assert hook_status(script) == shown
        assert not calls.exists(), f"a prompt started: {calls.read_text()}"
        assert max(lags) < 1.0
    finally:
        service.terminate()
        _out, err = service.communicate(timeout=15)
    assert service.returncode == 0, err
    assert "Traceback" not in err
    # gone with its process: the lock is free again
    assert "not running" in subprocess.run([*TOKLINE, "service", "status"],
                                           capture_output=True, text=True).stdout


def test_a_second_resident_follows_and_takes_over(home: Path) -> None:
    install_sample(home)
    first = subprocess.Popen([*TOKLINE, "service", "run"])
    try:
        deadline = time.monotonic() + 30
        while f"pid {first.pid}" not in subprocess.run(
                [*TOKLINE, "service", "status"], capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        second = subprocess.Popen([*TOKLINE, "service", "run"])
        try:
            time.sleep(1.0)
            assert f"pid {first.pid}" in subprocess.run(
                [*TOKLINE, "service", "status"], capture_output=True, text=True).stdout
            first.terminate()
            first.wait(15)
            deadline = time.monotonic() + 30  # the second one leads within its next beat
            while f"pid {second.pid}" not in subprocess.run(
                    [*TOKLINE, "service", "status"], capture_output=True, text=True).stdout:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        finally:
            second.terminate()
            second.wait(15)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def fake_manager(tmp_path: Path, name: str) -> Path:
    """A systemctl or launchctl on PATH that records its arguments."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / f"{name}.log"
    tool = bin_dir / name
    tool.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    tool.chmod(0o755)
    return log


def test_install_writes_a_systemd_unit_with_places_but_no_secrets(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_manager(tmp_path, "systemctl")
    monkeypatch.setenv("PATH", f"{tmp_path / 'fakebin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", "/srv/claude 100%")
    monkeypatch.setenv("TOKLINE_SERVER_TOKEN", "tkl_secret_value")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("CODEX_HOME", "relative/not/kept")
    launcher = tmp_path / "bin" / "tokline"
    launcher.parent.mkdir()
    launcher.write_text("#!/bin/sh\n")
    launcher.chmod(0o755)
    done = subprocess.run([str(sys.executable), "-c",
                           "import sys; sys.argv[0] = sys.argv[1]; from tokline import cli;"
                           " raise SystemExit(cli.main(sys.argv[2:]))",
                           str(launcher), "service", "install", "--kind", "systemd"],
                          capture_output=True, text=True, check=True)
    unit = home / ".config" / "systemd" / "user" / "tokline.service"
    text = unit.read_text()
    assert f'ExecStart="{launcher}" service run' in text
    assert 'Environment="CLAUDE_CONFIG_DIR=/srv/claude 100%%"' in text
    assert f'Environment="XDG_STATE_HOME={home}/.local/state"' in text
    assert "secret" not in text and "CODEX_HOME" not in text
    assert "WantedBy=default.target" in text
    assert log.read_text().splitlines() == ["--user daemon-reload",
                                            "--user enable --now tokline.service"]
    assert "runs, and starts at every login" in done.stdout
    removed = subprocess.run([*TOKLINE, "service", "uninstall", "--kind", "systemd"],
                             capture_output=True, text=True, check=True)
    assert not unit.exists() and "stopped" in removed.stdout
    assert "--user disable --now tokline.service" in log.read_text()
    again = subprocess.run([*TOKLINE, "service", "uninstall", "--kind", "systemd"],
                           capture_output=True, text=True, check=True)
    assert "not installed" in again.stdout


def test_install_writes_a_launch_agent(home: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_manager(tmp_path, "launchctl")
    monkeypatch.setenv("PATH", f"{tmp_path / 'fakebin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", "/Users/me/<claude & co>")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setattr(sys, "argv", [str(shutil.which("true") or "/bin/true")])
    from tokline.commands import service

    monkeypatch.setattr(service, "tokline_path", lambda: "/opt/tokline/bin/tokline")
    assert service.run("service", ["install", "--kind", "launchd"]) == 0
    path = home / "Library" / "LaunchAgents" / "dev.tokline.resident.plist"
    agent = plistlib.loads(path.read_bytes())
    assert agent["ProgramArguments"] == ["/opt/tokline/bin/tokline", "service", "run"]
    assert agent["EnvironmentVariables"]["CLAUDE_CONFIG_DIR"] == "/Users/me/<claude & co>"
    assert "OPENAI_API_KEY" not in agent["EnvironmentVariables"]
    assert agent["RunAtLoad"] is True and agent["Label"] == "dev.tokline.resident"
    assert f"bootstrap gui/{os.getuid()} {path}" in log.read_text()
    assert service.run("service", ["uninstall", "--kind", "launchd"]) == 0
    assert not path.exists()
