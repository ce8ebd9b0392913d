"""``tokline service install|uninstall|status|run``: the resident refresher as a per-user
service, for live numbers in prompts without an editor or tray running.

    tokline service install     # systemd user unit (Linux) or LaunchAgent (macOS), started
    tokline service status      # installed where; running or not
    tokline service uninstall   # stopped and removed
    tokline service run         # what the service runs (tokline/surfaces/resident.py)

The unit runs the launcher with ``service run``.  A service does not start from your
shell, so the variables that tell tokline where your logs and files are (XDG_*_HOME,
CLAUDE_CONFIG_DIR, CODEX_HOME, … whatever names a directory) are written into the unit
when they are set at install; nothing else is (no token, key or secret ever).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from xml.sax.saxutils import escape

from tokline.commands.init import tokline_path
from tokline.config import load
from tokline.errors import ToklineError
from tokline.paths import config_dir
from tokline.prompt.statefiles import UnsafeDir, state_dir, write_private

UNIT = "tokline.service"
AGENT = "dev.tokline.resident"
# what a service must see of the installing shell: directories only, never a secret
_PLACE = re.compile(r"^(XDG_(CONFIG|DATA|STATE|CACHE)_HOME|TOKLINE_CONFIG|"
                    r"[A-Z][A-Z0-9_]*_(DIR|DIRS|HOME|ROOT|PATH_ROOT|DB))$")
_SECRET = re.compile(r"TOKEN|KEY|SECRET|PASS|AUTH|COOKIE|CRED")


def kept_environment(env: dict[str, str]) -> dict[str, str]:
    """The installing shell's variables a service needs: those naming directories or
    files (absolute paths; ``:``-lists of them), never one whose name says secret."""
    kept = {}
    for name, value in sorted(env.items()):
        if not _PLACE.match(name) or _SECRET.search(name):
            continue
        parts = [p for p in re.split(r"[:,]", value) if p]
        if parts and all(os.path.isabs(p) for p in parts) and "\n" not in value:
            kept[name] = value
    return kept


def systemd_unit(launcher: str, env: dict[str, str]) -> str:
    def quoted(text: str) -> str:  # systemd's quoting; % starts a specifier
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'

    lines = ["[Unit]", "Description=tokline resident refresher (keeps the prompt's status current)",
             "",
             "[Service]", "Type=simple",
             f"ExecStart={quoted(launcher)} service run",
             *(f"Environment={quoted(f'{k}={v}')}" for k, v in env.items()),
             "Restart=on-failure", "RestartSec=5", "Nice=10", "", "[Install]",
             "WantedBy=default.target", ""]
    return "\n".join(lines)


def launch_agent(launcher: str, env: dict[str, str], log: str) -> str:
    values = "".join(f"    <key>{escape(k)}</key><string>{escape(v)}</string>\n"
                     for k, v in env.items())
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>{AGENT}</string>
  <key>ProgramArguments</key>
  <array><string>{escape(launcher)}</string><string>service</string><string>run</string></array>
  <key>EnvironmentVariables</key>
  <dict>
{values}  </dict>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>
  <key>ProcessType</key><string>Background</string>
  <key>StandardErrorPath</key><string>{escape(log)}</string>
</dict>
</plist>
"""


def _home() -> str:
    return os.environ.get("HOME") or os.path.expanduser("~")


def unit_path(kind: str) -> str:
    if kind == "launchd":
        return os.path.join(_home(), "Library", "LaunchAgents", AGENT + ".plist")
    return os.path.join(config_dir().parent, "systemd", "user", UNIT)


def _manager(argv: list[str]) -> tuple[bool, str]:
    """Run systemctl or launchctl; (worked, its complaint's first line)."""
    if shutil.which(argv[0]) is None:
        return False, f"{argv[0]} is not here"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    lines = (done.stderr or done.stdout).strip().splitlines()
    return done.returncode == 0, lines[0] if lines else f"exit {done.returncode}"


def install(kind: str) -> int:
    path = unit_path(kind)
    env = kept_environment(dict(os.environ))
    launcher = tokline_path()
    if not os.path.isabs(launcher):
        raise ToklineError("cannot find the tokline launcher to run (is it on PATH?)")
    if kind == "launchd":
        text = launch_agent(launcher, env, os.path.join(state_dir(), "service.log"))
    else:
        text = systemd_unit(launcher, env)
    try:
        write_private(path, text.encode("utf-8"))
    except UnsafeDir:
        raise
    except OSError as exc:
        raise ToklineError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}")
    if kind == "launchd":
        uid = os.getuid()
        _manager(["launchctl", "bootout", f"gui/{uid}", path])  # an older copy, if loaded
        started, why = _manager(["launchctl", "bootstrap", f"gui/{uid}", path])
        hint = f"launchctl bootstrap gui/{uid} {path}"
    else:
        _manager(["systemctl", "--user", "daemon-reload"])
        started, why = _manager(["systemctl", "--user", "enable", "--now", UNIT])
        hint = f"systemctl --user enable --now {UNIT}"
    if started:
        print("the resident refresher runs, and starts at every login")
    else:
        print(f"not started ({why}); start it with: {hint}")
    return 0


def uninstall(kind: str) -> int:
    path = unit_path(kind)
    if kind == "launchd":
        _manager(["launchctl", "bootout", f"gui/{os.getuid()}", path])
    else:
        _manager(["systemctl", "--user", "disable", "--now", UNIT])
    try:
        os.unlink(path)
    except FileNotFoundError:
        print(f"not installed ({path} is not there)")
        return 0
    if kind != "launchd":
        _manager(["systemctl", "--user", "daemon-reload"])
    print(f"removed {path}; the resident refresher is stopped")
    return 0


def status(kind: str) -> int:
    from tokline.surfaces.resident import running  # noqa: PLC0415

    path = unit_path(kind)
    print(f"service: {'installed at ' + path if os.path.exists(path) else 'not installed'}")
    pid = running()
    state = "not running" if pid is None else f"running (pid {pid})" if pid > 0 else "running"
    print(f"resident refresher: {state}")
    return 0


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline service", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["install", "uninstall", "status", "run"])
    parser.add_argument("--kind", choices=["systemd", "launchd"],
                        default="launchd" if sys.platform == "darwin" else "systemd",
                        help="the service manager (default: this system's)")
    args = parser.parse_args(argv)
    if args.action == "install":
        return install(args.kind)
    if args.action == "uninstall":
        return uninstall(args.kind)
    if args.action == "status":
        return status(args.kind)
    from tokline.commands.watch import follow  # noqa: PLC0415

    return follow(load(), emit=None)
