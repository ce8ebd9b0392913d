"""``tokline tray``: the icon's text, colours and picture, the menu, the terminal and
autostart commands (plain functions), and the tray itself on a real X server.

The desktop tests start Xvfb on a free display, trayer (an XEmbed system tray, the
stand-in for a panel) and one ``tokline tray`` on the demo history, shared by the module;
they look at the window tree (xwininfo), take screenshots (ImageMagick's ``import``, kept
in ``.ci/artifacts/`` or TOKLINE_ARTIFACTS), click and type with xdotool, and read the
process's CPU time from /proc.  They skip, saying what is missing, without those programs
or the ``tray`` extra (pystray, Pillow, PyGObject); ``.ci/run`` installs them.
"""

from __future__ import annotations

import functools
import json
import os
import plistlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tokline.commands import tray as command
from tokline.config import parse
from tokline.errors import ConfigError, ToklineError
from tokline.prompt.fields import as_of, rendered
from tokline.prompt.template import parse_template
from tokline.surfaces import tray

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ("Xvfb", "trayer", "xdotool", "xwininfo", "import")
SHOT_SIZE = (800, 600)
NOW = 1_780_000_000  # a fixed moment for the views built here


def has_pil() -> bool:
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


def view_of(snap: dict[str, Any], now: float = NOW, template: str = "full",
            age: float | None = 0.0) -> dict[str, Any]:
    """A view as tokline watch's Emitter makes it: the snapshot as of ``now`` with
    ``rendered``."""
    view = as_of(snap, now)
    view["rendered"] = rendered(view, parse_template(template), now, age)
    return view


def snapshot(cost: float = 4.21, quota: list[dict[str, Any]] | None = None,
             block: bool = True, budget: dict[str, Any] | None = None) -> dict[str, Any]:
    day = {"start": NOW - 3600, "end": NOW + 3600, "cost_usd": cost, "unpriced": False,
           "total_tokens": 1_234_567, "sources": {}}
    snap: dict[str, Any] = {"today": day, "week": {**day, "cost_usd": cost * 3},
                            "month": {**day, "cost_usd": cost * 9},
                            "quota": quota or [], "budget": budget or {},
                            "thresholds": {"warn": 80, "critical": 95},
                            "stale_after_s": 3600}
    if block:
        snap["block"] = {"start": NOW - 3 * 3600, "end": NOW + 2 * 3600 - 13 * 60,
                         "active": True, "cost_usd": 1.8, "unpriced": False,
                         "total_tokens": 500_000, "burn_rate_usd_per_hour": 0.6,
                         "projected_cost_usd": 3.0}
    return snap


WINDOWS = [
    {"source": "claude", "window": "5h", "used_percent": 41.0, "resets_at": NOW + 5400,
     "kind": "official", "as_of": NOW - 30, "window_s": 18000.0},
    {"source": "claude", "window": "7d", "used_percent": 87.4, "resets_at": NOW + 86400,
     "kind": "official", "as_of": NOW - 30, "window_s": 604800.0},
]


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def nearer(colour: tuple[int, ...], one: str, other: str) -> bool:
    """``colour`` is nearer ``one`` than ``other`` (text's edges are blends of both)."""
    return sum((a - b) ** 2 for a, b in zip(colour[:3], rgb(one), strict=True)) < \
        sum((a - b) ** 2 for a, b in zip(colour[:3], rgb(other), strict=True))


# -- the icon ---------------------------------------------------------------------------


@pytest.mark.parametrize(("cost", "text"), [
    (0, "$0.0"), (4.21, "$4.2"), (9.94, "$9.9"), (9.96, "$10"), (12.49, "$12"),
    (999.4, "$999"), (999.6, "1.0k"), (1234, "1.2k"), (9_960, "10k"), (123_456, "123k"),
    (999_600, "1.0M"), (4_200_000, "4.2M"), (-1, "$0.0")])
def test_money_fits_four_characters(cost: float, text: str) -> None:
    assert tray.compact_money(cost) == text
    assert len(text) <= 4


def test_icon_text_is_todays_spend_or_the_binding_quota() -> None:
    view = view_of(snapshot(cost=12.3, quota=WINDOWS))
    assert tray.icon_text(view, "cost") == "$12"
    # {quota.bind} renders "7d 87%": the icon keeps the percentage
    assert view["rendered"]["fields"]["quota.bind"] == "7d 87%"
    assert tray.icon_text(view, "quota") == "87%"
    assert tray.icon_text(view_of(snapshot()), "quota") == "--%"
    stale = [{**w, "as_of": NOW - 7200} for w in WINDOWS]
    assert tray.icon_text(view_of(snapshot(quota=stale)), "quota") == "87%*"


