"""Issue 16: the ``ssh://`` sync target against a real OpenSSH server on 127.0.0.1.

Each test starts ``sshd -D -e`` on a free loopback port with a throwaway host key and
user key (made here with ssh-keygen), and points tokline's ssh at a client config of its
own through TOKLINE_SSH_COMMAND (``ssh -F <config>``: that key only, no agent, the host
key pinned in a known_hosts file, StrictHostKeyChecking yes).  sshd's ``SetEnv HOME``
gives the remote side a home of its own in tmp, so ``ssh://host/~/path`` is tested
without touching the real one.  Simulated devices are tokline subprocesses with their
own HOME and XDG directories, each holding a generated corpus (../shared/tools).

Without sshd, ssh or ssh-keygen (``.ci/run`` installs openssh-server) those tests skip
and say why; the URL, redaction and timeout tests need none of them.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GENCORPUS

from tokline.accounting.costmode import Coster
from tokline.accounting.localtime import Calendar, resolve_zone
from tokline.accounting.pricing import PriceBook, bundled_table
from tokline.ledger.store import Ledger
from tokline.sync import targets
from tokline.sync.targets import SshTarget, Unreachable

SSHD = shutil.which("sshd") or next(
    (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.access(p, os.X_OK)), None)
SSH = shutil.which("ssh")
KEYGEN = shutil.which("ssh-keygen")
MISSING = [name for name, path in (("sshd", SSHD), ("ssh", SSH), ("ssh-keygen", KEYGEN))
           if path is None]
needs_sshd = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not installed (apt-get install "
    "openssh-server openssh-client; .ci/run does)")
needs_corpus = pytest.mark.skipif(not GENCORPUS.exists(), reason="../shared/tools not present")
# the transport is under test here (tests/test_sync.py counts with both scanners)
pytestmark = pytest.mark.scanner_independent
END = "2026-11-20T12:00:00Z"  # corpora end here, whatever today is
SEG = "0123456789abcdef/seg-00000001.tlseg"


class Sshd:
    """A running sshd serving the user running the tests, and a client config for it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "remote-home"  # the remote side's $HOME
        self.home.mkdir(parents=True)
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "sshd.log"
        self.client_config = root / "ssh_config"
        self.home_is_ours = False

    def start(self) -> None:
        assert SSHD and KEYGEN
        root = self.root
        for name in ("host_key", "user_key"):
            subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "tokline-test",
                            "-f", str(root / name)], check=True, capture_output=True)
        shutil.copy(root / "user_key.pub", root / "authorized_keys")
        if os.geteuid() == 0:
            # sshd started as root insists on its privilege-separation directory; the
            # package's service makes it at boot, a container may never have run that
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        optional = {"SetEnv": f"SetEnv HOME={self.home}",  # OpenSSH 8.7+
                    "PerSourcePenalties": "PerSourcePenalties no"}  # 9.8+: no throttling
        for _attempt in range(len(optional) + 1):
            self.port = _free_port()
            lines = [f"ListenAddress 127.0.0.1:{self.port}", f"HostKey {root / 'host_key'}",
                     f"AuthorizedKeysFile {root / 'authorized_keys'}",
                     f"PidFile {root / 'sshd.pid'}", "StrictModes no", "UsePAM no",
                     "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                     "PubkeyAuthentication yes", "PermitRootLogin prohibit-password",
                     "AuthenticationMethods publickey", *optional.values()]
            (root / "sshd_config").write_text("\n".join(lines) + "\n")
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            text = self._wait_listening()
            if text is None:
                break
            bad = re.search(r"[Bb]ad configuration option: (\w+)|[Uu]nsupported option "
                            r"\"?(\w+)", text)
            key = next((k for k in optional if bad and k.lower() in
                        (bad.group(1) or bad.group(2) or "").lower()), None)
            if key is None:
                pytest.fail(f"sshd did not start:\n{text}")
            del optional[key]  # an older sshd: go on without it
        known = root / "known_hosts"
        host_key = (root / "host_key.pub").read_text().split()[:2]
        known.write_text(f"[127.0.0.1]:{self.port} {' '.join(host_key)}\n")
        self.client_config.write_text("\n".join([
            "Host *", f"  IdentityFile {root / 'user_key'}", "  IdentitiesOnly yes",
            "  IdentityAgent none", f"  UserKnownHostsFile {known}",
            "  GlobalKnownHostsFile /dev/null", "  StrictHostKeyChecking yes",
            "  UpdateHostKeys no"]) + "\n")
        probe = subprocess.run(
            [*self.ssh_command(), "-p", str(self.port), "-o", "BatchMode=yes", "127.0.0.1",
             'printf %s "$HOME"'], env=_clean_env(), capture_output=True, timeout=30,
            check=False)
        assert probe.returncode == 0, probe.stderr.decode(errors="replace")
        self.home_is_ours = probe.stdout.decode() == str(self.home)

    def _wait_listening(self) -> str | None:
        """None once sshd listens; its log when it exited instead."""
        assert self.proc is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if b"Server listening" in self.log.read_bytes():
                return None
            if self.proc.poll() is not None:
                return self.log.read_text(errors="replace")
            time.sleep(0.02)
        self.stop()
        return "sshd: not listening after 15 s\n" + self.log.read_text(errors="replace")

    def ssh_command(self) -> list[str]:
        assert SSH
        return [SSH, "-F", str(self.client_config)]

    def env(self) -> dict[str, str]:
        return {"TOKLINE_SSH_COMMAND": shlex.join(self.ssh_command())}

    def url(self, path: str, user: bool = False) -> str:
        return f"ssh://{self.user + '@' if user else ''}127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    """This process's environment without an ssh agent or tokline's own settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOKLINE_", "SSH_")) and k not in (
               "CLAUDE_CONFIG_DIR", "CODEX_HOME", "TZ")}
    for var in ("TOKLINE_PURE", "TOKLINE_STRICT_BUILD"):
        if var in os.environ:
            env[var] = os.environ[var]
    return env


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    if MISSING:
        pytest.skip(f"{', '.join(MISSING)} not installed (apt-get install openssh-server)")
    server = Sshd(tmp_path / "sshd")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two generated corpora (different seeds), made once and copied by each test."""
    if not GENCORPUS.exists():
        pytest.skip("../shared/tools not present")
    base = tmp_path_factory.mktemp("corpora")
    made = []
    for seed in (1, 2):
        out = base / f"seed{seed}"
        subprocess.run([sys.executable, str(GENCORPUS), "--out", str(out), "--size", "2M",
                        "--seed", str(seed), "--end", END], check=True, capture_output=True)
        made.append(out)
    return made


class Device:
    """One simulated machine: a HOME (its corpus), XDG directories and a ledger."""

    def __init__(self, home: Path, extra_env: dict[str, str]) -> None:
        self.home = home
        self.env = _clean_env()
        self.env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                        XDG_DATA_HOME=str(home / ".local" / "share"),
                        XDG_STATE_HOME=str(home / ".local" / "state"),
                        XDG_CACHE_HOME=str(home / ".cache"), TZ="UTC",
                        TOKLINE_LEDGER=str(home / "ledger.sqlite3"),
                        CODEX_HOME=str(home / ".codex"), **extra_env)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tokline", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)

    def sync(self, target: str) -> dict[str, Any]:
        done = self.run("sync", "--json", "--target", target)
        assert done.returncode == 0, done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        return report

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self.home / ".local" / "state" / "tokline" / "sync-state.json").read_text())
        return data

    def truth(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.home / "ground_truth.json").read_text())
        return data

    def cells(self) -> dict[tuple[str, str, str], dict[str, float]]:
        """The ledger's usage per (day UTC, source, model), in ground_truth.json's terms."""
        cal = Calendar(resolve_zone("UTC"))
        coster = Coster(PriceBook(bundled_table()), "calculate")
        out: dict[tuple[str, str, str], dict[str, float]] = defaultdict(
            lambda: defaultdict(float))
        with Ledger(self.home / "ledger.sqlite3") as ledger:
            for row in ledger.usage():
                cell = out[(cal.day(row.ts_ms), row.source, row.model)]
                if row.source == "codex":  # cached input is part of Codex's input
                    cell["input"] += row.input + row.cache_read
                    cell["cached_input"] += row.cache_read
                else:
                    cell["input"] += row.input
                    cell["cache_creation_5m"] += row.cache_5m
                    cell["cache_creation_1h"] += row.cache_1h
                    cell["cache_read"] += row.cache_read
                    cell["requests"] += 1
                cell["output"] += row.output
                cell["cost"] += coster(row) or 0.0
        return out


CLAUDE_FIELDS = ("input", "output", "cache_creation_5m", "cache_creation_1h", "cache_read",
                 "requests", "cost")
CODEX_FIELDS = ("input", "cached_input", "output", "cost")


def _expected(*truths: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, float]]:
    """The sum of the ground truths per (day, source, model)."""
    out: dict[tuple[str, str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for truth in truths:
        for source, fields in (("claude", CLAUDE_FIELDS), ("codex", CODEX_FIELDS)):
            for day, models in truth[source]["daily"].items():
                for model, cell in models.items():
                    for field in fields:
                        out[(day, source, model)][field] += cell[field]
    return out


def _assert_sum(device: Device, want: dict[tuple[str, str, str], dict[str, float]]) -> None:
    got = device.cells()
    assert sorted(got) == sorted(want), device.home
    for key, cell in want.items():
        for field, value in cell.items():
            if field == "cost":
                assert got[key][field] == pytest.approx(value, rel=1e-6, abs=1e-9), key
            else:
                assert got[key][field] == value, (key, field)


def _devices(tmp_path: Path, corpora: list[Path], server: Sshd) -> list[Device]:
    devices = []
    for number, corpus in enumerate(corpora):
        home = tmp_path / f"device{number}"
        shutil.copytree(corpus, home)
        devices.append(Device(home, server.env()))
    return devices


def _exchange(first: Device, second: Device, first_url: str, second_url: str) -> None:
    """Both devices sync until each has the other's rows; a further sync adds nothing."""
    one = first.sync(first_url)
    assert one["exported_rows"] > 0 and one["imported_rows"] == 0
    two = second.sync(second_url)
    assert two["exported_rows"] > 0 and two["imported_rows"] == one["exported_rows"]
    again = first.sync(first_url)
    assert again["exported_rows"] == 0 and again["imported_rows"] == two["exported_rows"]
    last = second.sync(second_url)
    assert last["exported_rows"] == 0 and last["imported_rows"] == 0


