"""The real coding CLIs the suite drives (Claude Code, Codex, Gemini CLI, OpenCode,
Copilot CLI, Factory Droid): the pinned versions, in one place.

To verify a newer release, change the pin here (``npm view @openai/codex version`` tells
the latest) and run ``tests/test_real_clients.py`` (Claude, Codex) or
``tests/test_real_clients_more.py`` (Gemini, OpenCode, Copilot).  Clients are installed with
``npm install --prefix CACHE/<name>-<version> <package>@<version>`` (the native binaries
come inside the npm packages) and reused when present.  CACHE is ``.ci/clients`` in the
checkout (gitignored) unless TOKLINE_CLIENTS_CACHE names another directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# name -> (npm package, versions verified); the first version is the current one.
CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "claude": ("@anthropic-ai/claude-code", ("2.1.332", "2.0.77")),
    "codex": ("@openai/codex", ("0.171.0", "0.169.0")),
    # tests/test_real_clients_more.py: the older pins write the earlier formats (Gemini's
    # whole-file .json chats, OpenCode's storage/ JSON files, Copilot's per-reply output
    # counts and per-run shutdown totals).
    "gemini": ("@google/gemini-cli", ("0.61.0", "0.34.0")),
    "opencode": ("opencode-ai", ("1.18.33", "1.1.65")),
    "copilot": ("@github/copilot", ("1.0.102", "1.0.60")),
    # tests/test_sources_totals.py: Factory Droid's npm package ``droid`` (its native binary
    # comes in the optional @factory/cli-<platform> package of the same version).
    "droid": ("droid", ("0.215.0",)),
}

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("TOKLINE_CLIENTS_CACHE") or ROOT / ".ci" / "clients")

# Nothing of npm's own chatter leaves the machine beyond the registry fetch itself.
NPM_ENV = {
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
    "npm_config_loglevel": "error",
}


class Unavailable(Exception):
    """The client cannot be installed here (no npm, or the registry is unreachable)."""


_checked: set[Path] = set()  # executables whose --version this process has seen right


def binary(name: str, version: str) -> Path:
    """The client's executable, installing it into the cache first when missing."""
    package = CLIENTS[name][0]
    prefix = CACHE / f"{name}-{version}"
    exe = prefix / "node_modules" / ".bin" / name
    if exe in _checked or (exe.exists() and _version_ok(exe, version)):
        _checked.add(exe)
        return exe
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not on PATH")
    prefix.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **NPM_ENV)
    try:
        done = subprocess.run(
            [npm, "install", "--no-save", "--prefix", str(prefix), f"{package}@{version}"],
            env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
            check=False)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"npm install {package}@{version} timed out") from None
    if done.returncode != 0 or not exe.exists():
        tail = " ".join((done.stderr or done.stdout).split())[:300]
        raise Unavailable(f"npm install {package}@{version} failed: {tail}")
    if not _version_ok(exe, version):
        raise Unavailable(f"{exe} does not report version {version}")
    _checked.add(exe)
    return exe


def _version_ok(exe: Path, version: str) -> bool:
    try:
        out = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL, check=False,
                             env={"PATH": os.environ.get("PATH", ""), "HOME": str(CACHE),
                                  "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1",
                                  "COPILOT_OFFLINE": "true", "COPILOT_AUTO_UPDATE": "false",
                                  "OPENCODE_DISABLE_AUTOUPDATE": "1",
                                  "GEMINI_CLI_NO_RELAUNCH": "true",
                                  # an update check, if any, is refused on the spot
                                  "HTTPS_PROXY": "http://127.0.0.1:9",
                                  "HTTP_PROXY": "http://127.0.0.1:9"})
    except (OSError, subprocess.TimeoutExpired):
        return False
    return version in out.stdout


def install_all() -> int:
    """Install every pinned client (``.ci/run``); unreachable ones are reported, not fatal:
    their tests then skip with the same reason."""
    for name, (package, versions) in CLIENTS.items():
        for version in versions:
            try:
                print(f"{package}@{version}: {binary(name, version)}")
            except Unavailable as exc:
                print(f"{package}@{version}: not installed ({exc})")
    return 0


if __name__ == "__main__":
    raise SystemExit(install_all())
