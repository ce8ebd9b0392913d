"""Issue 19, tab completion: ``tokline completion bash|zsh|fish``, exercised in the real
shells (bash's completion function with COMP_WORDS, bash and zsh typing TAB in a private
tmux server, zsh's compinit, fish's ``complete -C``), and what it offers checked against
the commands' own parsers."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES

from tokline import cli, remote, sources
from tokline.commands import completion
from tokline.commands.common import parse_day

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = Path(sys.executable).with_name("tokline")  # the installed one, as users run it
DEVICES = ("work laptop", "desktop")  # this device is the desktop; a name with a space


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (.ci/run installs it)")
    return path


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TOKLINE_") or k in ("TOKLINE_PURE", "TOKLINE_STRICT_BUILD")}
    for var in ("CLAUDE_CONFIG_DIR", "CODEX_HOME"):
        env.pop(var, None)
    env.update(HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "config"),
               XDG_DATA_HOME=str(root / "data"), XDG_STATE_HOME=str(root / "state"),
               XDG_CACHE_HOME=str(root / "cache"), TZ="UTC",
               PATH=f"{LAUNCHER.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return env


def tokline(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(LAUNCHER), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the desktop, which has synced with the work laptop (real
    ``tokline sync`` through a shared directory), its completion table already cached."""
    if not LAUNCHER.exists():
        pytest.skip(f"no installed launcher beside {sys.executable}")
    base = tmp_path_factory.mktemp("completion")
    shared = base / "shared"
    shared.mkdir()
    envs = {}
    for name in DEVICES:
        root = base / name.replace(" ", "-")
        (root / "config" / "tokline").mkdir(parents=True)
        (root / "config" / "tokline" / "config.toml").write_text(
            f'[sync]\ndevice = "{name}"\ntarget = "{shared}"\n')
        projects = root / "home" / ".claude" / "projects" / "p"
        projects.mkdir(parents=True)
        shutil.copy(FIXTURES / "claude" / "toktrack" / "claude-sample.jsonl", projects)
        envs[name] = _env(root)
    for name in (*DEVICES, DEVICES[0]):
        tokline(envs[name], "sync")
    desktop = envs["desktop"]
    assert "work laptop" in tokline(desktop, "devices", "--offline")
    tokline(desktop, "completion", "bash")  # printing the script makes the table
    assert (Path(desktop["XDG_CACHE_HOME"]) / "tokline" / completion.CACHE).exists()
    return desktop


@pytest.fixture(scope="module")
def table() -> dict[str, Any]:
    return completion.build_table()


def offered(words: list[str], table: dict[str, Any], shell: str = "fish") -> list[str]:
    kind, found = completion.complete(words, shell, table)
    assert kind == "words"
    return [value for value, _ in found]


def script(env: dict[str, str], shell: str, tmp_path: Path) -> Path:
    path = tmp_path / f"completion.{shell}"
    path.write_text(tokline(env, "completion", shell))
    assert str(LAUNCHER) in path.read_text()  # it asks this tokline, by its path
    return path


# --- what is offered, against the parsers ------------------------------------------------

def test_every_command_is_offered(table: dict[str, Any]) -> None:
    assert offered([""], table) == list(cli.COMMANDS)
    assert "completion" in cli.COMMANDS
    assert offered(["da"], table, "bash") == ["daily", "dashboard"]
    assert offered(["-"], table, "bash") == ["--help", "--version"]
    assert offered(["nosuch", ""], table) == []


def _help(command: str, *sub: str) -> None:
    """``tokline COMMAND [SUB] --help``, printed by the command's own parser."""
    module = import_module(cli.COMMANDS[command][0])
    with pytest.raises(SystemExit) as done:
        module.run(command, [*sub, "--help"])
    assert done.value.code == 0