# --- two devices through a real sshd ---------------------------------------------------


@needs_sshd
@needs_corpus
def test_two_devices_sync_through_sshd(tmp_path: Path, corpora: list[Path],
                                       sshd: Sshd) -> None:
    remote = tmp_path / "exchange"
    remote.mkdir()
    first, second = _devices(tmp_path, corpora, sshd)
    url = sshd.url(str(remote))
    _exchange(first, second, url, url)
    want = _expected(first.truth(), second.truth())
    _assert_sum(first, want)
    _assert_sum(second, want)
    # the layout on the remote side: each device's own folder of segments, no leftovers
    folders = sorted(p.name for p in remote.iterdir())
    assert len(folders) == 2
    assert all(re.fullmatch(r"seg-\d{8}\.tlseg", p.name)
               for folder in folders for p in (remote / folder).iterdir())
    assert first.state()["failures"] == 0 and first.state()["target"] == url


@needs_sshd
@needs_corpus
def test_path_with_a_space_and_one_in_the_remote_home(tmp_path: Path, corpora: list[Path],
                                                      sshd: Sshd) -> None:
    """One directory named two ways: absolute (its space written %20, with user@) and
    ``~/`` (a literal space); both devices meet in it."""
    if not sshd.home_is_ours:
        pytest.skip("this sshd cannot set the remote HOME (SetEnv needs OpenSSH 8.7)")
    remote = sshd.home / "tokline sync" / "it's here"
    remote.mkdir(parents=True)
    first, second = _devices(tmp_path, corpora, sshd)
    absolute = sshd.url(str(remote).replace(" ", "%20"), user=True)
    in_home = sshd.url("/~/tokline sync/it's here")
    _exchange(first, second, absolute, in_home)
    want = _expected(first.truth(), second.truth())
    _assert_sum(first, want)
    _assert_sum(second, want)
    assert len(list(remote.iterdir())) == 2
    assert not list(sshd.home.glob("*/*/*/.*")), "a temporary file was left"


