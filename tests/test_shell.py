"""The shell and tmux integrations, driven in the real programs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tokline import cli
from tokline.commands.demo import install_sample
from tokline.prompt import statefiles

ROOT = Path(__file__).resolve().parents[1]


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (.ci/run installs it)")
    return path


@pytest.fixture
def shim(home: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A prepared snapshot, and a `tokline` that records each run before running."""
    install_sample(home)
    assert cli.main(["scan", "-q"]) == 0
    log = tmp_path / "calls.log"
    shim = tmp_path / "bin" / "tokline"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {sys.executable} -m tokline "$@"\n')
    shim.chmod(0o755)
    return shim, log


def init_script(shell: str, shim: Path, tmp_path: Path) -> Path:
    proc = subprocess.run([sys.executable, "-m", "tokline", "init", shell, "--bin", str(shim)],
                          capture_output=True, text=True, check=True)
    path = tmp_path / f"init.{shell}"
    path.write_text(proc.stdout)
    return path


def expected_status() -> str:
    out = subprocess.run([sys.executable, "-m", "tokline", "status", "--target", "plain"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out.startswith("$")
    return same_minute(out)


def make_stale() -> None:
    path = Path(statefiles.state_dir()) / statefiles.LINES
    head, rest = path.read_text().split("\n", 1)
    parts = head.split()
    parts[6] = str(int(parts[6]) - 600)
    path.write_text(" ".join(parts) + "\n" + rest)


def wait_for(log: Path, lines: int) -> list[str]:
    deadline = time.time() + 20
    while time.time() < deadline:
        found = log.read_text().splitlines() if log.exists() else []
        if len(found) >= lines and not (Path(statefiles.state_dir()) / statefiles.LOCK).exists():
            return found
        time.sleep(0.1)
    return log.read_text().splitlines() if log.exists() else []


LEFT = re.compile(r"\((\d+h)?\d+m left\)")


def same_minute(text: str) -> str:
    """The block's time left may tick between the shell's prompt and the check."""
    return LEFT.sub("(_ left)", text)


def run_interactive(argv: list[str], script: str) -> str:
    # A wide screen: on a dumb terminal readline scrolls a line longer than COLUMNS
    # sideways, cutting the prompt's multibyte characters (· ↑) in half.
    proc = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TERM": "dumb", "COLUMNS": "1000"})
    return same_minute(proc.stdout + proc.stderr)


def test_bash_prompt(shim: tuple[Path, Path], tmp_path: Path) -> None:
    bash = need("bash")
    binary, log = shim
    init = init_script("bash", binary, tmp_path)
    out = run_interactive([bash, "--norc", "--noprofile", "-i"], "\n".join([
        "set -u -o pipefail",
        f'eval "$(cat {init})"',
        f'eval "$(cat {init})"',  # sourcing twice installs the hook once
        "PS1='<${TOKLINE_STATUS}> rc=$? % '",
        "false", "(exit 7)", 'echo "hooks=[$PROMPT_COMMAND]"',
        "set -e", "true", "echo still-here", "exit", ""]))
    status = expected_status()
    assert f"<{status}> rc=1 %" in out and f"<{status}> rc=7 %" in out
    assert "hooks=[__tokline_update]" in out and "still-here" in out
    assert not log.exists(), "a fresh status must not start any process"
    make_stale()
    run_interactive([bash, "--norc", "--noprofile", "-i"],
                    f'eval "$(cat {init})"\nPS1="x "\ntrue\ntrue\nexit\n')
    assert wait_for(log, 1) == ["refresh --if-unlocked"]


def test_bash_script_passes_shellcheck() -> None:
    shellcheck = need("shellcheck")
    subprocess.run([shellcheck, "-x", "-P", "SCRIPTDIR", "-s", "bash",
                    str(ROOT / "shell" / "tokline.bash"),
                    str(ROOT / "shell" / "tmux" / "tokline.tmux"),
                    str(ROOT / "shell" / "tmux" / "scripts" / "helpers.sh"),
                    str(ROOT / "shell" / "tmux" / "scripts" / "updater.sh")], check=True)


def test_zsh_prompt(shim: tuple[Path, Path], tmp_path: Path) -> None:
    zsh = need("zsh")
    binary, log = shim
    init = init_script("zsh", binary, tmp_path)
    out = run_interactive([zsh, "-f", "-i"], "\n".join([
        "setopt nounset err_return",
        f'eval "$(<{init})"', f'eval "$(<{init})"',
        "setopt prompt_subst", "PROMPT='<${TOKLINE_STATUS}> rc=%? %% '",
        "false", "(exit 7)", 'echo "hooks=[$precmd_functions]"', "exit", ""]))
    status = expected_status()
    assert f"<{status}> rc=1 %" in out and f"<{status}> rc=7 %" in out
    assert "hooks=[__tokline_update]" in out
    assert not log.exists()
    make_stale()
    run_interactive([zsh, "-f", "-i"], f'eval "$(<{init})"\ntrue\ntrue\nexit\n')
    assert wait_for(log, 1) == ["refresh --if-unlocked"]


def test_fish_prompt(shim: tuple[Path, Path], tmp_path: Path) -> None:
    fish = need("fish")
    binary, log = shim
    init = init_script("fish", binary, tmp_path)
    out = subprocess.run(
        [fish, "--no-config", "-c",
         f"source {init}; source {init}; emit fish_prompt; echo \"<$TOKLINE_STATUS>\";"
         " echo handlers=(functions --handlers-type generic | string match '*__tokline*' | count)"],
        capture_output=True, text=True, check=True, timeout=60).stdout
    assert f"<{expected_status()}>" in same_minute(out) and "handlers=1" in out
    assert not log.exists()
    make_stale()
    subprocess.run([fish, "--no-config", "-c",
                    f"source {init}; emit fish_prompt; emit fish_prompt"], check=True)
    assert wait_for(log, 1) == ["refresh --if-unlocked"]


def test_tmux_plugin_one_run_per_interval(shim: tuple[Path, Path], tmp_path: Path) -> None:
    tmux = need("tmux")
    binary, log = shim
    lines = subprocess.run([sys.executable, "-m", "tokline", "init", "tmux", "--bin",
                            str(binary)], capture_output=True, text=True, check=True).stdout
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g status-right '#{tokline} | #{tokline_today}'\n"
                    "set -g status-interval 1\n" + lines)
    inner, outer = f"tl-in-{os.getpid()}", f"tl-out-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}

    def run(*args: str, server: str = inner) -> str:
        return subprocess.run([tmux, "-L", server, *args], capture_output=True, text=True,
                              env=env, check=True).stdout

    try:
        run("-f", str(conf), "new-session", "-d", "-s", "t", "-x", "120", "-y", "20")
        attach = f"TMUX= {tmux} -L {inner} attach -t t"
        run("-f", "/dev/null", "new-session", "-d", "-s", "o", "-x", "130", "-y", "12", attach,
            server=outer)
        run("split-window", "-t", "o", attach, server=outer)  # a second client
        run("split-window", "-t", "t")  # and a second pane
        time.sleep(4.5)
        shown = same_minute(run("display", "-p", "#{E:status-right}"))
        screen = run("capture-pane", "-p", "-t", "o.0", server=outer)
    finally:
        subprocess.run([tmux, "-L", inner, "kill-server"], env=env, capture_output=True)
        subprocess.run([tmux, "-L", outer, "kill-server"], env=env, capture_output=True)
    status = expected_status()
    today = status.split(" today")[0]
    assert shown.strip() == f"{status} | {today}"
    assert status.split(" · ")[0] in screen
    calls = [c for c in log.read_text().splitlines() if c == "status --target tmux"]
    # One run a second for ~4.5 s with two clients and two panes (not one per client).
    assert 3 <= len(calls) <= 6, calls


def test_starship_module_runs_inside_the_timeout(shim: tuple[Path, Path]) -> None:
    import shlex

    tomllib = pytest.importorskip("tomllib")
    binary, log = shim
    text = subprocess.run([sys.executable, "-m", "tokline", "init", "starship", "--bin",
                           str(binary)], capture_output=True, text=True, check=True).stdout
    module = tomllib.loads(text)["custom"]["tokline"]
    assert module["when"] is True and module["shell"] == ["sh"]
    started = time.perf_counter()
    out = subprocess.run(["sh", "-c", module["command"]], capture_output=True, text=True,
                         check=True).stdout
    assert time.perf_counter() - started < 0.5  # starship's command_timeout
    assert same_minute(out.strip()) == expected_status()
    assert shlex.split(module["command"])[0] == str(binary)
    assert log.read_text().splitlines() == ["status --target plain"]
