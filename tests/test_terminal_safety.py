"""Issue 14: hostile text from logs and stdin never reaches a terminal as control
sequences, and a state dir another user could have written is refused.

Hostile model names, session ids and cwds go into real-looking Claude Code log lines and
into the status line's stdin; every text command runs as a subprocess and its output must
hold no control character, C1 code or bidi control of the input (tokline's own colour
codes aside), no traceback, and stay bounded.  JSON and CSV output are data: exact.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tokline.accounting.totals import Totals
from tokline.prompt import safetext, statefiles
from tokline.prompt import template as render
from tokline.surfaces import dashboard_text
from tokline.surfaces.dashboard_data import DashData

CONTROLS = "".join(chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)])
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
INVISIBLE = "\u200b\u2060\ufeff\u2028\u2029"
HOSTILE = [
    "claude-\x1b]0;pwned\x07opus",  # OSC: sets the window title
    "\x1b[2J\x1b[31mred\x1b[0m",  # CSI: clears the screen
    "\x9b31mc1-csi",  # the one-byte C1 CSI
    "\x1bP+q544e\x1b\\",  # DCS
    "evil\u202egnp.exe",  # right-to-left override
    "nul\x00byte\rcr\bbs",
    "$(id)`id`", "#(touch /tmp/tokline-pwned)#[fg=red]", "%F{red}%~%f",
    "all" + CONTROLS + BIDI + INVISIBLE,
]
OWN_CODES = ("\x1b[33m", "\x1b[31m", "\x1b[0m", "\x01", "\x02")  # tokline's own colours
UNSAFE = set(CONTROLS) - {"\n"} | set(BIDI) | set(INVISIBLE)


def assert_terminal_safe(text: str, bound: int = 200_000) -> None:
    for code in OWN_CODES:
        text = text.replace(code, "")
    found = sorted({f"U+{ord(ch):04X}" for ch in text if ch in UNSAFE})
    assert not found, f"control characters reach the terminal: {found}"
    assert "Traceback" not in text
    assert len(text) < bound


# -- the sanitiser -------------------------------------------------------------------


def test_every_control_and_bidi_character_is_shown_escaped() -> None:
    for ch in CONTROLS:
        assert safetext.clean(f"a{ch}b") == f"a\\x{ord(ch):02x}b"
    for ch in BIDI + INVISIBLE:
        assert safetext.clean(ch) == f"\\u{ord(ch):04x}"
    assert safetext.clean("x\udcffy") == "x\\udcffy"  # undecodable byte of a path
    assert safetext.clean("\x1b]0;pwned\x07") == "\\x1b]0;pwned\\x07"
    for text in HOSTILE:
        assert safetext.is_clean(safetext.clean(text, None))


def test_ordinary_text_is_unchanged() -> None:
    for text in ("claude-opus-4-5-20251101", "C:\\Users\\me\\proj", "/home/ü/проект/日本",
                 "👨\u200d👩\u200d👧 family", "$(id) #(x) %F{red}", ""):
        assert safetext.clean(text) == text
    assert safetext.clean(None) == "" and safetext.clean(42) == "42"


def test_length_is_capped_with_an_ellipsis_never_inside_an_escape() -> None:
    assert safetext.clean("x" * safetext.LIMIT) == "x" * safetext.LIMIT
    long = safetext.clean("x" * 1000)
    assert len(long) == safetext.LIMIT and long.endswith("…")
    assert safetext.clean("\x1b" * 10, 10) == "\\x1b\\x1b…"
    assert safetext.clean("ab\x1e", 3, keep="\x1e") == "ab\x1e"
    started = time.perf_counter()
    assert len(safetext.clean("m" * 50_000_000 + "\x1b")) == safetext.LIMIT
    assert time.perf_counter() - started < 0.5


def test_each_target_escapes_after_the_sanitiser() -> None:
    value = "%F{red}$(id)#(touch x)\x1b]0;t\x07\u202e"
    parts = render.parse_template("{session.cost} · {today.cost}")
    values: dict[str, Any] = {"session.cost": (value, None), "today.cost": ("\x1e", None)}
    out = {target: render.render(parts, values, target) for target in render.TARGETS}
    assert out["zsh"].startswith("%%F{red}$(id)#(touch x)\\x1b]0;t\\x07\\u202e")
    assert out["tmux"].startswith("%F{red}$(id)##(touch x)\\x1b")
    assert out["plain"].endswith(" · \x1e")  # the time-left placeholder passes
    for text in out.values():
        assert_terminal_safe(text.replace("\x1e", ""))


# -- hostile logs through every text command ------------------------------------------


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def write_hostile_logs(home: Path) -> None:
    now = time.time()
    for index, text in enumerate(HOSTILE):
        folder = home / ".claude" / "projects" / f"-proj-{index}"
        folder.mkdir(parents=True)
        line = {"timestamp": _iso(now - 600 + index), "sessionId": text, "cwd": "/w/" + text,
                "type": "assistant", "requestId": f"req-{index}",
                "message": {"role": "assistant", "id": f"msg-{index}", "model": text,
                            "usage": {"input_tokens": 100, "output_tokens": 50,
                                      "cache_creation_input_tokens": 0,
                                      "cache_read_input_tokens": 0}},
                "costUSD": 0.5, "version": "1.0.0"}
        (folder / f"s{index}.jsonl").write_text(json.dumps(line) + "\n")


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CLAUDE_CONFIG_DIR", "TOKLINE_LEDGER", "TOKLINE_CONFIG", "NO_COLOR")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local" / "share"),
               XDG_STATE_HOME=str(home / ".local" / "state"),
               XDG_CACHE_HOME=str(home / ".cache"), TZ="UTC")
    return env


def tokline(env: dict[str, str], *args: str, stdin: bytes | None = None
            ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "tokline", *args], capture_output=True,
                          timeout=180, env=env, input=stdin if stdin is not None else b"")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("hostile") / "home"
    home.mkdir()
    write_hostile_logs(home)
    env = env_for(home)
    scan = tokline(env, "scan", "-q")
    assert scan.returncode == 0, scan.stderr
    yield env


def decoded(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stdout.decode("utf-8") + proc.stderr.decode("utf-8")


@pytest.mark.parametrize("command", ["daily", "weekly", "monthly", "session", "projects",
                                     "models", "blocks"])
def test_reports_show_hostile_names_escaped(hostile: dict[str, str], command: str) -> None:
    proc = tokline(hostile, command, "--offline")
    assert proc.returncode == 0, proc.stderr
    text = decoded(proc)
    assert_terminal_safe(text)
    if command in ("models", "session", "projects", "blocks"):
        assert "\\x1b" in text  # shown, as an escape


def test_report_json_keeps_the_exact_values(hostile: dict[str, str]) -> None:
    proc = tokline(hostile, "models", "--offline", "--json")
    keys = {row["key"] for row in json.loads(proc.stdout)["rows"]}
    assert set(HOSTILE) <= keys


def test_csv_export_is_data_and_keeps_the_exact_values(hostile: dict[str, str]) -> None:
    """CSV is a file format like JSON: the values stay exact (see the report of issue 14
    for when it goes to a terminal)."""
    proc = tokline(hostile, "export", "--csv", "--by", "session", "--offline")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout.decode("utf-8"), newline="")))
    assert {row["model"] for row in rows} >= {t for t in HOSTILE if "\x00" not in t}


def test_csv_export_on_a_terminal_shows_log_text_escaped(hostile: dict[str, str]) -> None:
    """The same CSV printed to a terminal goes through the sanitiser."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tokline", "export", "--csv", "--by",
                             "session", "--offline"], env=hostile, stdout=follower,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    text = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    assert_terminal_safe(text)
    assert "\\x1b" in text  # shown, as an escape


