"""``tokline setup claude [--force] [--command CMD]``: register the statusLine command.

Writes ``statusLine`` into Claude Code's settings.json (the first CLAUDE_CONFIG_DIR
entry, else ~/.claude), keeping a backup of the file first.  The command names this
tokline's launcher by its absolute path: Claude Code runs it through a shell whose PATH
may not hold a venv's or pipx's bin directory.  Running it again changes nothing;
another tool's statusLine is only replaced with --force (an earlier tokline's, such as
a bare ``tokline statusline``, is tokline's own and is updated).  It also sets Claude
Code's ``refreshInterval`` (REFRESH_INTERVAL_S) unless the user chose one, and counts the
logs once if no snapshot exists yet, so the line has numbers from its first render.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import time
from pathlib import Path
from typing import Any

from tokline.commands.init import tokline_path
from tokline.commands.refresh import refresh_now
from tokline.errors import ToklineError
from tokline.prompt import statefiles

# Claude Code (2.1.x) renders the statusLine on its own events; this re-runs it every so
# many seconds as well, so spend from other sessions and tools, and a refresh that ended
# after the last event, show without waiting for the next turn.  Older versions ignore it.
REFRESH_INTERVAL_S = 20


def settings_file() -> Path:
    configured = os.environ.get("CLAUDE_CONFIG_DIR", "").split(",")[0].strip()
    base = Path(os.path.expanduser(configured)) if configured else Path.home() / ".claude"
    return base / "settings.json"


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline setup")
    parser.add_argument("target", choices=["claude"])
    parser.add_argument("--force", action="store_true",
                        help="replace another tool's statusLine")
    parser.add_argument("--command", default=None,
                        help="the command Claude Code runs (default: this tokline's launcher,"
                             " by its absolute path, with `statusline`)")
    args = parser.parse_args(argv)
    launcher = tokline_path()
    if args.command is None:
        args.command = f"{shlex.quote(launcher)} statusline"
        if not os.path.isabs(launcher):
            print("tokline: no tokline launcher found on PATH or as this command; Claude Code"
                  " will run `tokline statusline` only if its shell finds tokline")
    path = settings_file()
    settings: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8") or "{}")
        except ValueError as exc:
            raise ToklineError(f"{path} is not valid JSON ({exc}); fix it or move it away") \
                from None
        if not isinstance(loaded, dict):
            raise ToklineError(f"{path} does not hold a JSON object")
        settings = loaded
    current = settings.get("statusLine")
    if isinstance(current, dict) and current.get("command") == args.command \
            and "refreshInterval" in current:
        print(f"{path}: statusLine already runs `{args.command}`")
        return 0
    if current and not args.force and not _is_tokline(current):
        other = current.get("command") if isinstance(current, dict) else current
        raise ToklineError(f"{path} already has a statusLine ({other!r}); "
                           "run `tokline setup claude --force` to replace it")
    if path.exists():
        backup = path.with_name(f"settings.json.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
        print(f"backup: {backup}")
    # tokline's own earlier line keeps what the user set in it (padding, an interval)
    wanted = dict(current) if isinstance(current, dict) and _is_tokline(current) else {
        "padding": 0}
    wanted.update(type="command", command=args.command)
    wanted.setdefault("refreshInterval", REFRESH_INTERVAL_S)
    settings["statusLine"] = wanted
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tokline.tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    print(f"{path}: statusLine now runs `{args.command}`")
    return _first_snapshot()


def _first_snapshot() -> int:
    """Count the logs now if nothing has yet: Claude Code renders the line when it starts
    and then only on its own events (2.0.x has no timer), so with no snapshot its first
    line would lack the day's spend until the first turn ended."""
    directory = statefiles.state_dir()
    if os.path.exists(os.path.join(directory, statefiles.SNAPSHOT)):
        return 0
    locked = statefiles.take_lock(directory)
    if not locked and os.path.isdir(directory):
        return 0  # a refresh is running (it writes the snapshot) or the dir is refused
    try:
        return refresh_now(publish=True)
    finally:
        if locked:
            statefiles.release_lock()


def _is_tokline(line: object) -> bool:
    """An earlier ``tokline setup`` wrote this statusLine (any tokline launcher)."""
    command = line.get("command") if isinstance(line, dict) else None
    try:
        words = shlex.split(command) if isinstance(command, str) else []
    except ValueError:
        return False
    return len(words) == 2 and os.path.basename(words[0]) == "tokline" \
        and words[1] == "statusline"