def test_icon_colours_follow_the_status_thresholds() -> None:
    calm = view_of(snapshot())
    assert calm["rendered"]["level"] is None
    assert tray.icon_colours(calm) == tray.COLOURS[None]
    # 87 % of a quota window: past warn (80), as `tokline status` colours it
    warn = view_of(snapshot(quota=WINDOWS))
    assert warn["rendered"]["level"] == "warn"
    assert tray.icon_colours(warn) == tray.COLOURS["warn"]
    over = [{**WINDOWS[1], "used_percent": 97.0}]
    assert tray.icon_colours(view_of(snapshot(quota=over))) == tray.COLOURS["crit"]
    budget = {"daily": {"limit_usd": 5, "spent_usd": 4.9, "left_usd": 0.1,
                        "used_percent": 98.0, "end": NOW + 3600}}
    assert tray.icon_colours(view_of(snapshot(budget=budget))) == tray.COLOURS["crit"]
    old = view_of(snapshot(), age=3 * 3600)
    assert old["rendered"]["stale"] == "stale 3h"
    assert tray.icon_colours(old) == (tray.COLOURS[None][0], tray.STALE_TEXT)
    assert tray.tooltip(old).endswith("(stale 3h)")


@pytest.mark.skipif(not has_pil(), reason="Pillow is missing (pip install 'tokline[tray]')")
@pytest.mark.parametrize("size", [16, 22, 24, 32, 48])
@pytest.mark.parametrize("text", ["$4.2", "$999", "1.2k", "100%", "87%*"])
def test_the_picture_holds_the_text_inside_the_badge(size: int, text: str) -> None:
    background, ink = tray.COLOURS["crit"]
    image = tray.draw(text, (background, ink), size)
    assert image.size == (size, size) and image.mode == "RGBA"
    pixels = image.load()
    bg = rgb(background)
    inked = [(x, y) for x in range(size) for y in range(size)
             if pixels[x, y][3] == 255 and nearer(pixels[x, y][:3], ink, background)]
    # the text is there, and as large as the badge allows: it spans most of its width
    assert len(inked) >= size
    xs = [x for x, _ in inked]
    assert max(xs) - min(xs) >= size * 0.5
    # and inside: nothing of it on the badge's edge, whose corners are see-through
    assert all(0 < x < size - 1 and 0 < y < size - 1 for x, y in inked)
    assert pixels[0, 0][3] < 128
    assert max(image.getcolors(size * size))[1][:3] == bg  # the badge


# -- the menu ---------------------------------------------------------------------------


def test_the_menu_lists_periods_block_quota_windows_and_actions() -> None:
    view = view_of(snapshot(cost=4.21, quota=WINDOWS))
    fields = view["rendered"]["fields"]
    labels = [entry.label for entry in tray.menu(view)]
    assert labels[:3] == [f"Today: $4.21 · {fields['today.tokens']} tokens",
                          f"This week: $12.63 · {fields['week.tokens']} tokens",
                          f"This month: $37.89 · {fields['month.tokens']} tokens"]
    block = labels[3]
    assert block.startswith("5h block: $1.80 · 1h47m left · ends ") and "$0.60/h" in block
    claude_5h, claude_7d = labels[4], labels[5]
    assert claude_5h.startswith("claude 5h: 41% · resets ")
    assert f"pace {fields['quota.claude.5h.pace']}" in claude_5h
    assert claude_7d.startswith("claude 7d: 87% · resets ") and "pace +" in claude_7d
    assert labels[6:] == ["-", "Open dashboard", "Daily report", "-", "Quit tokline tray"]
    actions = [entry.action for entry in tray.menu(view) if entry.action]
    assert actions == ["separator", "dashboard", "daily", "separator", "quit"]


def test_the_menu_without_a_block_or_quota_and_when_stale() -> None:
    labels = [e.label for e in tray.menu(view_of(snapshot(block=False), age=7200))]
    assert labels[0] == "Figures are old (stale 2h)"
    assert "5h block: none active" in labels and "Quota: none known" in labels
    passed = [{**WINDOWS[0], "resets_at": NOW - 60}]
    labels = [e.label for e in tray.menu(view_of(snapshot(quota=passed)))]
    assert any(label.startswith("claude 5h: 0% · reset passed") for label in labels)
    hostile = [{**WINDOWS[0], "source": "evil\x1b]0;pwned\x07"}]
    labels = [e.label for e in tray.menu(view_of(snapshot(quota=hostile)))]
    assert not any("\x1b" in label or "\x07" in label for label in labels)
    # an empty view (before the first snapshot) still gives a menu
    assert [e.action for e in tray.menu({})][-1] == "quit"


