"""One snapshot, one clock: every reader of the status says the same thing.

Each case builds a snapshot through the real code path (logs -> ledger refresh ->
snapshot.build -> snapshot.lines.write) as of a moment G in the past, and sets the state
files' mtimes to G as well: the clock is not faked, the snapshot is honestly old.  Then
`tokline status` (fast and template paths), the bash, zsh and fish hooks, tmux's
updater, starship's module command, Neovim's plugin and the VS Code extension's feed
and formatting all read it, and must print the same text.  A reader is skipped only
when its program is missing (.ci/run installs them all).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tokline.config import load
from tokline.engine.refresh import refresh
from tokline.ledger.store import Ledger
from tokline.prompt import statefiles
from tokline.prompt.uptodate import ledger_path
from tokline.snapshot import lines
from tokline.snapshot.build import build

ROOT = Path(__file__).resolve().parents[1]
VSCODE = ROOT / "editors" / "vscode"
NVIM_PLUGIN = ROOT / "editors" / "nvim"
TEMPLATE = "full"  # the configured template every reader uses by default
# the same template in the VS Code extension's old field names
VSCODE_TEMPLATE = "{today} today[ · 5h {block} ({blockLeft} left)][ · 7d {quota7d}]"
HOUR = 3600


def _since_midnight(now: float) -> float:
    local = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    return (local - local.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()


# name -> seconds between the snapshot and now (computed from now for midnight)
CASES = {
    "fresh": lambda now: 30.0,
    "90 minutes": lambda now: 90 * 60.0,
    "3 days": lambda now: 3 * 86400.0,
    "across midnight": lambda now: _since_midnight(now) + 10 * 60.0,
    "across the block's end": lambda now: 6 * HOUR + 5 * 60.0,
}


def _usage(stamp: float, n: int, tokens: int) -> str:
    return json.dumps({
        "type": "assistant", "requestId": f"rq{n}", "sessionId": "s",
        "timestamp": dt.datetime.fromtimestamp(stamp, dt.timezone.utc)
        .strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "message": {"id": f"m{n}", "model": "claude-opus-4-5-20251101",
                    "usage": {"input_tokens": tokens, "output_tokens": tokens // 10}}})


def make_snapshot(home: Path, then: float) -> dict[str, object]:
    """The state dir as the last refresh at ``then`` left it."""
    project = home / ".claude" / "projects" / "conformance"
    project.mkdir(parents=True)
    (project / "s.jsonl").write_text(
        "".join(_usage(then - minutes * 60, n, 200_000) + "\n"
                for n, minutes in enumerate((40, 25, 5))))
    cfg = load()
    with Ledger(Path(ledger_path())) as ledger:
        refresh(ledger, dict(os.environ))
        from tokline.accounting.pricing import price_book

        snap = build(ledger, cfg, price_book(cfg.price_overrides), os.environ, now_s=then)
    lines.write(snap, cfg)
    state = Path(statefiles.state_dir())
    for name in (statefiles.LINES, statefiles.SNAPSHOT):
        os.utime(state / name, (then, then))
    return snap


def hold_refreshes() -> None:
    """Readers start a background refresh on a stale status; a held lock keeps this
    one from rewriting the state while they read (the lock is what they all check)."""
    lock = Path(statefiles.state_dir()) / statefiles.LOCK
    lock.write_text("0")
    os.utime(lock)


def _run(argv: list[str], **kw: object) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)
    return str(proc.stdout)


def _init(shell: str, binary: Path, tmp_path: Path) -> Path:
    path = tmp_path / f"init.{shell}"
    path.write_text(_run([sys.executable, "-m", "tokline", "init", shell, "--bin", str(binary)]))
    return path


def read_tmux(binary: Path, tmp_path: Path) -> str:
    tmux = shutil.which("tmux")
    assert tmux
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g status-right '#{tokline}'\nset -g status-interval 1\n"
                    + _run([sys.executable, "-m", "tokline", "init", "tmux", "--bin",
                            str(binary)]))
    # a socket of its own: an updater left from an earlier case must not write into it
    sock = f"tokline-conf-{os.getpid()}-{time.monotonic_ns()}"
    try:
        _run([tmux, "-L", sock, "-f", str(conf), "new-session", "-d", "-x", "200", "-y", "20"])
        deadline = time.time() + 20
        value = ""
        while time.time() < deadline:
            value = subprocess.run([tmux, "-L", sock, "show-option", "-gqv", "@tokline_value"],
                                   capture_output=True, text=True).stdout.rstrip("\n")
            if value:
                break
            time.sleep(0.1)
        return value.replace("##", "#")  # what tmux displays
    finally:
        subprocess.run([tmux, "-L", sock, "kill-server"], capture_output=True)


def read_starship(binary: Path) -> str:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    module = tomllib.loads(_run([sys.executable, "-m", "tokline", "init", "starship", "--bin",
                                 str(binary)]))["custom"]["tokline"]
    assert module["shell"] == ["sh"]
    return _run(["sh", "-c", module["command"]]).rstrip("\n")


def read_nvim(tmp_path: Path) -> str:
    nvim = shutil.which("nvim")
    assert nvim
    out = tmp_path / "nvim.txt"
    script = tmp_path / "conformance.lua"
    cmd = [sys.executable, "-m", "tokline", "watch", "--json", "--no-refresh"]
    script.write_text(f"""