def _flags(help_text: str) -> set[str]:
    """The option strings of ``--help``'s option lines ("  -o, --output FILE   help")."""
    flags: set[str] = set()
    for line in help_text.splitlines():
        if re.match(r"\s{2}-", line):
            head = re.split(r"\s{2,}", line.strip())[0]
            flags.update(re.findall(r"(?:^|, )(-{1,2}[\w-]+)", head))
    return flags


def _parsers(table: dict[str, Any]) -> Iterator[tuple[list[str], dict[str, Any]]]:
    for command, parser in table["parsers"].items():
        yield [command], parser
        for sub, subparser in parser["subcommands"].items():
            yield [command, sub], subparser


def test_options_offered_are_those_the_parser_accepts(
        table: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """No drift: for every command and subcommand, the options offered after ``--`` are
    exactly the long flags its ``--help`` lists (a short one where it has no long one)."""
    for words, parser in _parsers(table):
        command = words[0]
        if not parser["options"] and not parser["subcommands"] and not parser["positionals"]:
            # no parser at all: never called to find one, so it must not have one (or its
            # module needs an extra not installed here, and offers only its name)
            try:
                module = import_module(cli.COMMANDS[command][0])
            except ImportError:
                continue
            source = Path(module.__file__ or "").read_text()
            assert "ArgumentParser" not in source, command
            assert command in ("doctor", "refresh", "statusline"), command
            continue
        _help(*words)
        flags = _flags(capsys.readouterr().out)
        assert flags, words
        got = offered([*words, "-"], table)
        assert set(got) <= flags, (words, set(got) - flags)
        wanted = set()
        for option in parser["options"]:
            assert set(option["flags"]) <= flags, (words, option["flags"])
            long = [f for f in option["flags"] if f.startswith("--")]
            wanted.add(long[0] if long else option["flags"][0])
        assert set(got) == wanted, words
        # and every flag --help lists is some offered option's
        assert flags <= {f for o in parser["options"] for f in o["flags"]}, words


def test_parsers_are_found_without_running_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    from tokline.commands import doctor, report

    def ran(name: str, argv: list[str]) -> int:
        raise AssertionError(f"{name} ran")

    monkeypatch.setattr(doctor, "run", ran)  # no parser: not called
    assert completion.command_parser("doctor", "tokline.commands.doctor") is None
    monkeypatch.setattr(report, "run", ran)  # build_parser: not called
    assert completion.command_parser("blocks", "tokline.commands.report") is not None
    methods = {m: getattr(argparse.ArgumentParser, m) for m in ("parse_args",
                                                                "parse_known_args")}
    captured = completion.command_parser("sync", "tokline.commands.sync")
    assert captured is not None and captured.prog == "tokline sync"
    assert captured.parse_args(["--json"]).json  # parsing is put back
    assert {m: getattr(argparse.ArgumentParser, m) for m in methods} == methods
    # a command whose module needs an extra that is missing: offered by name alone
    assert completion.command_parser("tray", "tokline.commands.no_such_module") is None


def test_choices_and_values(table: dict[str, Any]) -> None:
    from tokline.commands.export import KEYS
    from tokline.commands.init import SCRIPTS
    from tokline.prompt.template import PRESETS, TARGETS

    assert offered(["init", ""], table) == [*SCRIPTS, "tmux"]
    assert offered(["completion", ""], table) == ["bash", "zsh", "fish"]
    assert offered(["daily", "--source", ""], table) == list(sources.NAMES)
    assert offered(["export", "--by", ""], table) == list(KEYS)
    assert offered(["status", "--preset", ""], table) == sorted(PRESETS)
    assert offered(["status", "-t", ""], table) == [*TARGETS, "json"]
    assert offered(["server", ""], table) == ["serve", "migrate", "add-user", "token"]
    assert offered(["auth", ""], table) == ["login", "logout", "status"]
    assert offered(["auth", "login", ""], table) == sorted(remote.PROVIDERS)
    assert offered(["auth", "logout", ""], table) == sorted(remote.KEYED)
    assert "--with-token" in offered(["auth", "login", "claude", "-"], table)
    assert offered(["service", "install", "--kind", ""], table) == ["systemd", "launchd"]
    # the comma-separated --source: each name not listed yet, after the list
    assert offered(["daily", "--source", "claude,co"], table) == [
        f"claude,{name}" for name in sources.NAMES if name != "claude"]
    assert offered(["daily", "--source=codex,"], table)[0] == "--source=codex,claude"
    # files and directories are the shell's to complete
    assert completion.complete(["graph", "--svg", ""], "fish", table)[0] == "files"
    assert completion.complete(["export", "-o", "x"], "fish", table)[0] == "files"
    assert completion.complete(["sync", "--target", ""], "fish", table)[0] == "dirs"
    assert completion.complete(["init", "bash", "--bin="], "fish", table)[0] == "files"
    # a value is not taken for a command; what was given is not offered again
    assert offered(["daily", "--tz", "--json"], table) == []  # "--json" is the zone's text
    assert offered(["daily", "--tz", "UTC", "--json", "--ch"], table, "bash") == ["--chart"]
    rest = offered(["daily", "--json", "--device", "x", "-"], table)
    assert "--json" not in rest and "--device" in rest  # --device may be repeated
    assert offered(["daily", "--sou", "", ], table) == list(sources.NAMES)  # a prefix
    assert offered(["login", ""], table) == ["--help", "--token"]  # the URL is free text
    assert "UTC" in offered(["daily", "--tz", "UT"], table, "bash")


def test_dates_are_days_reports_accept(table: dict[str, Any]) -> None:
    today = dt.date.today()
    pairs = completion.complete(["daily", "--since", ""], "fish", table)[1]
    found = dict(pairs)
    assert len(found) == len(pairs)  # a day once, with all its names
    assert found[today.isoformat()].split(", ")[0] == "today"
    assert found[(today - dt.timedelta(days=1)).isoformat()].startswith("yesterday")
    assert "this month" in found[today.replace(day=1).isoformat()].split(", ")
    assert "this year" in found[today.replace(month=1, day=1).isoformat()].split(", ")
    for day in found:
        assert parse_day(day, "--since") <= today
    month = offered(["weekly", "--until", today.strftime("%Y-%m-")], table)
    assert {d for d in month if d.startswith(today.strftime("%Y-%m-"))} == {
        today.replace(day=d).isoformat() for d in range(1, today.day + 1)}
    assert offered(["graph", "--until", ""], table)[0] == today.isoformat()


def test_devices_are_read_without_writing(home: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "odd ?#%20 dir" / "ledger.sqlite3"  # characters a URI must escape
    monkeypatch.setenv("TOKLINE_LEDGER", str(ledger))
    monkeypatch.setattr(socket, "gethostname", lambda: "the-host")
    assert completion.device_values() == [("the-host", "this device")]
    assert not ledger.parent.exists()  # no ledger, no device id made
    ledger.parent.mkdir()
    with sqlite3.connect(ledger) as db:
        db.execute("CREATE TABLE devices(id INTEGER PRIMARY KEY, name TEXT, last_seen_ms)")
        db.executemany("INSERT INTO devices VALUES (?, ?, NULL)", [(7, "mine"), (5, "other")])
    db.close()
    (ledger.parent / "device-id").write_text(f"{7:016x}\n")
    assert completion.device_values() == [("mine", "this device"), ("other", "")]
    config = home / ".config" / "tokline" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[sync]\ndevice = "renamed"\n')
    assert completion.device_values() == [("renamed", "this device"), ("other", "")]
    assert sorted(p.name for p in ledger.parent.iterdir()) == ["device-id", "ledger.sqlite3"]


def test_nothing_unprintable_is_offered(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str],
                                        table: dict[str, Any]) -> None:
    monkeypatch.setattr(completion, "load_table", lambda: table)
    monkeypatch.setattr(completion, "device_values", lambda: [
        ("ok", "a\x1b[2Jb\tc\nd"), ("bad\x1b]0;x\x07", ""), ("two\nlines", "")])
    for shell, line in (("fish", "ok\ta [2Jb c d"), ("zsh", "ok\ta [2Jb c d"),
                        ("bash", "ok")):
        assert completion.answer([shell, "--", "daily", "--device", ""]) == 0
        assert capsys.readouterr().out == f"words\n{line}\n"


def test_bash_words_split_at_equals(table: dict[str, Any]) -> None:
    assert completion.join_equals(["daily", "--source", "=", "cl"]) == (
        ["daily", "--source=cl"], len("--source="))
    assert completion.join_equals(["daily", "--source", "="]) == (
        ["daily", "--source="], len("--source="))
    assert completion.join_equals(["a", "=", "b"]) == (["a", "=", "b"], 0)
    assert completion.bash_unquote("work\\ l") == "work l"
    assert completion.bash_unquote("'work l") == "work l"
    assert completion.bash_unquote('"a b"') == "a b"
    assert offered(["daily", "--source", "=", "cl"], table, "bash") == [
        name for name in sources.NAMES if name.startswith("cl")]
    assert offered(["daily", "--source", "=", "claude,g"], table, "bash") == [
        f"claude,{name}" for name in sources.NAMES if name.startswith("g")]


def test_the_table_is_cached_until_the_package_changes(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    real = completion.build_table

    def counting() -> dict[str, Any]:
        built.append(1)
        return real()

    monkeypatch.setattr(completion, "build_table", counting)
    first = completion.load_table()
    again = completion.load_table()
    assert len(built) == 1 and again == first
    cached = home / ".cache" / "tokline" / completion.CACHE
    assert cached.stat().st_mode & 0o077 == 0
    monkeypatch.setattr(completion, "package_stamp", lambda: "another install")
    completion.load_table()
    assert len(built) == 2
    for planted in ("{not json", "[]"):
        cached.write_text(planted)
        completion.load_table()
    assert len(built) == 4


def test_a_tab_imports_no_command_and_no_argparse(env: dict[str, str]) -> None:
    """A TAB costs the interpreter's start, tokline.cli and a marshal read: none of the
    commands' modules (half a second together), not argparse, and not json (which imports
    re, as long as all the rest)."""
    code = ("import sys\nfrom tokline.cli import main\nbefore = set(sys.modules)\n"
            "main(sys.argv[1:])\n"
            "print(*sorted(set(sys.modules) - before), sep='\\n', file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, "completion", "--complete", "bash",
                           "--", "daily", "--so"], env=env, capture_output=True, text=True,
                          check=True)
    assert done.stdout == "words\n--source\n"
    loaded = set(done.stderr.split())
    assert "tokline.commands.completion" in loaded
    heavy = {m for m in loaded if m.startswith("tokline.") and m.split(".")[1] in (
        "engine", "ledger", "accounting", "sync", "remote", "surfaces", "config")}
    heavy |= loaded & {"argparse", "json", "re", "sqlite3", "tokline.commands.report"}
    assert not heavy


# --- the real shells ------------------------------------------------------------------

BASH_DRIVER = r"""
source "$1"
tab() {  # the words of a command line as bash splits them; the last one is completed
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    __tokline_complete
    printf '%s|' "${COMPREPLY[@]}"
    printf '\n'
}
tab tokline da
tab tokline daily --source ''
tab tokline daily --so
tab tokline daily --device ''
tab tokline daily --source = cl
tab tokline init ''
tab tokline auth login c
tab tokline export -o d
tab tokline daily --device 'work\ l'
tab tokline daily --device "'work l"
"""


def test_bash_completion_function(env: dict[str, str], tmp_path: Path) -> None:
    bash = need("bash")
    path = script(env, "bash", tmp_path)
    work = tmp_path / "work"
    (work / "dir").mkdir(parents=True)
    out = subprocess.run([bash, "--norc", "--noprofile", "-c", BASH_DRIVER, "bash", str(path)],
                         env=env, cwd=work, capture_output=True, text=True, timeout=60,
                         check=True).stdout.splitlines()
    from tokline.commands.init import SCRIPTS

    assert out == [
        "daily|dashboard|",
        "|".join(sources.NAMES) + "|",
        "--source|",
        "desktop|work\\ laptop|",  # this device first; the space escaped for the line
        # --source=cl: bash replaces the part after "="
        "|".join(name for name in sources.NAMES if name.startswith("cl")) + "|",
        "|".join([*SCRIPTS, "tmux"]) + "|",
        "|".join(sorted(p for p in remote.PROVIDERS if p.startswith("c"))) + "|",
        "dir|",  # -o FILE: bash's own file completion
        "work\\ laptop|",  # typed escaped
        "work laptop|",  # typed in an open quote: readline closes it
    ]


class Tmux:
    """A private tmux server with one 120x40 window running ``argv``."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.server = ["tmux", "-L", f"tokline-compl-{os.getpid()}-{id(self)}", "-f",
                       "/dev/null"]
        subprocess.run([*self.server, "new-session", "-d", "-s", "t", "-x", "120", "-y", "40",
                        *argv], env=env, cwd=cwd, check=True)

    def screen(self) -> str:
        return subprocess.run([*self.server, "capture-pane", "-p", "-t", "t"],
                              capture_output=True, text=True, check=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.server, "send-keys", "-t", "t", *keys], check=True)

    def wait(self, predicate: Any, what: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}; the screen:\n{screen}")
            time.sleep(0.05)

    def close(self) -> None:
        socket_path = subprocess.run([*self.server, "display-message", "-p",
                                      "#{socket_path}"], capture_output=True, text=True,
                                     check=False).stdout.strip()
        subprocess.run([*self.server, "kill-server"], capture_output=True, check=False)
        if socket_path:  # tmux leaves it behind
            Path(socket_path).unlink(missing_ok=True)


@pytest.fixture
def tmux_shell(env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    need("tmux")
    opened: list[Tmux] = []

    def start(argv: list[str], extra: dict[str, str]) -> Tmux:
        term = Tmux(argv, {**env, "TERM": "xterm-256color", **extra}, tmp_path)
        opened.append(term)
        term.wait(lambda s: "READY" in s, "the shell did not start")
        return term

    yield start
    for term in opened:
        term.close()


def _typed(term: Tmux, line: str, what: str, predicate: Any) -> str:
    term.keys("C-u", "clear", "Enter")
    term.wait(lambda s: "READY" in s and "tokline" not in s, "the screen did not clear")
    term.keys(line, "Tab")
    return term.wait(predicate, what)


def _completed(term: Tmux, line: str, expected: str, what: str) -> None:
    """TAB after ``line`` makes it ``expected`` and a space (the pane shows no trailing
    space: a typed X shows where the cursor was)."""
    _typed(term, line, what, lambda s: expected in s)
    term.keys("X")
    term.wait(lambda s: f"{expected} X" in s, what)


def test_bash_interactive_tab(env: dict[str, str], tmp_path: Path, tmux_shell: Any) -> None:
    bash = need("bash")
    path = script(env, "bash", tmp_path)
    rc = tmp_path / "bashrc"
    rc.write_text(f"source {path}\nPS1='READY$ '\n")
    term = tmux_shell([bash, "--noprofile", "--rcfile", str(rc), "-i"], {})
    _completed(term, "tokline dai", "READY$ tokline daily", "TAB did not complete daily")
    term.keys("BSpace", "--source", "Space", "Tab", "Tab")
    term.wait(lambda s: all(n in s for n in sources.NAMES), "the sources were not listed")


def test_zsh_compinit_tab(env: dict[str, str], tmp_path: Path, tmux_shell: Any) -> None:
    """zsh's completion system, twice: the script eval'd after compinit, and saved as
    _tokline in $fpath for compinit to autoload."""
    zsh = need("zsh")
    path = script(env, "zsh", tmp_path)
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "_tokline").write_text(path.read_text())
    for how, setup in (("eval", f'compinit -u -d {tmp_path}/dump1\neval "$(<{path})"'),
                       ("fpath", f"fpath=({functions} $fpath)\n"
                                 f"compinit -u -d {tmp_path}/dump2")):
        zdot = tmp_path / how
        zdot.mkdir()
        (zdot / ".zshrc").write_text(f"autoload -Uz compinit\n{setup}\nPS1='READY%% '\n")
        term = tmux_shell([zsh, "-i"], {"ZDOTDIR": str(zdot)})
        _completed(term, "tokline dai", "READY% tokline daily",
                   f"{how}: TAB did not complete daily")
        term.keys("BSpace", "--source", "Space", "Tab")
        term.wait(lambda s: all(n in s for n in sources.NAMES),
                  f"{how}: the sources were not listed")
        _typed(term, "tokline da", f"{how}: daily and dashboard were not listed with help",
               lambda s: "daily" in s and "-- full-screen live dashboard" in s)
        _completed(term, "tokline daily --device work", "tokline daily --device work\\ laptop",
                   f"{how}: the device was not completed")


def test_fish_complete(env: dict[str, str], tmp_path: Path) -> None:
    fish = need("fish")
    path = script(env, "fish", tmp_path)
    lines = ["tokline da", "tokline daily --source ", "tokline daily --device ",
             "tokline daily --source=claude,", "tokline auth login ", "tokline dail"]
    commands = [f"source {path}"]
    for line in lines:
        commands += [f"complete -C '{line}'", "echo '@@'"]
    out = subprocess.run([fish, "--no-config", "-c", "; ".join(commands)], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    blocks = [[ln.split("\t") for ln in b.strip("\n").splitlines()]
              for b in out.split("@@\n")[:-1]]
    assert [v for v, *_ in blocks[0]] == ["daily", "dashboard"]
    assert dict(blocks[0])["daily"] == cli.COMMANDS["daily"][1]
    assert sorted(v for v, *_ in blocks[1]) == sorted(sources.NAMES)
    assert ["desktop", "this device"] in blocks[2] and ["work laptop"] in blocks[2]
    assert [v for v, *_ in blocks[3]] == sorted(f"--source=claude,{n}"
                                                for n in sources.NAMES if n != "claude")
    assert [v for v, *_ in blocks[4]] == sorted(remote.PROVIDERS)
    assert [v for v, *_ in blocks[5]] == ["daily"]


# --- the scripts themselves -----------------------------------------------------------

def test_scripts_pass_the_linters() -> None:
    shell = ROOT / "shell"
    subprocess.run([need("shellcheck"), "-x", "-P", "SCRIPTDIR", "--enable", "all",
                    str(shell / "completion.bash")], check=True)
    subprocess.run([need("zsh"), "-n", str(shell / "completion.zsh")], check=True)
    subprocess.run([need("fish_indent"), "--check", str(shell / "completion.fish")],
                   check=True)
    if shutil.which("shfmt"):
        subprocess.run(["shfmt", "-d", "-i", "4", "-ci", str(shell / "completion.bash")],
                       check=True)


def test_init_mentions_completion(env: dict[str, str]) -> None:
    for shell in ("bash", "zsh", "fish"):
        assert f"tokline completion {shell}" in tokline(env, "init", shell)


def test_a_day_with_several_names_is_offered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    class NewYear(dt.date):
        @classmethod
        def today(cls) -> NewYear:
            return cls(2027, 1, 1)

    monkeypatch.setattr(dt, "date", NewYear)
    found = completion.date_values("")
    assert found[0] == ("2027-01-01", "today, this month, this year")
    assert [v for v, _ in found] == ["2027-01-01", "2026-12-31", "2026-12-26", "2026-12-01"]
    assert found[-1] == ("2026-12-01", "last month")