@pytest.mark.parametrize("target", render.TARGETS)
def test_status_targets_stay_clean(hostile: dict[str, str], target: str) -> None:
    for args in (["--target", target], ["--target", target, "--format",
                                        "{today.cost} {session.cost} [{block.cost}]"]):
        proc = tokline(hostile, "status", *args)
        assert proc.returncode == 0, proc.stderr
        assert_terminal_safe(decoded(proc))


def statusline_payload(text: str) -> dict[str, Any]:
    return {"session_id": text, "cwd": text, "transcript_path": text,
            "model": {"id": text, "display_name": text},
            "workspace": {"current_dir": text, "project_dir": text},
            "output_style": {"name": text}, "version": text,
            "cost": {"total_cost_usd": 0.25},
            "rate_limits": {"five_hour": {"used_percentage": 12, "resets_at": time.time() + 60},
                            text: {"used_percentage": 50}}}


@pytest.mark.parametrize("text", HOSTILE)
def test_statusline_escapes_stdin(hostile: dict[str, str], text: str) -> None:
    proc = tokline(hostile, "statusline", stdin=json.dumps(statusline_payload(text)).encode())
    assert proc.returncode == 0, proc.stderr
    out = decoded(proc)
    assert_terminal_safe(out)
    assert "$0.25 session" in out