vim.opt.runtimepath:prepend({json.dumps(str(NVIM_PLUGIN))})
vim.g.tokline_cmd = vim.fn.json_decode({json.dumps(json.dumps(cmd))})
local tokline = require("tokline")
tokline.start()
vim.wait(20000, function() return vim.g.tokline_status ~= nil end, 20)
local f = io.open({json.dumps(str(out))}, "w")
f:write(vim.g.tokline_status or "<nothing>")
f:close()
tokline.stop()
""")
    subprocess.run([nvim, "--headless", "-u", "NONE", "-i", "NONE", "-c", f"luafile {script}",
                    "-c", "qa!"], capture_output=True, timeout=60)
    return out.read_text()


VSCODE_HARNESS = """
const { Feed } = require(process.argv[2] + "/out/src/core/feed.js");
const { cliTemplate, statusText } = require(process.argv[2] + "/out/src/core/format.js");
const feed = new Feed({
  binary: process.argv[3], template: cliTemplate(process.argv[4]), pollSeconds: 2,
  onSnapshot: (snap) => { process.stdout.write(statusText(snap) ?? "<nothing>"); feed.stop(); },
  onProblem: (message) => { process.stdout.write("<problem> " + message); feed.stop(); },
});
feed.start();
"""


@pytest.fixture(scope="session")
def vscode_out() -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    tsc = VSCODE / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.skip("editors/vscode has no node_modules: npm ci there (.ci/run does)")
    subprocess.run([str(tsc), "-p", str(VSCODE)], check=True, timeout=300)
    return VSCODE


def read_vscode(vscode: Path, tmp_path: Path) -> str:
    # the feed starts `<binary> watch --json --format …`: follow the snapshot only
    shim = tmp_path / "vscode-bin" / "tokline"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nif [ "$1" = watch ]; then\n'
                    f'    exec {sys.executable} -m tokline "$@" --no-refresh\nfi\n'
                    f'exec {sys.executable} -m tokline "$@"\n')
    shim.chmod(0o755)
    harness = tmp_path / "harness.js"
    harness.write_text(VSCODE_HARNESS)
    return _run(["node", str(harness), str(vscode), str(shim), VSCODE_TEMPLATE])


def wait_for_a_fresh_minute(block_end: float | None) -> None:
    """Readers take seconds: start right after the time left ticked, not before."""
    if block_end is None:
        return
    into = (block_end - time.time()) % 60
    if into < 40:
        time.sleep(into + 0.5)


def read_all(noop: Path, tmp_path: Path, request: pytest.FixtureRequest
             ) -> tuple[dict[str, str], list[str]]:
    """What each reader says now; the programs that are missing."""
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))
    hold_refreshes()
    said: dict[str, str] = {}
    said["tokline status"] = _run([sys.executable, "-m", "tokline", "status"]).rstrip("\n")
    said["tokline status --format"] = _run([sys.executable, "-m", "tokline", "status", "--format",
                                            TEMPLATE, "--target", "plain"]).rstrip("\n")
    missing: list[str] = []
    for shell, argv, script in (
        ("bash", ["bash", "--norc", "--noprofile", "-c"],
         'eval "$(cat {init})"; __tokline_update; printf "%s" "$TOKLINE_STATUS"'),
        ("zsh", ["zsh", "-f", "-c"],
         'eval "$(<{init})"; __tokline_update; print -rn -- "$TOKLINE_STATUS_PLAIN"'),
        ("fish", ["fish", "--no-config", "-c"],
         'source {init}; emit fish_prompt; echo -n "$TOKLINE_STATUS"'),
    ):
        if shutil.which(shell) is None:
            missing.append(shell)
            continue
        init = _init(shell, Path("/bin/true"), tmp_path)  # refreshes held off: /bin/true
        said[shell] = _run([*argv, script.format(init=init)])
    if shutil.which("zsh"):  # the prompt-escaped zsh target, as a prompt shows it
        init = tmp_path / "init.zsh"
        said["zsh prompt"] = _run(["zsh", "-f", "-c", f'eval "$(<{init})"; __tokline_update;'
                                   ' print -rn -- "${(%)TOKLINE_STATUS}"'])
    hold_refreshes()
    said["starship"] = read_starship(noop)
    if shutil.which("tmux"):
        said["tmux"] = read_tmux(noop, tmp_path)
    else:
        missing.append("tmux")
    hold_refreshes()
    if shutil.which("nvim"):
        said["neovim"] = read_nvim(tmp_path)
    else:
        missing.append("nvim")
    hold_refreshes()
    said["vscode"] = read_vscode(request.getfixturevalue("vscode_out"), tmp_path)
    return said, missing


@pytest.mark.parametrize("case", list(CASES))
def test_every_reader_says_the_same(case: str, home: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    request: pytest.FixtureRequest) -> None:
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")
    now = time.time()
    then = now - CASES[case](now)
    snap = make_snapshot(home, then)
    block = snap.get("block") or {}
    assert isinstance(block, dict)
    block_end = float(block["end"]) if block.get("active") and block["end"] > now else None
    # a tokline for the hooks that only records: the readers' refreshes must not run
    noop = tmp_path / "bin" / "tokline"
    noop.parent.mkdir()
    noop.write_text(f"#!/bin/sh\nexec {sys.executable} -m tokline \"$@\"\n")
    noop.chmod(0o755)

    def left() -> str:
        return "" if block_end is None else statefiles.time_left(block_end - int(time.time()))

    for _ in range(3):  # again only when the time left ticked while they read
        wait_for_a_fresh_minute(block_end)
        before = left()
        said, missing = read_all(noop, tmp_path, request)
        if left() == before:
            break
        print(f"the time left ticked while the readers read: {said}")

    expected = said["tokline status"]
    assert {reader: text for reader, text in said.items() if text != expected} == {}, \
        f"tokline status says {expected!r}"
    # and what it says follows the rule of tokline/prompt/statefiles.py
    age = int(time.time()) - int(then)
    if case == "fresh":
        assert "stale" not in expected and " left)" in expected
    elif case == "90 minutes":
        assert expected.endswith(" (stale 1h)") and " left)" in expected
    elif case == "3 days":
        assert expected.startswith("$0.00 today") and expected.endswith(" (stale 3d)")
    elif case == "across midnight":
        assert expected.startswith("$0.00 today")
        assert expected.endswith(statefiles.stale_note(age, 3600))
    else:
        assert " left)" not in expected and expected.endswith(" (stale 6h)")
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (the others agreed)")
