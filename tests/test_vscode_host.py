"""The VS Code extension in a real VS Code: code-server's workbench in headless Chromium.

The packaged ``.vsix`` (``.ci/run`` builds ``.ci/tokline.vsix``) is installed into
code-server (tests/vscode_host.py pins and installs it), which serves a workspace on
127.0.0.1; Debian's Chromium opens it, driven over the DevTools protocol by
tests/vscode_driver.cjs.  The status bar item must show what ``tokline status`` says for
the demo history, then the new spend after a Claude Code log line is appended; a click
on it shows the daily report.  The screenshots are kept (``.ci/artifacts/`` or
TOKLINE_ARTIFACTS).

Nothing leaves 127.0.0.1: code-server's extension gallery is switched off, telemetry and
update checks too; Chromium resolves no other host name; the servers' HTTP proxy is a
loopback recorder that refuses everything, and the test fails if anything asked it.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import vscode_host
from conftest import SHARED

from tokline.commands.demo import _prepare, install_sample

# the extension in its host is under test (the scanner runs in both legs elsewhere)
pytestmark = pytest.mark.scanner_independent

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "editors" / "vscode"
DRIVER = Path(__file__).resolve().parent / "vscode_driver.cjs"
LITELLM = SHARED / "pricing" / "litellm-prices-2026-07-24.json"
# VS Code names a status bar item's element `<publisher>.<name>.<id>`; the id is the one
# extension.ts gives createStatusBarItem.
ITEM = "tokline.tokline.tokline.status"
PLACEHOLDER = "$(pulse) tokline"  # extension.ts shows it until the first snapshot
MODEL = "claude-opus-4-5"
USAGE = {"input_tokens": 400_000, "output_tokens": 100_000}

# Settings that keep the workbench quiet and on this machine.
SETTINGS = {
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "extensions.ignoreRecommendations": True,
    "workbench.enableExperiments": False,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "chat.disableAIFeatures": True,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "npm.fetchOnlinePackageInfo": False,
    "json.schemaDownload.enable": False,
    "typescript.disableAutomaticTypeAcquisition": True,
    "security.workspace.trust.enabled": False,
}
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # fewer of Chromium's own calls home (each would be refused by the proxy below)
    "--disable-extensions", "--disable-default-apps", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=OptimizationHints,NetworkTimeServiceQuerying,MediaRouter,Translate",
    "--window-size=1280,800",
    # every host name but 127.0.0.1 fails to resolve: the page cannot reach out
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
)


class RefusingProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy on 127.0.0.1 that records each request line and refuses it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.asked: list[str] = []
        super().__init__(("127.0.0.1", 0), _Refuse)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Refuse(socketserver.StreamRequestHandler):
    server: RefusingProxy

    def handle(self) -> None:
        self.connection.settimeout(5)
        try:
            line = self.rfile.readline(4096).decode("latin-1").strip()
        except OSError:
            line = "(unreadable)"
        self.server.asked.append(line)
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")


@contextmanager
def group(argv: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own process group, output to ``log``; the whole group is ended
    on the way out, however the test went (code-server's extension host and the
    ``tokline watch`` the extension starts; Chromium's renderers)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        end_group(proc)


def end_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGTERM to the process group, SIGKILL to whatever is left of it 10 s later."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            proc.poll()  # reaps the leader, or the group never empties
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            continue  # still there: SIGKILL
        break
    proc.wait(10)


def wait_for(what: str, probe: Callable[[], str | None], timeout: float, log: Path) -> str:
    """Poll ``probe()`` until it returns a non-empty string."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout:.0f} s; {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Driver:
    """tests/vscode_driver.cjs: one JSON request, one JSON answer."""

    def __init__(self, proc: subprocess.Popen[str], log: Path) -> None:
        self.proc, self.log = proc, log

    def __call__(self, op: str, timeout: float = 30, **args: object) -> dict[str, object]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, "timeout": int(timeout * 1000), **args})
                              + "\n")
        self.proc.stdin.flush()
        # the driver bounds its own waits by `timeout`; this only catches a hung driver
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout + 15)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            pytest.fail(f"the driver did not answer {op}; {self.log}:\n{tail(self.log)}")
        answer: dict[str, object] = json.loads(line)
        return answer


