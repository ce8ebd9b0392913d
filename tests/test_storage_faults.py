"""Broken storage (issue 14): a corrupt, read-only or full ledger, locks, rebuild backups,
files that could not be read, and processes killed mid-write.  Each fault ends in one
line with its own exit code, never a traceback; reports go on from what the ledger holds.

Permission tests run tokline as ``nobody`` (root reads and writes everything), so they
need root and setpriv; the full disk is a 2 MB tmpfs, mounted when root.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GENCORPUS
from test_gencorpus import _assert_matches

from tokline.ledger.store import Ledger

END = "2026-11-20T12:00:00Z"
ROOT = os.geteuid() == 0
SETPRIV = shutil.which("setpriv")
NOBODY = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"]

pytestmark = pytest.mark.skipif(not GENCORPUS.exists(), reason="../shared/tools not present")


def _nobody_can_run() -> str | None:
    """Why tokline cannot run as nobody here, or None."""
    if not ROOT or SETPRIV is None or sys.platform != "linux":
        return "needs root and setpriv to run tokline as another user"
    probe = subprocess.run([SETPRIV, *NOBODY, sys.executable, "-c", "import tokline.cli"],
                           capture_output=True, cwd="/", check=False)
    if probe.returncode != 0:
        return "nobody cannot import tokline from this checkout"
    return None


WHY_NOT_NOBODY = _nobody_can_run()
as_nobody = pytest.mark.skipif(WHY_NOT_NOBODY is not None, reason=str(WHY_NOT_NOBODY))


class Home:
    """A HOME with a generated corpus and tokline's XDG dirs, optionally nobody's."""

    def __init__(self, base: Path, nobody: bool, size: str = "1M") -> None:
        self.base = base
        self.home = base / "home"
        self.nobody = nobody
        self.truth = self.gen("--size", size, "--seed", "5", "--end", END)
        self.data = self.home / ".local" / "share" / "tokline"
        self.state = self.home / ".local" / "state" / "tokline"
        self.ledger = self.data / "ledger.sqlite3"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("TOKLINE_LEDGER", "TOKLINE_CONFIG", "XDG_"))}
        self.env.update(HOME=str(self.home), TZ="UTC", PYTHONDONTWRITEBYTECODE="1")
        if nobody:
            self.own()

    def gen(self, *args: str) -> dict[str, Any]:
        subprocess.run([sys.executable, str(GENCORPUS), "--out", str(self.home), *args],
                       check=True, capture_output=True)
        truth: dict[str, Any] = json.loads((self.home / "ground_truth.json").read_text())
        self.truth = truth
        if getattr(self, "nobody", False):
            self.own()
        return truth

    def own(self) -> None:
        os.chmod(self.base, 0o755)
        subprocess.run(["chown", "-R", "nobody:nogroup", str(self.home)], check=True)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "tokline", *args]
        if self.nobody:
            argv = [str(SETPRIV), *NOBODY, *argv]
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, cwd="/",
                              timeout=timeout, check=False)

    def report(self, *args: str) -> dict[str, Any]:
        done = self.run("daily", "--json", *args)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        totals: dict[str, Any] = json.loads(done.stdout)["totals"]
        return totals


def _one_line(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    err = done.stderr.strip()
    assert "Traceback" not in err, err
    assert done.returncode == code, (done.returncode, err)
    assert err.count("\n") == 0 and err.startswith("tokline: "), err
    for word in words:
        assert word in err, (word, err)
    return err


def _matches_truth(totals: dict[str, Any], truth: dict[str, Any]) -> None:
    claude = totals["sources"]["claude"]
    want = truth["claude"]["totals"]
    assert (claude["input_tokens"], claude["output_tokens"], claude["cache_creation_tokens"],
            claude["cache_read_tokens"], claude["requests"]) == (
        want["input"], want["output"], want["cache_creation"], want["cache_read"],
        want["requests"])
    assert totals["sources"]["codex"]["total_tokens"] == truth["codex"]["totals"]["total"]


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory nobody can reach (pytest's tmp_path is root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="tokline-faults-", dir="/tmp"))
    try:
        yield path
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", str(path)], check=False)
        shutil.rmtree(path, ignore_errors=True)


# corrupt pages ------------------------------------------------------------------------

def test_corrupt_pages_are_one_line_with_rebuild_advice(tmp_path: Path) -> None:
    h = Home(tmp_path, nobody=False)
    assert h.run("scan", "-q").returncode == 0
    size = h.ledger.stat().st_size
    db = sqlite3.connect(h.ledger)
    ((root,),) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'usage'")
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    db.close()
    with open(h.ledger, "r+b") as fh:
        fh.seek(size // 2 // 4096 * 4096)  # two pages in the middle
        fh.write(b"\xff" * 8192)
        # and the usage table's root, which every command reads (the middle may hold only
        # old pages of the time index, which a refresh's inserts never reach)
        fh.seek((root - 1) * page_size)
        fh.write(b"\xff" * page_size)
    h.gen("--append-mb", "0.2", "--end", "2026-11-20T12:30:00Z")  # scans have work to do
    for args in (["scan"], ["refresh"], ["daily"]):
        _full_check_due(h)  # the prompt's refresh sees the old logs' change
        _one_line(h.run(*args), 3, "tokline scan --rebuild")
    offline = h.run("daily", "--offline")  # may not touch the damaged pages
    assert "Traceback" not in offline.stderr and offline.returncode in (0, 3)
    doctor = h.run("doctor")
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr + doctor.stdout
    assert "tokline scan --rebuild" in doctor.stdout
    rebuilt = h.run("scan", "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    _matches_truth(h.report("--offline"), h.truth)
    db = sqlite3.connect(h.ledger)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


# read-only ---------------------------------------------------------------------------

@as_nobody
def test_read_only_directory(shared_tmp: Path) -> None:
    h = Home(shared_tmp, nobody=True)
    assert h.run("scan", "-q").returncode == 0
    before = h.report("--offline")
    h.state.joinpath("snapshot.json").unlink()  # status must compute one
    lines = h.state / "status.lines"
    h.gen("--append-mb", "0.2", "--end", "2026-11-20T12:30:00Z")
    h.data.chmod(0o555)
    for args in (["scan"], ["refresh"], ["scan", "--rebuild"]):
        err = _one_line(h.run(*args), 4, str(h.data), "not writable")
        assert "tokline scan --rebuild" not in err and "unreadable" not in err
    assert h.ledger.exists()
    assert h.report("--offline") == before
    done = h.run("daily", "--json")
    assert done.returncode == 0 and "could not refresh" in done.stderr
    assert "Traceback" not in done.stderr and json.loads(done.stdout)["totals"] == before
    status = h.run("status", "--json")
    assert status.returncode == 0 and "could not refresh" in status.stderr, status.stderr
    assert json.loads(status.stdout)["today"] is not None
    doctor = h.run("doctor")
    assert doctor.returncode == 1 and "could not refresh" in doctor.stdout, doctor.stdout
    assert "usage rows" in doctor.stdout and "Traceback" not in doctor.stderr

    # A failing background refresh leaves the status as it was: the last value, marked
    # stale once old.
    # Two hours old: the head's CHECKED, which readers take the age from, and the mtime.
    old = time.time() - 7200
    head, rest = lines.read_text().split("\n", 1)
    fields = head.split()
    fields[6] = str(int(fields[6]) - 7200)
    lines.write_text(" ".join(fields) + "\n" + rest)
    os.utime(lines, (old, old))
    kept = lines.read_bytes()
    _full_check_due(h)  # else the prompt's refresh trusts the unchanged-looking old logs
    _one_line(h.run("refresh", "--locked"), 4, "not writable")
    assert lines.read_bytes() == kept and lines.stat().st_mtime == pytest.approx(old)
    shown = h.run("status", "--target", "plain")
    assert shown.returncode == 0 and "(stale 2h)" in shown.stdout, shown


@as_nobody
def test_read_only_ledger_file(shared_tmp: Path) -> None:
    h = Home(shared_tmp, nobody=True)
    assert h.run("scan", "-q").returncode == 0
    before = h.report("--offline")
    h.gen("--append-mb", "0.2", "--end", "2026-11-20T12:30:00Z")
    h.ledger.chmod(0o444)
    for args in (["scan"], ["refresh"]):
        err = _one_line(h.run(*args), 4, str(h.ledger), "not writable")
        assert "tokline scan --rebuild" not in err
    assert h.report("--offline") == before
    done = h.run("daily", "--json")
    assert done.returncode == 0 and "could not refresh" in done.stderr
    assert json.loads(done.stdout)["totals"] == before
    doctor = h.run("doctor")
    assert doctor.returncode == 1 and "could not refresh" in doctor.stdout
    assert h.ledger.stat().st_mode & 0o777 == 0o444  # left as the user made it
    h.ledger.chmod(0o600)
    done = h.run("scan", "-q")
    assert done.returncode == 0, (done.stderr, sorted(os.listdir(h.data)))
    _matches_truth(h.report("--offline"), h.truth)


# full disk ---------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if not ROOT or sys.platform != "linux":
        pytest.skip("mounting a small tmpfs needs root on Linux")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_full_disk(tmp_path: Path, small_disk: Path) -> None:
    h = Home(tmp_path, nobody=False)
    h.env.update(XDG_DATA_HOME=str(small_disk / "data"), XDG_STATE_HOME=str(small_disk / "st"))
    ledger = small_disk / "data" / "tokline" / "ledger.sqlite3"
    # No ledger yet, no room for one.
    (small_disk / "data").mkdir()
    filler = _fill(small_disk)
    for args in (["status"], ["scan"], ["daily", "--offline"], ["refresh"]):
        _one_line(h.run(*args), 5, "full")
    assert not ledger.exists() or ledger.stat().st_size > 0  # no empty "ledger" left
    filler.unlink()
    # A ledger, then a full disk.
    assert h.run("scan", "-q").returncode == 0, h.run("scan").stderr
    before = h.report("--offline")
    h.gen("--append-mb", "0.5", "--end", "2026-11-20T12:30:00Z")
    filler = _fill(small_disk)
    err = _one_line(h.run("scan"), 5, "full")
    assert "rebuild" not in err
    assert h.report("--offline") == before
    done = h.run("daily", "--json")
    assert done.returncode == 0 and "could not refresh" in done.stderr, done.stderr
    assert json.loads(done.stdout)["totals"] == before
    filler.unlink()
    assert h.run("scan", "-q").returncode == 0
    _matches_truth(h.report("--offline"), h.truth)
    db = sqlite3.connect(ledger)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


# locks -------------------------------------------------------------------------------

def test_busy_ledger_is_its_own_error(tmp_path: Path) -> None:
    from tokline.errors import LedgerBusy
    from tokline.ledger.faults import classify

    err = classify(sqlite3.OperationalError("database is locked"), str(tmp_path / "l"))
    assert isinstance(err, LedgerBusy) and err.exit_code == 6 and "rebuild" not in str(err)


# rebuilds ----------------------------------------------------------------------------

def _backups(h: Home) -> list[Path]:
    return sorted(p for p in h.data.glob("ledger.sqlite3.old-*")
                  if not p.name.endswith(("-wal", "-shm")))


def test_rebuild_backups_are_unique_and_pruned_on_request(tmp_path: Path) -> None:
    h = Home(tmp_path, nobody=False)
    assert h.run("scan", "-q").returncode == 0
    kept = []
    for _ in range(5):  # well within a second of each other
        done = h.run("scan", "--rebuild", "-q")
        assert done.returncode == 0, done.stderr
        kept.append(done.stderr.strip().rsplit(" ", 1)[-1])
    assert len(set(kept)) == 5 and sorted(map(Path, kept)) == _backups(h)
    for backup in kept:  # each a whole ledger, never overwritten
        with Ledger(backup, readonly=True) as old:
            assert old.counts()["usage_rows"] > 0
    doctor = h.run("doctor").stdout
    assert "--prune-backups" in doctor
    assert all(backup in doctor for backup in kept[:2])
    assert not any(backup in doctor for backup in kept[2:])
    done = h.run("scan", "--prune-backups")
    assert done.returncode == 0, done.stderr
    assert _backups(h) == sorted(map(Path, kept[2:]))
    assert "--prune-backups" not in h.run("doctor").stdout
    _matches_truth(h.report("--offline"), h.truth)


def test_concurrent_rebuilds_and_readers(tmp_path: Path) -> None:
    h = Home(tmp_path, nobody=False, size="2M")
    assert h.run("scan", "-q").returncode == 0
    argv = [sys.executable, "-m", "tokline"]
    rebuilds = [subprocess.Popen([*argv, "scan", "--rebuild", "-q"], env=h.env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(4)]
    readers = [subprocess.Popen([*argv, *args], env=h.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for args in (["daily", "--offline", "--json"], ["daily", "--json"],
                            ["refresh"], ["doctor"]) for _ in range(2)]
    for proc in rebuilds + readers:
        _out, err = proc.communicate(timeout=300)
        assert "Traceback" not in err and "I/O error" not in err, err
        assert "rebuild it" not in err, err
        if proc in rebuilds:
            assert proc.returncode == 0, err
    assert len(_backups(h)) == 4  # each rebuild kept the ledger it replaced
    _matches_truth(h.report("--offline"), h.truth)
    db = sqlite3.connect(h.ledger)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


def _full_check_due(h: Home) -> None:
    """As if the last full check of the manifest were long ago (manifest.FULL_CHECK_S)."""
    from tokline.prompt import manifest

    fd = os.open(str(h.ledger) + ".manifest", os.O_WRONLY)
    try:
        os.pwrite(fd, bytes(8), manifest.CHECKED_AT)
    finally:
        os.close(fd)


# a file that could not be read -------------------------------------------------------

def _newest_log(h: Home) -> Path:
    logs = sorted((h.home / ".claude" / "projects").rglob("*.jsonl"),
                  key=lambda p: p.stat().st_mtime_ns)
    return logs[-1]


@as_nobody
@pytest.mark.parametrize("command", ["scan", "refresh"])
def test_unreadable_file_is_read_once_readable(shared_tmp: Path, command: str) -> None:
    h = Home(shared_tmp, nobody=True)
    assert h.run("scan", "-q").returncode == 0
    h.gen("--append-mb", "0.3", "--end", "2026-11-20T12:30:00Z")
    locked = _newest_log(h)
    locked.chmod(0)
    _full_check_due(h)  # the prompt's refresh sees old logs change at its full check
    first = h.run(command)
    assert "Traceback" not in first.stderr and str(locked) in first.stderr, first.stderr
    locked.chmod(0o644)  # changes no mtime
    again = h.run(command)
    assert again.returncode == 0, again.stderr
    _matches_truth(h.report("--offline"), h.truth)


@as_nobody
def test_unreadable_directory_is_listed_once_readable(shared_tmp: Path) -> None:
    h = Home(shared_tmp, nobody=True)
    assert h.run("scan", "-q").returncode == 0
    h.gen("--append-mb", "0.3", "--end", "2026-11-20T12:30:00Z")
    project = _newest_log(h).parent
    project.chmod(0)
    first = h.run("scan")
    assert "Traceback" not in first.stderr and str(project) in first.stderr, first.stderr
    project.chmod(0o755)  # changes no mtime
    assert h.run("scan").returncode == 0
    _matches_truth(h.report("--offline"), h.truth)


# kill -9 -----------------------------------------------------------------------------

def test_kill_9_during_scan_refresh_and_rebuild(tmp_path: Path) -> None:
    h = Home(tmp_path, nobody=False, size="5M")
    rng = random.Random(14)
    argv = [sys.executable, "-m", "tokline"]
    commands = (["scan", "-q"], ["refresh"], ["scan", "--rebuild", "-q"])
    end = time.time() + 30
    minutes = 0
    rounds = 0
    while rounds < 100 and time.time() < end:
        if rounds % 10 == 5:  # new lines: later scans have work again
            minutes += 5
            h.gen("--append-mb", "0.3", "--end", f"2026-11-20T12:{minutes:02d}:00Z")
        proc = subprocess.Popen([*argv, *commands[rounds % 3]], env=h.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rounds += 1
    assert rounds >= 30
    done = h.run("scan")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    db = sqlite3.connect(h.ledger)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with Ledger(h.ledger, readonly=True) as ledger:
        _assert_matches(ledger, h.truth)
    _matches_truth(h.report("--offline"), h.truth)