@needs_sshd
@needs_corpus
def test_sshd_down_fails_in_one_line_and_backs_off(tmp_path: Path, corpora: list[Path],
                                                   sshd: Sshd) -> None:
    remote = tmp_path / "exchange"
    remote.mkdir()
    device = _devices(tmp_path, corpora[:1], sshd)[0]
    url = sshd.url(str(remote))
    device.sync(url)
    sshd.stop()

    before = time.time()
    done = device.run("sync", "--target", url)
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert url in lines[0] and "Connection refused" in lines[0], lines[0]
    state = device.state()
    assert state["failures"] == 1 and "Connection refused" in state["last_error"]
    assert state["next_s"] >= before + 2 * 60 - 1  # [sync] interval (60 s), doubled

    status = device.run("sync", "--status")
    assert status.returncode == 0
    assert "failing: 1 attempt(s) in a row" in status.stdout
    assert "Connection refused" in status.stdout
    doctor = device.run("doctor")
    assert doctor.returncode == 1
    assert "failing: 1 attempt(s) in a row" in doctor.stdout, doctor.stdout

    device.run("sync", "--target", url)  # a second failure waits twice as long
    state = device.state()
    assert state["failures"] == 2 and state["next_s"] >= before + 4 * 60 - 1

    # The background refresh does not try again before then...  (--publish: past the
    # fast path that ends a refresh when no log changed)
    device.env["TOKLINE_SYNC_TARGET"] = url
    start = time.monotonic()
    assert device.run("refresh", "--publish").returncode == 0
    assert device.state() == state
    # ...and once due, it tries, records the failure and still ends well, at once
    # (when the next one is due is what sync.due says, which the prompt's fast path reads)
    (device.home / ".local" / "state" / "tokline" / "sync.due").write_text("0")
    assert device.run("refresh", "--publish").returncode == 0
    assert device.state()["failures"] == 3
    assert time.monotonic() - start < 30