def test_statusline_caps_a_50_mb_name_and_its_input(hostile: dict[str, str]) -> None:
    huge = "m" * 50_000_000
    payload = json.dumps({"model": {"display_name": huge}, "cost": {"total_cost_usd": 1}})
    proc = tokline(hostile, "statusline", stdin=payload.encode())
    assert proc.returncode == 0 and "Traceback" not in proc.stderr.decode()
    assert len(proc.stdout) < 1000
    name = "n" * 5000  # under the input cap: the name itself is capped
    proc = tokline(hostile, "statusline",
                   stdin=json.dumps({"model": {"display_name": name}}).encode())
    assert 0 < len(proc.stdout) < 200 and "…" in proc.stdout.decode()


def test_quota_shows_remote_names_and_errors_escaped(hostile: dict[str, str]) -> None:
    state = Path(hostile["XDG_STATE_HOME"]) / "tokline"
    remote = {f"copilot:{text}": {"fetched_at": time.time(), "error": text,
                                  "windows": [{"source": text, "window": text, "note": text,
                                               "used_percent": 50.0}]}
              for text in HOSTILE}
    (state / "remote.json").write_text(json.dumps(remote))
    try:
        proc = tokline(hostile, "quota")
        assert proc.returncode == 0, proc.stderr
        assert_terminal_safe(decoded(proc))
        assert "error: \\x1b" in decoded(proc)
        assert json.loads(tokline(hostile, "quota", "--json").stdout)["errors"]
    finally:
        (state / "remote.json").unlink()


def test_doctor_shows_hostile_paths_escaped(hostile: dict[str, str]) -> None:
    env = {**hostile, "CLAUDE_CONFIG_DIR": "/nowhere/\x1b]0;pwned\x07\u202e"}
    proc = tokline(env, "doctor")
    assert_terminal_safe(decoded(proc))
    assert "/nowhere/\\x1b]0;pwned" in decoded(proc)


def test_dashboard_tabs_show_hostile_names_escaped() -> None:
    totals = Totals()
    totals.cost_usd = 1.0
    view = {"today": {"cost_usd": 1.0, "total_tokens": 10,
                      "sources": {t: {"cost_usd": 1.0} for t in HOSTILE[:2]}},
            "quota": [{"source": t, "window": t, "note": t, "used_percent": 10.0,
                       "device": t} for t in HOSTILE]}
    data = DashData(now=time.time(), period="d", view=view, snapshot_age_s=None,
                    models=[(t, totals) for t in HOSTILE],
                    sessions=[(t, t, "/w/" + t, t, totals) for t in HOSTILE],  # device t
                    projects=[("/w/" + t, totals) for t in HOSTILE],
                    remote={f"copilot:{t}": {"error": t, "fetched_at": time.time()}
                            for t in HOSTILE})
    for tab in (dashboard_text.overview, dashboard_text.models, dashboard_text.sessions,
                dashboard_text.quota):
        for width in (40, 120):
            assert_terminal_safe(dashboard_text.plain(tab(data, width)))


