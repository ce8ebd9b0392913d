"""Issue 15: interactive Claude Code in tmux, after ``tokline setup claude``.

The real client runs in a real terminal (tmux) against the Anthropic stand-in; its
statusLine is tokline's, as ``tokline setup claude`` writes it.  The line must show
tokline's text before the first turn (the day's earlier spend), that spend plus the
turn's right after the turn, and the official rate limits.  Claude Code puts
``rate_limits`` on the statusLine's stdin only for plans with rate limits: Claude.ai
subscribers, and (what the stand-in can be) a Claude gateway, which Claude Code
recognises by a bearer token whose audience is ``claude-gateway`` and reads the
``anthropic-ratelimit-unified-*`` headers of its answers.  Those figures must then reach
``tokline status``'s quota fields, for the shell, tmux and the editors.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from real_clients import CLIENTS
from standins import AnthropicStandIn, Reply, anthropic_usage
from test_real_clients import (
    CLAUDE_MODEL,
    _claude_env,
    _claude_expected,
    _client,
    _served_cost,
    _tokline,
)

from tokline.prompt.fields import clock, money

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

FIVE_HOUR, SEVEN_DAY = 0.42, 0.15  # utilisation the stand-in's account reports
# Claude Code's statusLine input has rate_limits from this version on (formats.md §1.9).
RATE_LIMITS_SINCE = (2, 1, 80)
# Attempts to leave the machine that the interactive client makes (update and plugin
# checks), all refused by the stand-in acting as its proxy.
REFUSED_OK = {"downloads.claude.ai:443", "github.com:443", "api.anthropic.com:443",
              "statsig.anthropic.com:443", "raw.githubusercontent.com:443"}


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


# An unsigned JWT: Claude Code only reads its audience to tell a gateway.
GATEWAY_TOKEN = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'aud': 'claude-gateway'})}.x"


class GatewayStandIn(AnthropicStandIn):
    """The Messages stand-in as a Claude gateway: every answer carries the unified
    rate-limit headers of an account at FIVE_HOUR and SEVEN_DAY utilisation."""

    def __init__(self, default: Reply) -> None:
        super().__init__(default)
        now = int(time.time())
        self.resets = {"5h": now + 2 * 3600 + 1800, "7d": now + 3 * 86400}
        self.limit_headers = {
            "anthropic-ratelimit-unified-status": "allowed",
            "anthropic-ratelimit-unified-representative-claim": "five_hour",
            "anthropic-ratelimit-unified-5h-status": "allowed",
            "anthropic-ratelimit-unified-5h-utilization": str(FIVE_HOUR),
            "anthropic-ratelimit-unified-5h-reset": str(self.resets["5h"]),
            "anthropic-ratelimit-unified-7d-status": "allowed",
            "anthropic-ratelimit-unified-7d-utilization": str(SEVEN_DAY),
            "anthropic-ratelimit-unified-7d-reset": str(self.resets["7d"]),
        }

    def send_sse(self, h: BaseHTTPRequestHandler,  # type: ignore[override]
                 events: list[tuple[str, dict[str, Any]]],
                 headers: dict[str, str] | None = None) -> None:
        AnthropicStandIn.send_sse(h, events, {**(headers or {}), **self.limit_headers})

    def send_json(self, h: BaseHTTPRequestHandler, status: int,  # type: ignore[override]
                  obj: object, headers: dict[str, str] | None = None) -> None:
        AnthropicStandIn.send_json(h, status, obj, {**(headers or {}), **self.limit_headers})


@pytest.fixture(params=CLIENTS["claude"][1])
def claude(request: pytest.FixtureRequest) -> tuple[str, Path]:
    version = str(request.param)
    return version, _client("claude", version)


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    return home


@pytest.fixture
def gateway() -> Iterator[GatewayStandIn]:
    with GatewayStandIn(Reply(anthropic_usage(3, 5), text="ok")) as stand:
        stand.main_model = CLAUDE_MODEL
        yield stand


class Pane:
    """One tmux server of its own (its socket in the test's directory) running a
    command in a fixed-size window."""

    def __init__(self, socket: Path, env: dict[str, str], cwd: Path, argv: list[str]) -> None:
        self.socket = socket
        self.tmux = ["tmux", "-S", str(socket), "-f", "/dev/null"]
        pass_env = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        subprocess.run([*self.tmux, "new-session", "-d", "-x", "200", "-y", "50", *pass_env,
                        "-c", str(cwd), *argv], env=env, check=True, timeout=30)

    def text(self) -> str:
        done = subprocess.run([*self.tmux, "capture-pane", "-p", "-J"], capture_output=True,
                              text=True, timeout=30, check=False)
        return done.stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run([*self.tmux, "send-keys", *(["-l"] if literal else []), *keys],
                       check=True, timeout=30)

    def wait_for(self, what: str, ok: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if ok(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout:.0f} s for {what}; the screen:\n{screen}")
            time.sleep(0.3)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True, timeout=30,
                       check=False)


def _status_line(screen: str) -> str:
    """The line of the screen that holds tokline's statusLine text."""
    lines = [ln.strip() for ln in screen.splitlines() if " today" in ln]
    return lines[-1] if lines else ""


def _seed_history(home: Path, cost_rows: list[tuple[str, int, int, int, int, int]]) -> float:
    """Earlier spend of today, in another project's transcript; its cost."""
    now = dt.datetime.now(dt.timezone.utc)
    stamp = (now - dt.timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    project = home / ".claude" / "projects" / "-earlier-project"
    project.mkdir(parents=True)
    with (project / "earlier.jsonl").open("w") as fh:
        for i, (model, inp, out, w5, w1, read) in enumerate(cost_rows):
            fh.write(json.dumps({
                "type": "assistant", "timestamp": stamp, "sessionId": "earlier",
                "requestId": f"req_earlier{i}", "cwd": "/earlier/project",
                "message": {"id": f"msg_earlier{i}", "model": model, "usage": {
                    "input_tokens": inp, "output_tokens": out, "cache_read_input_tokens": read,
                    "cache_creation_input_tokens": w5 + w1,
                    "cache_creation": {"ephemeral_5m_input_tokens": w5,
                                       "ephemeral_1h_input_tokens": w1}}}}) + "\n")
    return _served_cost(cost_rows)


def _onboarded(home: Path) -> None:
    """What a user who has run Claude Code before has: onboarding done, theme chosen,
    the working folder trusted; so the first screen is the prompt."""
    (home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "theme": "dark", "numStartups": 3,
        "projects": {str(home / "work"): {"hasTrustDialogAccepted": True,
                                          "hasCompletedProjectOnboarding": True}}}))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_claude_status_line_in_tmux_shows_the_turn_and_rate_limits(
        claude: tuple[str, Path], sandbox: Path, gateway: GatewayStandIn,
        tmp_path: Path) -> None:
    version, exe = claude
    home = sandbox
    _onboarded(home)
    earlier = _seed_history(home, [(CLAUDE_MODEL, 150_000, 10_000, 0, 0, 40_000)])
    env = {key: value for key, value in _claude_env(home, gateway).items()
           if key != "ANTHROPIC_API_KEY"}
    # the ledger and zone `_tokline` (tokline status, below) uses too
    env.update(ANTHROPIC_AUTH_TOKEN=GATEWAY_TOKEN, TERM="xterm-256color", TZ="UTC",
               TOKLINE_LEDGER=str(home / "ledger.sqlite3"))
    env.pop("NO_COLOR", None)
    for var in ("TOKLINE_PURE", "TOKLINE_STRICT_BUILD"):  # the leg under test
        if var in os.environ:
            env[var] = os.environ[var]

    # `tokline setup claude` by the launcher a user has (this venv's), as a user runs it
    launcher = Path(sys.executable).with_name("tokline")
    assert launcher.exists(), f"no tokline launcher beside {sys.executable}"
    setup = subprocess.run([str(launcher), "setup", "claude"], env=env, capture_output=True,
                           text=True, timeout=60, check=False)
    assert setup.returncode == 0, setup.stderr
    line_cfg = json.loads((home / ".claude" / "settings.json").read_text())["statusLine"]
    assert line_cfg["command"].split()[0].strip("'") == str(launcher)

    # a turn that costs a visible amount: $0.30 of input, $0.45 of output, cache reads
    gateway.script.append(Reply(anthropic_usage(100_000, 30_000, read=20_000), text="done"))
    pane = Pane(tmp_path / "tmux.sock", env, home / "work", [str(exe), "--model", CLAUDE_MODEL])
    try:
        before = pane.wait_for("tokline's status line", lambda s: " today" in s, timeout=90)
        assert f"{money(earlier)} today" in _status_line(before), before
        pane.keys("say done", literal=True)
        time.sleep(0.3)
        pane.keys("Enter")
        pane.wait_for("the answer", lambda s: any(not s.side for s in gateway.served)
                      and "done" in s.split("say done", 1)[-1], timeout=90)
        spent = _served_cost(_claude_expected([s for s in gateway.served if not s.side]))
        want = f"{money(earlier + spent)} today"
        assert want != f"{money(earlier)} today"
        # Right after the turn, not at the next timer run (setup's refreshInterval, 20 s:
        # the versions that have the timer get less than that; 2.0.x has none at all).
        timer = _version(version) >= RATE_LIMITS_SINCE
        after = pane.wait_for(f"'{want}' after the turn", lambda s: want in _status_line(s),
                              timeout=18 if timer else 60)
    finally:
        pane.close()
    shown = _status_line(after)
    assert len([s for s in gateway.served if not s.side]) == 1

    if _version(version) < RATE_LIMITS_SINCE:
        assert " 5h 42%" not in shown  # nothing of the kind before that version
        return
    # the official windows on the line, with their reset times ...
    five = clock(gateway.resets["5h"], dt.timezone.utc, time.time())
    assert f"5h 42% ↻{five}" in shown, shown
    assert "7d 15% ↻" in shown, shown
    # ... and in tokline status, for the shell, tmux and the editors
    out = _tokline(home, "status", "--format", "{quota.5h}|{quota.7d}").strip()
    assert out == "42%|15%", out
    snap = json.loads(_tokline(home, "status", "--json"))
    windows = {(q["source"], q["window"]): q for q in snap["quota"]}
    assert windows[("claude", "5h")]["used_percent"] == pytest.approx(FIVE_HOUR * 100)
    assert windows[("claude", "5h")]["resets_at"] == gateway.resets["5h"]
    assert windows[("claude", "7d")]["used_percent"] == pytest.approx(SEVEN_DAY * 100)
    assert windows[("claude", "7d")]["resets_at"] == gateway.resets["7d"]
    assert all(q["kind"] == "official" for q in windows.values())
    tried = {path for method, path in gateway.unknown if method == "CONNECT"}
    assert tried <= REFUSED_OK, gateway.unknown