@needs_sshd
def test_missing_remote_directory_says_how_to_make_it(tmp_path: Path, sshd: Sshd) -> None:
    device = Device(tmp_path / "device", sshd.env())
    device.home.mkdir()
    remote = tmp_path / "not yet" / "made"
    url = sshd.url(str(remote).replace(" ", "%20"))
    done = device.run("sync", "--target", url)
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{remote} on 127.0.0.1 does not exist" in lines[0]
    # the command it suggests, pasted in a shell (with this test's ssh config), makes it
    hint = lines[0].split("create it: ", 1)[1]
    assert hint.startswith("ssh -p ")
    subprocess.run(shlex.join(sshd.ssh_command()) + hint[3:], shell=True, check=True,
                   env=_clean_env(), capture_output=True, timeout=30)
    assert remote.is_dir()
    assert device.sync(url)["imported_rows"] == 0
    # a file where the directory should be
    (tmp_path / "a file").write_text("")
    done = device.run("sync", "--target", sshd.url(str(tmp_path / "a%20file")))
    assert done.returncode != 0 and len(done.stderr.splitlines()) == 1
    assert "is not a directory" in done.stderr


# --- the target itself against sshd ------------------------------------------------------


@needs_sshd
def test_put_fetch_and_names_with_quoting(tmp_path: Path, sshd: Sshd,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Shell-special characters in the path are data, never code."""
    for key, value in sshd.env().items():
        monkeypatch.setenv(key, value)
    remote = tmp_path / "q $(touch PWNED) `x` ; \"d\" 'e' \\ *"
    remote.mkdir()
    target = SshTarget(sshd.url(urllib.parse.quote(str(remote))))
    assert target.names() == []
    data = os.urandom(200_000)
    target.put(SEG, data)
    (remote / SEG.split("/")[0] / "notes.txt").write_text("not a segment")
    (remote / SEG.split("/")[0] / "seg-00000002.tlseg").symlink_to("/etc/passwd")
    assert target.names() == [SEG]
    assert target.fetch([SEG, "0123456789abcdef/seg-00000009.tlseg"]) == {SEG: data}
    with pytest.raises(Unreachable, match="already exists"):
        target.put(SEG, b"other")
    assert (remote / SEG).read_bytes() == data
    assert not list(tmp_path.rglob("PWNED")) and not list(sshd.home.rglob("PWNED"))


@needs_sshd
def test_a_cut_connection_never_leaves_a_short_segment(tmp_path: Path, sshd: Sshd,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """ssh's stdin ends early (as when a link drops mid-transfer): the remote side sees
    a short file, removes it, and the sync fails saying so."""
    wrapper = tmp_path / "short-ssh"
    wrapper.write_text("#!/bin/sh\nhead -c 1000 | " + shlex.join(sshd.ssh_command())
                       + ' "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("TOKLINE_SSH_COMMAND", str(wrapper))
    remote = tmp_path / "exchange"
    remote.mkdir()
    target = SshTarget(sshd.url(str(remote)))
    with pytest.raises(Unreachable, match="arrived incomplete"):
        target.put(SEG, os.urandom(100_000))
    folder = remote / SEG.split("/")[0]
    assert list(folder.iterdir()) == []


# --- no sshd needed ----------------------------------------------------------------------


@pytest.mark.parametrize(("url", "host", "user", "port", "path", "shell"), [
    ("ssh://h/srv/tokline", "h", None, None, "/srv/tokline", "/srv/tokline"),
    ("ssh://me@h:2222/a%20b/c", "h", "me", 2222, "/a b/c", "'/a b/c'"),
    ("ssh://h/~/sync dir", "h", None, None, "~/sync dir", "\"$HOME\"/'sync dir'"),
    ("ssh://h/~", "h", None, None, "~", '"$HOME"'),
    ("ssh://[::1]:22/x", "::1", None, 22, "/x", "/x"),
])
def test_url_forms(url: str, host: str, user: str | None, port: int | None, path: str,
                   shell: str) -> None:
    target = SshTarget(url)
    assert (target.host, target.user, target.port, target.path) == (host, user, port, path)
    assert target._dir == shell


@pytest.mark.parametrize("url", [
    "ssh://-oProxyCommand=touch%20x/p", "ssh://-oProxyCommand=x@h/p", "ssh://h", "ssh://h/",
    "ssh://h:0/p", "ssh://h:99999/p", "ssh://h/p?q", "ssh://h/~root/p", "ssh://h/a%0Ab",
    "ssh://h/a\nb",
])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError) as info:
        SshTarget(url)
    assert "\n" not in str(info.value)


def test_an_option_never_reaches_ssh_as_a_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKLINE_SSH_COMMAND", raising=False)
    argv = SshTarget("ssh://u@h:2/x")._argv("true")
    assert argv[0] == "ssh" and argv[-3:] == ["--", "h", "sh -c true"]
    assert argv[argv.index("-l") + 1] == "u" and argv[argv.index("-p") + 1] == "2"


def test_a_password_never_shows(tmp_path: Path) -> None:
    assert targets.redact("ssh://me:hunter2@h:22/x") == "ssh://me:***@h:22/x"
    assert targets.redact("ssh://me@h/x:y@z") == "ssh://me@h/x:y@z"
    with pytest.raises(ValueError) as info:
        SshTarget("ssh://me:hunter2@h/x")
    assert "hunter2" not in str(info.value)
    device = Device(tmp_path / "device", {})
    device.home.mkdir()
    done = device.run("sync", "--target", "ssh://me:hunter2@127.0.0.1/x")
    assert done.returncode != 0 and "hunter2" not in done.stderr + done.stdout
    status = device.run("sync", "--status")
    assert "hunter2" not in status.stdout + json.dumps(device.state())
    assert "me:***@127.0.0.1" in status.stdout


def test_a_hung_ssh_is_ended_with_its_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """A timeout ends the whole process group: a wrapper whose child still holds the
    pipes would otherwise keep tokline waiting."""
    monkeypatch.setenv("TOKLINE_SSH_COMMAND", "sh -c 'sleep 30; echo late' --")
    monkeypatch.setattr(targets, "SSH_TIMEOUT_S", 0.5)
    start = time.monotonic()
    with pytest.raises(Unreachable, match="no answer from h within"):
        SshTarget("ssh://h/x").names()
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(("script", "message"), [
    ("echo 'ssh: connect to host h port 22: Connection refused' >&2; exit 255",
     "^ssh: connect to host h port 22: Connection refused$"),
    (r"printf 'warning\n\033[31mPermission denied\n\n' >&2; exit 255",
     r"^\\x1b\[31mPermission denied$"),
    ("exit 255", r"^ssh failed \(exit 255\)$"),
    ("echo 'sh: 1: tar: oops' >&2; exit 2", r"^the command failed on h \(exit 2: sh: 1: "),
    ("echo 'motd junk'", "^unreadable answer from h"),
    ("yes", "^unreadable answer from h"),  # endless: ended, not read to the end
])
def test_failures_are_one_line(script: str, message: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKLINE_SSH_COMMAND", f"sh -c {shlex.quote(script)} --")
    with pytest.raises(Unreachable) as info:
        SshTarget("ssh://h/x").fetch([SEG])
    assert re.search(message, str(info.value)), str(info.value)
    assert "\n" not in str(info.value)