# -- directories others may write -----------------------------------------------------


PLANTED = ("tokline-lines 1 10 3600 - - {now}\n"
           + "".join(f"{t}\t$(id)#(touch /tmp/tokline-pwned)\x1b]0;PLANTED\x07 %F{{red}}\n"
                     for t in render.TARGETS)
           + "".join(f"{t}-nc\tPLANTED $(id)\n" for t in render.TARGETS))

NOBODY = pwd.getpwnam("nobody").pw_uid if "nobody" in {p.pw_name for p in pwd.getpwall()} \
    else 65534


def plant(home: Path, how: str) -> Path:
    """A state dir holding a planted status.lines, snapshot.json and claude state."""
    state = home / ".local" / "state" / "tokline"
    state.mkdir(parents=True)
    (state / "status.lines").write_text(PLANTED.replace("{now}", str(int(time.time()))))
    snap = {"generated_at": time.time(), "today": {"cost_usd": 987654.0, "end": 4e9,
                                                   "unpriced": False, "total_tokens": 1}}
    (state / "snapshot.json").write_text(json.dumps(snap))
    (state / "claude-status.json").write_text(json.dumps({"session_cost_usd": 987654.0}))
    if how in ("other-owner", "world-writable-planted"):
        if os.geteuid() != 0:
            pytest.skip("planting a file of another user needs root")
        for path in [state, *state.iterdir()] if how == "other-owner" else state.iterdir():
            os.chown(path, NOBODY, -1)
    state.chmod(0o755 if how == "other-owner" else 0o777)
    return state


HOW = ["other-owner", "world-writable-planted", "world-writable-own-file"]


@pytest.mark.parametrize("how", HOW)
def test_status_refuses_a_state_dir_others_can_write(home: Path, how: str) -> None:
    state = plant(home, how)
    env = env_for(home)
    for target in render.TARGETS:
        proc = tokline(env, "status", "--target", target)
        assert proc.stdout == b"" and proc.returncode == 1
        err = proc.stderr.decode()
        assert err.count("\n") == 1 and err.startswith(f"tokline: refusing {state}: ")
        assert ("owned by uid" if how == "other-owner" else "writable by") in err
        assert ("; fix with mv " if how == "other-owner" else "; fix with chmod 700 ") in err
    full = tokline(env, "status", "--format", "{today.cost}")
    assert full.stdout == b"" and full.returncode == 1 and b"refusing" in full.stderr
    assert not (state / statefiles.LOCK).exists()  # no refresh started into it
    quota = tokline(env, "quota")
    assert quota.stdout == b"" and quota.stderr.count(b"\n") == 1


@pytest.mark.parametrize("how", HOW)
def test_statusline_reads_nothing_from_a_state_dir_others_can_write(home: Path, how: str
                                                                    ) -> None:
    state = plant(home, how)
    before = (state / "claude-status.json").read_bytes()
    payload = json.dumps({"session_id": "s", "model": {"display_name": "Opus"},
                          "cost": {"total_cost_usd": 0.5}}).encode()
    proc = tokline(env_for(home), "statusline", stdin=payload)
    out = proc.stdout.decode()
    assert proc.returncode == 0 and out.startswith("Opus · $0.50 session")
    assert "987" not in out and b"refusing" in proc.stderr
    assert (state / "claude-status.json").read_bytes() == before  # nothing written


@pytest.mark.parametrize(("kind", "command"), [
    ("state", "daily"), ("state", "scan"), ("state", "refresh"), ("share", "daily"),
    ("share", "scan"), ("share", "refresh"), ("share", "watch")])
def test_slow_commands_refuse_a_state_or_data_dir_others_can_write(home: Path, kind: str,
                                                                   command: str) -> None:
    """A report, a scan or a refresh would write the snapshot (state) or the ledger
    (data) there: one line instead, and nothing written."""
    directory = home / ".local" / kind / "tokline"
    directory.mkdir(parents=True)
    directory.chmod(0o777)
    proc = tokline(env_for(home), command)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.count("\n") == 1 and proc.stdout == b""
    assert err.startswith(f"tokline: refusing {directory}: writable by group and others")
    assert not list(directory.iterdir())


