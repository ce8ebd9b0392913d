"""What ``tokline tray`` shows: the icon's text and colours, its picture, the menu, and the
commands behind the menu's entries and the autostart entry.

Everything here takes a view as ``tokline watch`` emits it (the snapshot as it reads now,
with ``rendered`` from tokline/prompt/fields.py: text, level, stale note, fields), so the
tray formats nothing itself and says what ``tokline status`` says.  Only :func:`draw`
needs Pillow (the ``tray`` extra), imported when it runs; the rest is plain functions
that the tests call without a display.
"""

from __future__ import annotations

import functools
import os
import plistlib
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from tokline.prompt.quotaview import number
from tokline.prompt.safetext import clean

# Badge colours (background, text) per threshold level of ``rendered``: None below
# warn, then "warn" and "crit" (tokline/prompt/template.py: yellow and red, as the
# status line colours them).  Each pair keeps the text legible on dark and light panels.
COLOURS: dict[str | None, tuple[str, str]] = {
    None: ("#2e3440", "#ffffff"),
    "warn": ("#f0b400", "#1a1a1a"),
    "crit": ("#d62839", "#ffffff"),
}
STALE_TEXT = "#b8b8b8"  # the text of an old figure below any threshold: dimmed
LABEL_LIMIT = 120  # characters of one menu line
# Bold, narrow first: four characters must fit 22 pixels.  Pillow finds these by file
# name in the system's font directories (Linux and macOS); its own default font is
# the last resort (Pillow >= 10.1 scales it).
FONTS = ("DejaVuSansCondensed-Bold.ttf", "LiberationSansNarrow-Bold.ttf",
         "Arial Narrow Bold.ttf", "DejaVuSans-Bold.ttf", "Arial Bold.ttf",
         "LiberationSans-Bold.ttf", "Helvetica.ttc")
SQUEEZE = 0.75  # text may be narrowed to this share of its width before it gets smaller


class Entry(NamedTuple):
    """One line of the menu: ``action`` is ``dashboard``, ``daily`` or ``quit`` for an
    entry that does something, None for a line that only tells."""

    label: str
    action: str | None = None


SEPARATOR = Entry("-", "separator")
ACTIONS = ("dashboard", "daily", "quit")


# -- the icon ---------------------------------------------------------------------------


def compact_money(cost: float) -> str:
    """Dollars in at most four characters: ``$4.2``, ``$12``, ``$999``, ``1.2k``, ``12k``,
    ``1.2M`` (the menu and the tooltip show the exact figure)."""
    cost = max(0.0, cost)
    if round(cost, 1) < 10:
        return f"${cost:.1f}"
    if round(cost) < 1000:
        return f"${cost:.0f}"
    for size, unit in ((1e3, "k"), (1e6, "M"), (1e9, "B")):
        if round(cost / size, 1) < 10:
            return f"{cost / size:.1f}{unit}"
        if round(cost / size) < 1000:
            return f"{cost / size:.0f}{unit}"
    return "lots"


def icon_text(view: Mapping[str, Any], show: str = "cost") -> str:
    """The icon's few characters: today's spend (``show="cost"``), or the binding quota
    window's percentage as ``{quota.bind}`` renders it, its window's name left out
    (``show="quota"``; ``--%`` while no window is known)."""
    if show == "quota":
        fields = (view.get("rendered") or {}).get("fields") or {}
        bound = fields.get("quota.bind")
        return str(bound).rsplit(" ", 1)[-1] if bound else "--%"
    cost = number((view.get("today") or {}).get("cost_usd"))
    return compact_money(cost or 0.0)


def icon_colours(view: Mapping[str, Any]) -> tuple[str, str]:
    """(background, text) by ``rendered.level``, the level ``tokline status`` colours
    by; an old figure below the thresholds is dimmed."""
    rendered = view.get("rendered") or {}
    level = rendered.get("level")
    background, text = COLOURS.get(level, COLOURS[None])
    if rendered.get("stale") and level is None:
        text = STALE_TEXT
    return background, text


def tooltip(view: Mapping[str, Any]) -> str:
    """The status line, as ``tokline status`` prints it (stale note included)."""
    text = clean((view.get("rendered") or {}).get("text") or "", 200)
    return f"tokline: {text}" if text else "tokline"


@functools.cache
def _font(size: int) -> Any:
    from PIL import ImageFont  # noqa: PLC0415 - Pillow is the tray extra's, loaded to draw

    # Basic layout, not Raqm: once GTK is loaded (the Linux backend), the system's
    # HarfBuzz and FreeType answer the calls of Pillow's bundled Raqm, whose layout then
    # comes out empty; a few ASCII characters need no shaping.
    path = _font_file()
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