@contextmanager
def driver(argv: list[str], log: Path) -> Iterator[Driver]:
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, text=True, start_new_session=True)
    try:
        yield Driver(proc, log)
    finally:
        end_group(proc)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def feeds(pgid: int) -> list[str]:
    """The ``tokline watch`` processes in code-server's process group."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            group_id = int(stat.read_text().rsplit(")", 1)[1].split()[2])
            argv = (stat.parent / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        if group_id == pgid and "watch" in argv and any(a.endswith("tokline") for a in argv):
            found.append(" ".join(argv))
    return found


def status(launcher: Path, *args: str) -> str:
    return subprocess.run([str(launcher), "status", *args], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def artifacts() -> Path:
    path = Path(os.environ.get("TOKLINE_ARTIFACTS") or ROOT / ".ci" / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def vsix() -> Path:
    path = Path(os.environ.get("TOKLINE_VSIX") or ROOT / ".ci" / "tokline.vsix")
    if not path.exists():
        pytest.skip(f"{path} is missing: .ci/run packages it "
                    "(or: cd editors/vscode && npm ci && npx vsce package --out PATH)")
    return path


def append_usage(home: Path, message_id: str) -> float:
    """Append one Claude Code response with USAGE; returns its price by the shared
    LiteLLM snapshot (not tokline's table)."""
    log = max((home / ".claude" / "projects").rglob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    line = {"type": "assistant", "timestamp": stamp, "requestId": f"req-{message_id}",
            "sessionId": log.stem, "message": {"id": message_id, "model": MODEL,
                                               "role": "assistant", "usage": USAGE}}
    with log.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    prices = json.loads(LITELLM.read_text("utf-8"))[MODEL]
    return float(USAGE["input_tokens"] * prices["input_cost_per_token"]
                 + USAGE["output_tokens"] * prices["output_cost_per_token"])


@contextmanager
def refusing_proxy() -> Iterator[RefusingProxy]:
    proxy = RefusingProxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


def expected(launcher: Path, template: str) -> tuple[str, str | None, float]:
    """What `tokline status` says now: the item's text, its background (VS Code's kind
    of status bar item) and today's cost."""
    text = status(launcher, "--target", "plain", "--format", template)
    snap = json.loads(status(launcher, "--json", "--format", template))
    kind = {"crit": "error", "warn": "warning"}.get(snap["rendered"]["level"])
    return text, kind, float(snap["today"]["cost_usd"])


def test_status_bar_item_in_a_real_vscode(home: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    package = vsix()
    try:
        node, entry = vscode_host.code_server()
        playwright = vscode_host.playwright_core()
    except vscode_host.Unavailable as exc:
        pytest.skip(f"no VS Code host: {exc}")
    launcher = Path(sys.executable).parent / "tokline"
    assert launcher.exists(), f"the tokline launcher is not beside {sys.executable}"

    # The demo history as `tokline demo` shows it: scanned, Claude Code's quota passed
    # through its statusline, the snapshot published.
    install_sample(home)
    _prepare(home)
    manifest = json.loads((EXTENSION / "package.json").read_text("utf-8"))
    template = manifest["contributes"]["configuration"]["properties"]["tokline.format"]["default"]
    before, kind_before, cost_before = expected(launcher, template)
    assert before.startswith("$(pulse) $"), before

    user_data, extensions = tmp_path / "vscode-user", tmp_path / "vscode-extensions"
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "README.md").write_text("a workspace for tokline's status bar item\n")
    config = tmp_path / "code-server.yaml"
    config.write_text("bind-addr: 127.0.0.1:0\nauth: none\ncert: false\n")
    (user_data / "User").mkdir(parents=True)
    (user_data / "User" / "settings.json").write_text(json.dumps(
        {**SETTINGS, "tokline.binaryPath": str(launcher)}, indent=2))
    logs = {name: tmp_path / f"{name}.log" for name in ("code-server", "chromium", "driver")}
    profile = tmp_path / "chromium-profile"
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("VSCODE_", "CODE_SERVER")) and k.lower() not in (
                    "http_proxy", "https_proxy", "all_proxy", "no_proxy")}

    with ExitStack() as stack:
        # Two loopback proxies that refuse everything: one for code-server, its extension
        # host and the tokline processes it starts (which must ask for nothing), one for
        # Chromium's own calls home (refused, and listed in the report).
        server_proxy = stack.enter_context(refusing_proxy())
        browser_proxy = stack.enter_context(refusing_proxy())
        env = {**base_env,
               "EXTENSIONS_GALLERY": "{}",  # code-server's default is open-vsx.org: none
               **dict.fromkeys(("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"),
                               server_proxy.url),
               **dict.fromkeys(("no_proxy", "NO_PROXY"), "127.0.0.1,localhost")}
        cs = [str(node), str(entry), "--config", str(config), "--user-data-dir", str(user_data),
              "--extensions-dir", str(extensions)]
        installed = subprocess.run([*cs, "--install-extension", str(package)],
                                   capture_output=True, text=True, env=env, timeout=120,
                                   stdin=subprocess.DEVNULL, check=False)
        assert "successfully installed" in installed.stdout, installed.stdout + installed.stderr

        started = time.monotonic()
        server = stack.enter_context(group(
            [*cs, "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust",
             "--disable-getting-started-override", "--ignore-last-opened"],
            logs["code-server"], env=env))
        stack.enter_context(group(
            [chromium, *CHROMIUM_FLAGS, f"--proxy-server={browser_proxy.url}",
             f"--user-data-dir={profile}", "about:blank"], logs["chromium"], env=base_env))

        def listening() -> str | None:
            found = re.search(r"HTTP server listening on (http://127\.0\.0\.1:\d+)/",
                              logs["code-server"].read_text(errors="replace"))
            return found.group(1) if found else None

        def devtools() -> str | None:
            # Chromium writes its DevTools port and browser path there once it listens.
            active = profile / "DevToolsActivePort"
            lines = active.read_text().split("\n") if active.exists() else []
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}" if len(lines) > 1 and lines[1] else None

        base = wait_for("code-server listening", listening, 60, logs["code-server"])
        cdp = wait_for("Chromium's DevTools endpoint", devtools, 30, logs["chromium"])
        assert server.poll() is None
        drive = stack.enter_context(driver([str(node), str(DRIVER), str(playwright), cdp],
                                           logs["driver"]))

        def diagnose() -> str:
            return f"{logs['code-server']}:\n{tail(logs['code-server'])}"

        opened = drive("open", url=f"{base}/?folder={workspace}", timeout=60)
        assert opened["ok"], f"{opened}\n{diagnose()}"
        shown = drive("item", id=ITEM, unlike=[PLACEHOLDER], timeout=90)
        first_s = time.monotonic() - started
        assert shown["ok"], f"{shown}\n{diagnose()}"
        assert (shown["text"], shown["kind"]) == (before, kind_before)
        drive("screenshot", path=str(artifacts() / "vscode-host-before.png"))

        cost = append_usage(home, f"msg_vscode_{os.getpid()}_{time.time_ns()}")
        appended = time.monotonic()
        changed = drive("item", id=ITEM, unlike=[before], timeout=30)
        change_s = time.monotonic() - appended
        assert changed["ok"], f"no change after an appended log line: {changed}\n{diagnose()}"
        after, kind_after, cost_after = expected(launcher, template)
        assert (changed["text"], changed["kind"]) == (after, kind_after)
        assert after != before
        assert cost_after - cost_before == pytest.approx(cost, abs=1e-6)
        # one feed, whatever the workbench did meanwhile (extension.ts starts it once)
        assert len(feeds(server.pid)) == 1, feeds(server.pid)
        shot = artifacts() / "vscode-host.png"
        assert drive("screenshot", path=str(shot))["ok"]

        # A click on the item shows the daily report (tokline.showReport), newest day first.
        days = json.loads(subprocess.run(
            [str(launcher), "daily", "--json", "--offline"], capture_output=True, text=True,
            check=True, timeout=60).stdout)["rows"][::-1]
        want = [{"label": day["period"],
                 "description": f"${day['cost_usd']:.2f}{'+?' if day['unpriced'] else ''}"}
                for day in days]
        assert drive("click", id=ITEM, timeout=10)["ok"]
        report = drive("quickpick", timeout=30)
        assert report["ok"] and report["title"] == "tokline: cost per day", report
        rows = report["rows"]
        assert isinstance(rows, list) and rows and rows == want[:len(rows)]
        assert want[0]["description"] == after.split()[1]  # today, as the status bar says
        drive("screenshot", path=str(artifacts() / "vscode-host-report.png"))
        urls = drive("requests")["urls"]
        assert isinstance(urls, list) and urls
        own = (base, base.replace("http", "ws", 1), f"blob:{base}", "data:")
        elsewhere = [u for u in urls if not str(u).startswith(own)]
        assert elsewhere == [], f"the workbench asked for more than code-server: {elsewhere}"
    asked = server_proxy.asked
    assert asked == [], f"code-server or tokline tried to reach out: {asked}"
    refused = sorted({line.split()[1].split("/")[2] if "://" in line else line.split()[1]
                      for line in browser_proxy.asked if len(line.split()) > 1})
    print(f"\nVS Code host: {before!r} -> {after!r}; shown {first_s:.1f} s after code-server "
          f"started, changed {change_s:.1f} s after the append; screenshot: {shot}; "
          f"Chromium's own calls home, refused: {', '.join(refused) or 'none'}")