def test_writers_refuse_a_state_dir_others_can_write(tmp_path: Path) -> None:
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    unsafe.chmod(0o757)
    with pytest.raises(statefiles.UnsafeDir, match="writable by others"):
        statefiles.write_private(str(unsafe / "x"), b"x")
    assert not list(unsafe.iterdir())
    assert statefiles.take_lock(str(unsafe)) is False
    fresh = tmp_path / "fresh" / "tokline"
    statefiles.write_private(str(fresh / "x"), b"x")  # created 0700, file 0600
    assert fresh.stat().st_mode & 0o777 == 0o700 and (fresh / "x").stat().st_mode & 0o777 == 0o600


HOOK_RUN = {
    "bash": ["bash", "--norc", "--noprofile", "-c",
             'source "$1"; __tokline_update; printf "[%s]" "$TOKLINE_STATUS"', "-"],
    "zsh": ["zsh", "-f", "-c",
            'source "$1"; __tokline_update; '
            'printf "[%s]" "$TOKLINE_STATUS$TOKLINE_STATUS_PLAIN"', "-"],
    "fish": ["fish", "--no-config", "-c",
             'source $argv[1]; __tokline_update; printf "[%s]" "$TOKLINE_STATUS"'],
}


def run_hook(shell: str, home: Path, tmp_path: Path) -> str:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    log = tmp_path / "calls.log"
    shim = tmp_path / "bin" / "tokline"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {sys.executable} -m tokline "$@"\n')
    shim.chmod(0o755)
    script = tmp_path / f"init.{shell}"
    script.write_text(subprocess.run([sys.executable, "-m", "tokline", "init", shell, "--bin",
                                      str(shim)], capture_output=True, text=True,
                                     check=True).stdout)
    proc = subprocess.run([*HOOK_RUN[shell], str(script)], capture_output=True, text=True,
                          timeout=60, env=env_for(home))
    time.sleep(0.3)  # a refresh the hook started would have logged by now
    assert not log.exists(), "the hook started a refresh into a directory others can write"
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize("how", ["other-owner", "world-writable-planted"])
def test_shell_hooks_show_nothing_planted(home: Path, tmp_path: Path, shell: str, how: str
                                          ) -> None:
    plant(home, how)
    assert run_hook(shell, home, tmp_path) == "[]"


def test_zsh_hook_checks_the_mode_too(home: Path, tmp_path: Path) -> None:
    """A group- or world-writable dir holding the user's own file: zsh reads the mode
    with a glob qualifier; bash and fish have no builtin for it (file ownership is their
    check, which any file another user planted fails)."""
    plant(home, "world-writable-own-file")
    assert run_hook("zsh", home, tmp_path) == "[]"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_hooks_read_a_private_state_dir(home: Path, tmp_path: Path, shell: str) -> None:
    state = plant(home, "private")
    state.chmod(0o700)
    assert "PLANTED" in run_hook(shell, home, tmp_path)  # the check lets the user's own through


@pytest.mark.parametrize("command", [["daily"], ["status", "--format", "{today.cost}"]])
def test_a_config_dir_others_can_write_is_refused(home: Path, command: list[str]) -> None:
    """A template from a directory others can write would choose what prompts show."""
    directory = home / ".config" / "tokline"
    directory.mkdir(parents=True)
    (directory / "config.toml").write_text('[status]\ntemplate = "planted {today.cost}"\n')
    directory.chmod(0o777)
    proc = tokline(env_for(home), *command)
    err = proc.stderr.decode()
    assert proc.returncode != 0 and "planted" not in proc.stdout.decode()
    assert err.startswith(f"tokline: refusing {directory}: writable by group and others")
    assert err.count("\n") == 1 and "Traceback" not in err