# -- terminal, report, autostart --------------------------------------------------------


def test_the_terminal_command() -> None:
    argv = ["/venv/bin/python", "-m", "tokline", "dashboard"]

    def which(name: str) -> str | None:
        return f"/usr/bin/{name}" if name in ("x-terminal-emulator", "xterm", "kitty",
                                              "gnome-terminal") else None

    assert tray.terminal_argv(argv, {}, "linux", which) == ["x-terminal-emulator", "-e", *argv]
    assert tray.terminal_argv(argv, {"TERMINAL": "kitty --single-instance"}, "linux",
                              which) == ["kitty", "--single-instance", "-e", *argv]
    assert tray.terminal_argv(argv, {"TERMINAL": "gnome-terminal"}, "linux",
                              which) == ["gnome-terminal", "--", *argv]
    # a $TERMINAL that is not there: the system's
    assert tray.terminal_argv(argv, {"TERMINAL": "nope"}, "linux",
                              which)[0] == "x-terminal-emulator"  # type: ignore[index]
    assert tray.terminal_argv(argv, {}, "linux", lambda name: None) is None
    assert tray.terminal_argv(argv, {}, "darwin", which) == ["open", "-a", "Terminal"]
    assert tray.terminal_argv(argv, {"TERMINAL": "iTerm"}, "darwin",
                              which) == ["open", "-a", "iTerm"]


def test_the_report_waits_and_the_mac_command_file(tmp_path: Path) -> None:
    daily = tray.action_argv("daily", python="/opt/my venv/bin/python")
    assert daily[:2] == ["sh", "-c"]
    assert daily[2].startswith("'/opt/my venv/bin/python' -m tokline daily; ")
    assert daily[2].endswith("read -r _")
    path = tray.mac_command_file(tray.action_argv("dashboard", python="/p y"),
                                 str(tmp_path), "dashboard")
    assert Path(path).read_text() == "#!/bin/sh\nexec '/p y' -m tokline dashboard\n"
    assert os.access(path, os.X_OK)
    with pytest.raises(ValueError):
        tray.action_argv("rm -rf")


def unquote_exec(value: str) -> list[str]:
    """The Desktop Entry Specification's reading of an Exec value (string escapes, then
    double-quoted arguments with backslash escapes)."""
    value = value.replace("\\\\", "\\")
    out, word, quoted, i, started = [], "", False, 0, False
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\":
                word += value[i + 1]
                i += 1
            elif ch == '"':
                quoted = False
            else:
                word += ch
        elif ch == '"':
            quoted = started = True
        elif ch == " ":
            if started:
                out.append(word)
            word, started = "", False
        else:
            word += ch
            started = True
        i += 1
    if started:
        out.append(word)
    return [w.replace("%%", "%") for w in out]


