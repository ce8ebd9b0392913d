"""The real coding CLIs the suite drives (Claude Code, Codex, Gemini CLI, OpenCode,
Copilot CLI, Qwen Code, Pi, Kimi Code, Kilo CLI, Factory Droid): the pinned versions, in one
place.

To verify a newer release, change the pin here (``npm view @openai/codex version`` tells
the latest) and run ``tests/test_real_clients.py`` (Claude, Codex),
``tests/test_real_clients_more.py`` (Gemini, OpenCode, Copilot),
``tests/test_real_clients_jsonl.py`` (Qwen Code, Pi, Kimi Code),
``tests/test_real_kilo.py`` (Kilo) or ``tests/test_sources_totals.py`` (Droid).  Clients are
installed with
``npm install --prefix CACHE/<name>-<version> <package>@<version>`` (the native binaries
come inside the npm packages) and reused when present.  CACHE is ``.ci/clients`` in the
checkout (gitignored) unless TOKLINE_CLIENTS_CACHE names another directory.  Clients
whose ``engines`` want a newer Node than the system's run under the Node 24 that
tests/vscode_host.py installs there (``path_for``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
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
    # tests/test_real_clients_jsonl.py.  Pi moved from badlogic/pi-mono
    # (@mariozechner/..., last 0.73.1) to earendil-works/pi: both packages are pinned.
    "qwen": ("@qwen-code/qwen-code", ("0.24.4",)),
    "pi": ("@earendil-works/pi-coding-agent", ("1.6.0",)),
    "pi-mono": ("@mariozechner/pi-coding-agent", ("0.73.1",)),
    "kimi": ("@moonshot-ai/kimi-code", ("2.1.0",)),  # Kimi Code (the TypeScript one)
    # tests/test_real_kilo.py.  7.8.1 (the newest) did not install on linux-x64: its
    # platform package @kilocode/cli-linux-x64@7.8.1 was missing from the registry.
    "kilo": ("@kilocode/cli", ("7.7.7",)),
    # tests/test_sources_totals.py: Factory Droid's npm package ``droid`` (its native binary
    # comes in the optional @factory/cli-<platform> package of the same version).
    "droid": ("droid", ("0.215.0",)),
}
# Executables not named after their client.
EXECUTABLES = {"pi-mono": "pi"}
# Clients whose package.json ``engines`` want Node 22 or later (Pi 1.x, Kimi Code: 22.19).
NEWER_NODE = {"qwen", "pi", "kimi"}

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
    exe = prefix / "node_modules" / ".bin" / EXECUTABLES.get(name, name)
    path = path_for(name)
    if exe in _checked or (exe.exists() and _version_ok(exe, version, path)):
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
    if not _version_ok(exe, version, path):
        raise Unavailable(f"{exe} does not report version {version}")
    _checked.add(exe)
    return exe


def path_for(name: str) -> str:
    """The PATH a client runs with: Node 24 (tests/vscode_host.py's) first for those in
    NEWER_NODE."""
    path = os.environ.get("PATH", "")
    if name not in NEWER_NODE:
        return path
    import vscode_host  # only for these clients

    try:
        node = vscode_host.node()
    except vscode_host.Unavailable as exc:
        raise Unavailable(f"Node {vscode_host.NODE}: {exc}") from None
    return f"{node.parent}{os.pathsep}{path}"


def _version_ok(exe: Path, version: str, path: str) -> bool:
    try:
        out = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL, check=False,
                             env={"PATH": path, "HOME": str(CACHE),
                                  "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1",
                                  "COPILOT_OFFLINE": "true", "COPILOT_AUTO_UPDATE": "false",
                                  "OPENCODE_DISABLE_AUTOUPDATE": "1",
                                  "GEMINI_CLI_NO_RELAUNCH": "true", "PI_OFFLINE": "1",
                                  "KIMI_DISABLE_TELEMETRY": "1",
                                  "KIMI_CODE_NO_AUTO_UPDATE": "1",
                                  "KILO_DISABLE_AUTOUPDATE": "1",
                                  "KILO_TELEMETRY_LEVEL": "off",
                                  # an update check, if any, is refused on the spot
                                  "HTTPS_PROXY": "http://127.0.0.1:9",
                                  "HTTP_PROXY": "http://127.0.0.1:9"})
    except (OSError, subprocess.TimeoutExpired):
        return False
    return version in out.stdout + out.stderr  # Pi prints it to stderr


INSTALLS_AT_ONCE = 4  # npm installs in flight: each waits on the registry more than the CPU


def install_all() -> int:
    """Install every pinned client (``.ci/run``), a few at a time, each into its own
    prefix; unreachable ones are reported, not fatal: their tests then skip with the same
    reason.  Node 24 is installed first, once (``path_for``)."""
    def one(pin: tuple[str, str, str]) -> str:
        name, package, version = pin
        try:
            return f"{package}@{version}: {binary(name, version)}"
        except Unavailable as exc:
            return f"{package}@{version}: not installed ({exc})"

    pins = [(name, package, version) for name, (package, versions) in CLIENTS.items()
            for version in versions]
    with contextlib.suppress(Unavailable):  # those clients report it themselves
        path_for(next(iter(NEWER_NODE)))
    with ThreadPoolExecutor(max_workers=INSTALLS_AT_ONCE) as pool:
        for line in pool.map(one, pins):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(install_all())