@functools.cache
def _font_file() -> str | None:
    """The first of FONTS that the system has (Pillow searches its font directories
    for each name it is given: once here, not for every size tried)."""
    from PIL import ImageFont  # noqa: PLC0415 - see _font

    for name in FONTS:
        try:
            return str(ImageFont.truetype(name, 10).path)
        except OSError:
            continue
    return None


def draw(text: str, colours: tuple[str, str], size: int) -> Any:
    """A ``size``×``size`` RGBA picture: a rounded badge in the background colour with
    ``text`` as large as fits, narrowed a little before it is made smaller."""
    from PIL import Image, ImageDraw  # noqa: PLC0415 - see _font

    size = max(8, int(size))
    background, ink = colours
    scale = 4  # the badge is drawn large and scaled down: smooth corners
    badge = Image.new("RGBA", (size * scale, size * scale), (0, 0, 0, 0))
    ImageDraw.Draw(badge).rounded_rectangle(
        (0, 0, size * scale - 1, size * scale - 1), radius=size * scale // 5, fill=background)
    image = badge.resize((size, size), Image.Resampling.LANCZOS)
    pad = max(1, size // 11)
    room = size - 2 * pad
    font, box = None, (0, 0, 0, 0)
    for px in range(size, 5, -1):
        font = _font(px)
        box = font.getbbox(text)
        width, height = box[2] - box[0], box[3] - box[1]
        if height <= room and width * SQUEEZE <= room:
            break
    assert font is not None
    width, height = max(1, box[2] - box[0]), max(1, box[3] - box[1])
    glyphs = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(glyphs).text((-box[0], -box[1]), text, font=font, fill=ink)
    if width > room:
        glyphs = glyphs.resize((room, height), Image.Resampling.LANCZOS)
        width = room
    image.alpha_composite(glyphs, ((size - width) // 2, (size - height) // 2))
    return image


# -- the menu ---------------------------------------------------------------------------


def _join(*parts: str | None) -> str:
    return " · ".join(part for part in parts if part)


def menu(view: Mapping[str, Any]) -> list[Entry]:
    """The menu's lines, top to bottom: the stale note, today / week / month, the block
    with its time left, every quota window with its reset and pace, then the actions."""
    rendered = view.get("rendered") or {}
    fields: Mapping[str, str] = rendered.get("fields") or {}
    lines: list[Entry] = []
    if rendered.get("stale"):
        lines.append(Entry(f"Figures are old ({rendered['stale']})"))
    for name, title in (("today", "Today"), ("week", "This week"), ("month", "This month")):
        cost, tokens = fields.get(f"{name}.cost"), fields.get(f"{name}.tokens")
        lines.append(Entry(_join(f"{title}: {cost or '$0.00'}",
                                 f"{tokens} tokens" if tokens else None)))
    block = view.get("block") or {}
    start, end = number(block.get("start")), number(block.get("end"))
    hours = round((end - start) / 3600) if start is not None and end is not None else 5
    if "block.cost" in fields:
        lines.append(Entry(_join(f"{hours}h block: {fields['block.cost']}",
                                 f"{fields['block.left']} left" if "block.left" in fields
                                 else None,
                                 f"ends {fields['block.end']}" if "block.end" in fields
                                 else None,
                                 f"{fields['block.pct']} of limit" if "block.pct" in fields
                                 else None,
                                 fields.get("block.burn"))))
    else:
        lines.append(Entry(f"{hours}h block: none active"))
    windows = [w for w in view.get("quota") or [] if isinstance(w, Mapping)]
    if not windows:
        lines.append(Entry("Quota: none known"))
    for window in windows:
        prefix = f"quota.{window.get('source')}.{window.get('window')}"
        shown = fields.get(prefix) or "?"
        as_of = fields.get(f"{prefix}.as_of")
        lines.append(Entry(_join(
            f"{window.get('source')} {window.get('window')}: {shown}",
            f"resets {fields[prefix + '.reset']}" if prefix + ".reset" in fields
            else "reset passed" if window.get("reset_passed") else None,
            f"pace {fields[prefix + '.pace']}" if prefix + ".pace" in fields else None,
            f"runs out {fields[prefix + '.runout']}" if prefix + ".runout" in fields
            else None,
            f"as of {as_of}" if as_of else None)))
    lines = [Entry(clean(entry.label, LABEL_LIMIT)) for entry in lines]
    return [*lines, SEPARATOR, Entry("Open dashboard", "dashboard"),
            Entry("Daily report", "daily"), SEPARATOR, Entry("Quit tokline tray", "quit")]


# -- the commands behind the entries ----------------------------------------------------


def tokline_argv(*args: str, python: str | None = None) -> list[str]:
    """This tokline, by the interpreter that runs it: a terminal, a desktop session or
    launchd may not have a venv's or pipx's ``tokline`` on their PATH."""
    return [python or sys.executable, "-m", "tokline", *args]


def action_argv(action: str, python: str | None = None) -> list[str]:
    """The command an entry runs in a terminal.  The report waits for Enter, or its
    terminal would close before it is read."""
    if action == "dashboard":
        return tokline_argv("dashboard", python=python)
    if action == "daily":
        report = shlex.join(tokline_argv("daily", python=python))
        return ["sh", "-c", f"{report}; printf '\\n%s' 'Press Enter to close. '; read -r _"]
    raise ValueError(f"no command for {action!r}")


def terminal_argv(argv: Sequence[str], env: Mapping[str, str], platform: str,
                  which: Any = shutil.which) -> list[str] | None:
    """``argv`` in a new terminal window: ``$TERMINAL`` (a command, ``-e`` before the
    program; gnome-terminal and its kin take ``--``), else Debian's
    ``x-terminal-emulator``, else the first of a few common ones; on macOS a
    ``.command`` file for Terminal (or ``$TERMINAL``'s app) via ``open -a``, which
    :func:`mac_command_file` writes (the path stands at the end).  None when there is
    no terminal to be found."""
    if platform == "darwin":
        app = env.get("TERMINAL") or "Terminal"
        return ["open", "-a", app]
    chosen = shlex.split(env.get("TERMINAL") or "")
    if not chosen or not which(chosen[0]):
        for name in ("x-terminal-emulator", "gnome-terminal", "konsole", "xfce4-terminal",
                     "kitty", "alacritty", "foot", "xterm"):
            if which(name):
                chosen = [name]
                break
        else:
            return None
    dashdash = os.path.basename(chosen[0]) in ("gnome-terminal", "kgx", "ptyxis",
                                               "mate-terminal", "tilix")
    return [*chosen, "--" if dashdash else "-e", *argv]


def mac_command_file(argv: Sequence[str], directory: str, name: str) -> str:
    """A ``.command`` script running ``argv``, for Terminal to open (macOS)."""
    path = os.path.join(directory, f"tokline-{name}.command")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"#!/bin/sh\nexec {shlex.join(argv)}\n")
    os.chmod(path, 0o700)
    return path


# -- autostart --------------------------------------------------------------------------

LAUNCH_AGENT = "dev.tokline.tray"
DESKTOP_FILE = "tokline-tray.desktop"


def desktop_exec(argv: Sequence[str]) -> str:
    """A desktop entry's Exec value for ``argv`` (the Desktop Entry Specification: an
    argument with a reserved character goes in double quotes with ``"`$\\`` escaped,
    ``%`` is doubled, and then the string value's own escaping doubles backslashes)."""
    words = []
    for arg in argv:
        if any(ch in arg for ch in "\n\r"):
            raise ValueError(f"a line break in {arg!r}")
        arg = arg.replace("%", "%%")
        if not arg or any(ch in arg for ch in " \t\"'\\><~|&;$*?#()`"):
            arg = '"' + "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg) + '"'
        words.append(arg)
    return " ".join(words).replace("\\", "\\\\")


def autostart(platform: str, env: Mapping[str, str], argv: Sequence[str]
              ) -> tuple[str, bytes]:
    """(path, content) of the entry that starts ``argv`` at login: an XDG autostart
    desktop entry in ``$XDG_CONFIG_HOME/autostart`` (Linux and other freedesktop
    systems) or a LaunchAgent in ``~/Library/LaunchAgents`` (macOS)."""
    home = env.get("HOME") or os.path.expanduser("~")
    if platform == "darwin":
        path = os.path.join(home, "Library", "LaunchAgents", f"{LAUNCH_AGENT}.plist")
        logs = os.path.join(home, "Library", "Logs", "tokline-tray.log")
        agent = {"Label": LAUNCH_AGENT, "ProgramArguments": list(argv), "RunAtLoad": True,
                 "ProcessType": "Interactive", "StandardErrorPath": logs}
        return path, plistlib.dumps(agent)
    config = env.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config):
        config = os.path.join(home, ".config")
    path = os.path.join(config, "autostart", DESKTOP_FILE)
    text = ("[Desktop Entry]\n"
            "Type=Application\n"
            "Name=tokline tray\n"
            "Comment=AI coding assistants' spend and quota in the system tray\n"
            f"Exec={desktop_exec(argv)}\n"
            "Terminal=false\n"
            "NoDisplay=true\n"
            "X-GNOME-Autostart-enabled=true\n")
    return path, text.encode("utf-8")