@pytest.mark.parametrize("argv", [
    ["/usr/bin/python3", "-m", "tokline", "tray"],
    ["/home/me/my venv/bin/python", "-m", "tokline", "tray", "--show", "quota"],
    ['/odd "dir"/$HOME/`x`/back\\slash/100%/py', "-m", "tokline", "tray"],
])
def test_the_autostart_entries(argv: list[str]) -> None:
    path, content = tray.autostart("linux", {"HOME": "/home/me",
                                             "XDG_CONFIG_HOME": "/cfg"}, argv)
    assert path == "/cfg/autostart/tokline-tray.desktop"
    text = content.decode()
    assert text.startswith("[Desktop Entry]\nType=Application\n")
    line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert unquote_exec(line[len("Exec="):]) == argv
    path, content = tray.autostart("linux", {"HOME": "/home/me", "XDG_CONFIG_HOME": "rel"},
                                   argv)
    assert path == "/home/me/.config/autostart/tokline-tray.desktop"
    path, content = tray.autostart("darwin", {"HOME": "/Users/me"}, argv)
    assert path == "/Users/me/Library/LaunchAgents/dev.tokline.tray.plist"
    agent = plistlib.loads(content)
    assert agent["ProgramArguments"] == argv and agent["RunAtLoad"] is True
    assert agent["Label"] == "dev.tokline.tray"


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate is missing (apt install desktop-file-utils)")
def test_the_desktop_entry_is_valid(tmp_path: Path) -> None:
    _, content = tray.autostart("linux", {"HOME": str(tmp_path)},
                                ["/my venv/py", "-m", "tokline", "tray"])
    entry = tmp_path / "tokline-tray.desktop"
    entry.write_bytes(content)
    checked = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def tokline(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tokline", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_install_and_uninstall_are_idempotent(home: Path) -> None:
    env = dict(os.environ)
    entry = home / ".config" / "autostart" / "tokline-tray.desktop"
    first = tokline("tray", "--install", env=env)
    assert first.returncode == 0 and first.stderr == ""
    assert first.stdout == ("tokline tray: autostart installed, it starts at your next "
                            f"login ({entry})\n")
    text = entry.read_text()
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert unquote_exec(exec_line[5:]) == [sys.executable, "-m", "tokline", "tray"]
    again = tokline("tray", "--install", env=env)
    assert again.stdout == f"tokline tray: already starts at login ({entry})\n"
    quota = tokline("tray", "--install", "--show", "quota", env=env)
    assert quota.stdout.startswith("tokline tray: autostart updated")
    assert "--show quota" in entry.read_text()
    gone = tokline("tray", "--uninstall", env=env)
    assert gone.stdout == f"tokline tray: autostart removed ({entry})\n"
    assert not entry.exists()
    none = tokline("tray", "--uninstall", env=env)
    assert none.returncode == 0 and none.stdout == f"tokline tray: not installed (no {entry})\n"


def test_install_where_it_cannot_write_is_one_line(home: Path) -> None:
    (home / ".config").mkdir()
    (home / ".config" / "autostart").write_text("a file where a directory should be")
    done = tokline("tray", "--install", env=dict(os.environ))
    assert done.returncode == 1 and done.stdout == ""
    assert re.fullmatch(r"tokline: cannot write \S+tokline-tray\.desktop: .+\n", done.stderr)


def test_the_config_setting() -> None:
    assert parse({}).tray_show == "cost"
    assert parse({"tray": {"show": "quota"}}).tray_show == "quota"
    with pytest.raises(ConfigError, match=r"tray\.show: expected cost or quota"):
        parse({"tray": {"show": "tokens"}})
    with pytest.raises(ConfigError, match=r"tray\.colour: unknown setting"):
        parse({"tray": {"colour": "red"}})


# -- what is missing: one line each ---------------------------------------------------


def test_without_a_display(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = tokline("tray", env=env)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("tokline: tray: no display (DISPLAY and WAYLAND_DISPLAY "
                                  "are unset)") and done.stderr.count("\n") == 1


@pytest.mark.parametrize(("module", "says"), [
    ("PIL", "tokline: tray: Pillow is missing: pip install 'tokline[tray]'\n"),
    ("gi", "tokline: tray: PyGObject (GTK 3) is missing, which the tray's menu needs: "
           "pip install 'tokline[tray]' (on Debian and Ubuntu first: sudo apt install "
           "pkg-config libgirepository1.0-dev libcairo2-dev gir1.2-gtk-3.0 python3-dev)\n"),
    ("pystray", "tokline: tray: pystray is missing: pip install 'tokline[tray]'\n"),
])
def test_without_the_extra(home: Path, module: str, says: str) -> None:
    """A module of the extra that cannot be imported (None in sys.modules) is named,
    with what to install."""
    env = {**os.environ, "DISPLAY": ":99"}
    code = (f"import sys; sys.modules[{module!r}] = None; from tokline.cli import main;"
            " sys.exit(main(['tray']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    if module != "PIL" and not has_pil():
        says = "tokline: tray: Pillow is missing: pip install 'tokline[tray]'\n"
    assert (done.returncode, done.stdout, done.stderr) == (1, "", says)


def test_a_display_that_cannot_be_opened(home: Path) -> None:
    missing = missing_extra()
    if missing:
        pytest.skip(missing)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYSTRAY_BACKEND", "DBUS_SESSION_BUS_ADDRESS")}
    done = tokline("tray", env={**env, "DISPLAY": ":97", "NO_AT_BRIDGE": "1"})
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("tokline: tray: no usable tray backend (")
    assert done.stderr.endswith("check that the display can be opened\n")
    assert done.stderr.count("\n") == 1


def test_the_backend_choice() -> None:
    assert command.choose_backend({"DISPLAY": ":0"}, False, False) == "gtk"
    assert command.choose_backend({"DISPLAY": ":0"}, True, False) == "gtk"
    assert command.choose_backend({"DISPLAY": ":0"}, True, True) == "appindicator"
    assert command.choose_backend({"WAYLAND_DISPLAY": "w"}, True, False) == "appindicator"
    assert command.choose_backend({"DISPLAY": ":0", "PYSTRAY_BACKEND": "xorg"},
                                  True, True) == "xorg"
    with pytest.raises(ToklineError, match=r"gir1\.2-ayatanaappindicator3"):
        command.choose_backend({"WAYLAND_DISPLAY": "w"}, False, False)


def test_nothing_else_imports_the_extra() -> None:
    """The prompt's, the watch's and the tray's own plain modules load no module of the
    extra: only drawing (Pillow) and running the icon (pystray, GTK) do."""
    loaded = subprocess.run(
        [sys.executable, "-c",
         "import sys, tokline.cli, tokline.prompt.fields, tokline.prompt.status,"
         " tokline.commands.watch, tokline.commands.tray, tokline.surfaces.tray,"
         " tokline.commands.status; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert [m for m in loaded if m.split(".")[0] in ("PIL", "pystray", "gi", "Xlib",
                                                     "cairo")] == []


# -- the tray on a real X server --------------------------------------------------------


def artifacts() -> Path:
    path = Path(os.environ.get("TOKLINE_ARTIFACTS") or ROOT / ".ci" / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Desktop:
    """Xvfb, trayer and one ``tokline tray`` on the demo history."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.home = base / "home"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.display = ""
        self.trayer: subprocess.Popen[bytes] | None = None
        self.tray: subprocess.Popen[bytes] | None = None
        self.out = base / "tray.out"
        self.err = base / "tray.err"
        self.terminal_log = base / "terminal"

    # -- set-up --

    def env(self, **more: str) -> dict[str, str]:
        from tokline.commands.demo import demo_env

        env = demo_env(self.home)
        for name in ("DBUS_SESSION_BUS_ADDRESS", "PYSTRAY_BACKEND", "WAYLAND_DISPLAY",
                     "TERMINAL", "TZ"):
            env.pop(name, None)
        # no D-Bus session bus here: the tray must do without one (and GTK's
        # accessibility bridge is not to look for it)
        env.update(DISPLAY=self.display, NO_AT_BRIDGE="1", GTK_A11Y="none", **more)
        return env

    def start_x(self) -> None:
        read, write = os.pipe()
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0",
                                 f"{SHOT_SIZE[0]}x{SHOT_SIZE[1]}x24", "-nolisten", "tcp"],
                                pass_fds=(write,), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        self.procs.append(xvfb)
        os.close(write)
        with os.fdopen(read) as fh:
            number = fh.readline().strip()
        assert number.isdigit(), "Xvfb did not say its display"
        self.display = f":{number}"
        self.start_trayer()

    def start_trayer(self) -> None:
        self.trayer = subprocess.Popen(
            ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
             "--height", "24", "--SetDockType", "false", "--transparent", "false",
             "--tint", "0x202020"], env=self.env(), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.procs.append(self.trayer)
        wait_for(lambda: self.panel() is not None, 10, "trayer's panel")

    def prepare(self) -> None:
        """The demo history, counted, and a terminal that writes down what it runs."""
        from tokline.commands.demo import install_sample

        install_sample(self.home)
        done = subprocess.run([sys.executable, "-m", "tokline", "scan", "-q"],
                              env=self.env(), timeout=120)
        assert done.returncode == 0
        terminal = self.base / "fake-terminal"
        terminal.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{self.terminal_log}'\n")
        terminal.chmod(0o755)

    def start_tray(self) -> subprocess.Popen[bytes]:
        terminal = self.base / "fake-terminal"
        with self.out.open("ab") as out, self.err.open("ab") as err:
            self.tray = subprocess.Popen([sys.executable, "-m", "tokline", "tray"],
                                         env=self.env(TERMINAL=str(terminal)),
                                         stdout=out, stderr=err)
        self.procs.append(self.tray)
        wait_for(lambda: self.icon() is not None, 20, "the tray icon in trayer")
        return self.tray

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    # -- looking --

    def x(self, *argv: str) -> str:
        return subprocess.run(argv, env=self.env(), capture_output=True, text=True,
                              timeout=30).stdout

    def tree(self) -> list[tuple[int, str, str, tuple[int, int, int, int]]]:
        """(depth, window id, name, absolute geometry) of every window."""
        for _ in range(10):  # a window that goes while xwininfo walks the tree ends it
            listing = subprocess.run(["xwininfo", "-root", "-tree"], env=self.env(),
                                     capture_output=True, text=True, timeout=30)
            if listing.returncode == 0 and not listing.stderr:
                break
            time.sleep(0.05)
        found = []
        pattern = re.compile(r'^(\s*)(0x[0-9a-f]+) (?:"(.*?)":|\(has no name\)).*?'
                             r"(\d+)x(\d+)[+-]-?\d+[+-]-?\d+\s+\+(-?\d+)\+(-?\d+)\s*$")
        for line in listing.stdout.splitlines():
            match = pattern.match(line)
            if match:
                indent, wid, name, w, h, ax, ay = match.groups()
                found.append((len(indent), wid, name or "",
                              (int(ax), int(ay), int(w), int(h))))
        return found

    def panel(self) -> tuple[int, int, int, int] | None:
        return next((geo for _, _, name, geo in self.tree() if name == "panel"), None)

    def icon(self) -> tuple[str, str, tuple[int, int, int, int]] | None:
        """(window id, name, geometry) of the tray's icon, docked in trayer's panel: the
        status icon's window is named by its title, "tokline: <the status line>"."""
        inside = False
        panel_depth = 0
        for depth, wid, name, geo in self.tree():
            if name == "panel":
                inside, panel_depth = True, depth
                continue
            if inside and depth <= panel_depth:
                inside = False
            if inside and name.startswith("tokline") and geo[2] >= 16:
                return wid, name, geo
        return None

    def viewable(self, wid: str) -> bool:
        return "IsViewable" in self.x("xwininfo", "-id", wid)

    def shot(self, name: str | None = None) -> Any:
        from PIL import Image

        path = artifacts() / (name or "tray-scratch.png")
        subprocess.run(["import", "-window", "root", str(path)], env=self.env(), check=True,
                       timeout=30)
        with Image.open(path) as image:
            picture = image.convert("RGB")
        if name is None:
            path.unlink()
        return picture

    def icon_pixels(self, picture: Any) -> Any:
        found = self.icon()
        assert found is not None, self.x("xwininfo", "-root", "-tree")
        x, y, w, h = found[2]
        return picture.crop((x, y, x + w, y + h))

    def menu_labels(self) -> list[str]:
        """The menu as GTK holds it: ``kill -USR1`` prints it on the tray's stdout."""
        assert self.tray is not None
        start = self.out.stat().st_size
        self.tray.send_signal(signal.SIGUSR1)
        wait_for(lambda: self.out.read_bytes()[start:].endswith(b"menu.\n"), 5, "the menu")
        text = self.out.read_bytes()[start:].decode()
        return [line[len("menu: "):] for line in text.splitlines() if line.startswith("menu: ")]


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"waited {timeout:.0f} s for {what}")


@functools.cache
def missing_extra() -> str | None:
    """Why the tray extra cannot run here (pystray, Pillow, PyGObject with GTK 3)."""
    probe = subprocess.run([sys.executable, "-c",
                            "import importlib.util, PIL, gi; gi.require_version('Gtk', '3.0');"
                            " assert importlib.util.find_spec('pystray'), 'no pystray'"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"the tray extra is missing ({last}): pip install 'tokline[tray]'"
    return None


def missing_for_desktop() -> str | None:
    absent = [name for name in PROGRAMS if shutil.which(name) is None]
    if absent:
        return (f"{', '.join(absent)} missing (apt install xvfb trayer xdotool x11-utils "
                "imagemagick)")
    return missing_extra()


@pytest.fixture(scope="module")
def desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desktop]:
    """Xvfb on a free display, trayer, and ``tokline tray`` docked in it."""
    missing = missing_for_desktop()
    if missing:
        pytest.skip(missing)
    desk = Desktop(tmp_path_factory.mktemp("tray"))
    try:
        desk.start_x()
        desk.prepare()
        desk.start_tray()
        yield desk
    finally:
        desk.close()
        if desk.err.exists() and desk.err.read_text().strip():
            print("tokline tray's stderr:\n" + desk.err.read_text())


def status_line(desk: Desktop) -> str:
    return subprocess.run([sys.executable, "-m", "tokline", "status", "--target", "plain"],
                          env=desk.env(), capture_output=True, text=True,
                          check=True).stdout.strip()


def colours_of(picture: Any) -> set[tuple[int, int, int]]:
    return {colour for _, colour in picture.getcolors(100_000)}


@pytest.mark.scanner_independent
class TestOnTheDesktop:
    def test_the_icon_docks_and_shows_todays_spend(self, desktop: Desktop) -> None:
        found = desktop.icon()
        assert found is not None
        _, _, (x, _, w, h) = found
        # docked in the panel, at the tray's size, titled with what `tokline status` says
        panel = desktop.panel()
        assert panel is not None and panel[0] <= x and x + w <= panel[0] + panel[2]
        assert 16 <= w <= 48 and 16 <= h <= 48
        wait_for(lambda: (desktop.icon() or ("", "", ()))[1] == "tokline: "
                 + status_line(desktop), 5, "the status line as the icon's title")
        picture = desktop.shot("tray-icon.png")
        icon = desktop.icon_pixels(picture)
        icon.resize((w * 8, h * 8)).save(artifacts() / "tray-icon-zoomed.png")
        found_colours = colours_of(icon)
        # the badge in the colour of the status's level, and the text in it
        view = json.loads(subprocess.run(
            [sys.executable, "-m", "tokline", "status", "--json"], env=desktop.env(),
            capture_output=True, text=True, check=True).stdout)
        background, ink = tray.icon_colours(view)
        assert rgb(background) in found_colours and rgb(ink) in found_colours
        inked = sum(count for count, colour in icon.getcolors(w * h)
                    if nearer(colour, ink, background))
        assert inked >= w, f"{inked} pixels of text"
        # and it is the resident refresher (tokline/surfaces/resident.py), as watch is
        resident = subprocess.run(
            [sys.executable, "-c", "from tokline.surfaces.resident import running;"
             " print(running())"], env=desktop.env(), capture_output=True, text=True,
            check=True).stdout.strip()
        assert desktop.tray is not None and resident == str(desktop.tray.pid)

    def test_the_menu_opens_with_its_entries(self, desktop: Desktop) -> None:
        found = desktop.icon()
        assert found is not None
        _, _, (x, y, w, h) = found
        desktop.x("xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "3")

        def menu_window() -> tuple[int, int, int, int] | None:
            """A top-level window that GTK maps for the menu (trayer's are small)."""
            tree = desktop.tree()
            top = min(depth for depth, _, _, _ in tree)
            for depth, wid, _, geo in tree:
                if depth == top and geo[2] > 100 and geo[3] > 100 and desktop.viewable(wid):
                    return geo
            return None

        wait_for(lambda: menu_window() is not None, 5, "the menu's window")
        geo = menu_window()
        assert geo is not None
        picture = desktop.shot("tray-menu.png")
        mx, my, mw, mh = geo
        menu = picture.crop((mx, my, mx + mw, my + mh))
        assert len(colours_of(menu)) > 10  # text on it, not a blank rectangle
        labels = desktop.menu_labels()
        desktop.x("xdotool", "key", "Escape")
        snap = json.loads(subprocess.run(
            [sys.executable, "-m", "tokline", "status", "--json"], env=desktop.env(),
            capture_output=True, text=True, check=True).stdout)
        today = snap["rendered"]["fields"]["today.cost"]
        assert labels[0] == f"Today: {today} · {snap['rendered']['fields']['today.tokens']} tokens"
        assert labels[1].startswith("This week: $") and labels[2].startswith("This month: $")
        # a block ending on another day names the day ("ends Tue 00:00")
        assert re.match(r"5h block: \$[\d.]+ · \d+(h\d\d)?m left · ends (\w{3} )?\d\d:\d\d",
                        labels[3]) or labels[3] == "5h block: none active"
        windows = [label for label in labels if label.startswith("codex ")]
        assert [w.split(":")[0] for w in windows] == ["codex 5h", "codex 7d"]
        assert all(" · resets " in w and " · pace " in w for w in windows)
        assert labels[-5:] == ["-", "Open dashboard", "Daily report", "-", "Quit tokline tray"]
        # the same as the menu model says for the same view
        model = [entry.label for entry in tray.menu(snap)]
        assert [label for label in labels if "left ·" not in label] == \
            [label for label in model if "left ·" not in label]

    def test_an_appended_log_line_changes_the_icon_within_2_s(self, desktop: Desktop) -> None:
        icon_before = desktop.icon_pixels(desktop.shot())
        name_before = (desktop.icon() or ("", "", ()))[1]
        log = next((desktop.home / ".claude").rglob("*.jsonl"))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        line = {"type": "assistant", "timestamp": stamp, "requestId": "tray-1",
                "sessionId": "tray", "message": {"id": "tray-1", "model": "claude-opus-4-5",
                                                 "usage": {"input_tokens": 2_000_000,
                                                           "output_tokens": 10}}}
        started = time.monotonic()
        with log.open("a") as fh:
            fh.write(json.dumps(line) + "\n")
        changed_at = None
        while time.monotonic() - started < 5:
            if desktop.icon_pixels(desktop.shot()).tobytes() != icon_before.tobytes():
                changed_at = time.monotonic() - started
                break
            time.sleep(0.05)
        desktop.shot("tray-icon-after.png")
        assert changed_at is not None, "the icon did not change"
        assert changed_at < 2.0, f"the icon changed after {changed_at:.2f} s"
        # $10 more (2M input tokens of Opus 4.5 at $5 per million): the title is the new
        # status line
        wait_for(lambda: (desktop.icon() or ("", "", ()))[1] == "tokline: "
                 + status_line(desktop), 3, "the new status line as the icon's title")
        assert (desktop.icon() or ("", "", ()))[1] != name_before

    def test_no_cpu_while_nothing_changes(self, desktop: Desktop) -> None:
        assert desktop.tray is not None
        pid = desktop.tray.pid
        # the tray wakes at each minute's start for what time alone changes: measure
        # between two of them
        if time.time() % 60 > 48:
            time.sleep(61.5 - time.time() % 60)
        time.sleep(1.0)  # the change of the test before has settled

        def ticks() -> int:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime, stime

        before = ticks()
        time.sleep(10)
        used = ticks() - before
        hz = os.sysconf("SC_CLK_TCK")
        assert used <= 2, f"{used} ticks ({used / hz:.2f} s of CPU) in 10 s of nothing"

    def test_the_actions_open_a_terminal(self, desktop: Desktop) -> None:
        found = desktop.icon()
        assert found is not None
        _, _, (x, y, w, h) = found
        # a left click: the default entry, the dashboard
        desktop.x("xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "1")
        wait_for(desktop.terminal_log.exists, 5, "the terminal for the dashboard")
        argv = desktop.terminal_log.read_text().splitlines()
        assert argv == ["-e", sys.executable, "-m", "tokline", "dashboard"]
        desktop.terminal_log.unlink()
        # the menu, by keyboard: up from the bottom, past Quit, to the daily report
        desktop.x("xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "3")
        time.sleep(0.5)
        desktop.x("xdotool", "key", "Up", "Up", "Return")
        wait_for(desktop.terminal_log.exists, 5, "the terminal for the daily report")
        argv = desktop.terminal_log.read_text().splitlines()
        assert argv[:3] == ["-e", "sh", "-c"]
        assert shlex.split(argv[3].split(";")[0]) == [sys.executable, "-m", "tokline", "daily"]

    def test_it_docks_again_when_the_tray_host_restarts(self, desktop: Desktop) -> None:
        assert desktop.trayer is not None
        desktop.trayer.terminate()
        desktop.trayer.wait(10)
        wait_for(lambda: desktop.icon() is None, 5, "the icon to leave with its host")
        desktop.start_trayer()
        wait_for(lambda: desktop.icon() is not None, 10, "the icon in the new tray")
        time.sleep(0.3)
        icon = desktop.icon_pixels(desktop.shot("tray-icon-redocked.png"))
        assert len(colours_of(icon)) > 10
        assert desktop.tray is not None and desktop.tray.poll() is None

    def test_quit_from_the_menu(self, desktop: Desktop) -> None:
        found = desktop.icon()
        assert found is not None and desktop.tray is not None
        _, _, (x, y, w, h) = found
        desktop.x("xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "3")
        time.sleep(0.5)
        desktop.x("xdotool", "key", "Up", "Return")
        assert desktop.tray.wait(10) == 0
        assert desktop.icon() is None
        assert desktop.err.read_text() == ""


@pytest.mark.scanner_independent
def test_sigterm_ends_it_cleanly(desktop: Desktop) -> None:
    """A second tray in the same panel (the first has quit): SIGTERM ends it with 0."""
    proc = desktop.start_tray()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    wait_for(lambda: desktop.icon() is None, 5, "the icon to go")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_log_directories_made_later_are_watched(tmp_path: Path) -> None:
    """A log root that appears after the tray started (an assistant installed since) is
    watched from the next minute's wake on, once."""
    from tokline.surfaces import inotify

    early, late = tmp_path / "early", tmp_path / "late"
    early.mkdir()
    follower = command.Follower.__new__(command.Follower)
    follower.env = {}
    follower.roots = lambda env: [str(early), str(late)]
    follower.logs = inotify.Watcher()
    try:
        follower.watch_new_roots()
        assert sorted(follower.logs.dirs.values()) == [str(early)]
        (late / "project").mkdir(parents=True)
        follower.watch_new_roots()
        follower.watch_new_roots()
        assert sorted(follower.logs.dirs.values()) == [str(early), str(late),
                                                        str(late / "project")]
    finally:
        follower.logs.close()
