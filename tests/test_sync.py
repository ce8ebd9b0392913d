"""``tokline sync`` between devices through a shared directory (issue 16).

Devices are simulated on one box: each has its own HOME with its own XDG directories (so
its own ledger, device id, state and config) and runs tokline as a subprocess, or, where
many exchanges are needed (the convergence property), drives tokline.sync in-process on
ledgers in temporary directories.  Corpora come from ../shared/tools/gencorpus.py, whose
ground_truth.json says what every report must show per UTC day, model and source.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from conftest import GENCORPUS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokline.accounting.pricing import PriceBook, bundled_table
from tokline.engine import validate
from tokline.engine.keys import key64
from tokline.engine.refresh import refresh
from tokline.ledger.store import Ledger
from tokline.sync import exchange, segments
from tokline.sync.device import local_id, to_hex
from tokline.sync.targets import DirectoryTarget

END = "2026-11-20T12:00:00Z"
needs_corpus = pytest.mark.skipif(not GENCORPUS.exists(), reason="../shared/tools not present")

# (input, output, cache creation, cache read, requests) and the cost, per cell
Cells = dict[tuple[str, ...], list[float]]


# --- devices -------------------------------------------------------------------------

class Device:
    """One simulated machine: a HOME (holding its assistants' logs) with its own XDG
    directories; tokline runs in it as a subprocess, its ledger where tokline puts it
    by default (TOKLINE_LEDGER unset)."""

    def __init__(self, home: Path, name: str) -> None:
        self.home = home
        self.name = name
        home.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("TOKLINE_", "XDG_"))}
        for var in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "TZ"):
            self.env.pop(var, None)
        self.env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                        XDG_DATA_HOME=str(home / ".local" / "share"),
                        XDG_STATE_HOME=str(home / ".local" / "state"),
                        XDG_CACHE_HOME=str(home / ".cache"), TZ="UTC")
        # compiled once instead of in every one of the many processes
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        for var in ("TOKLINE_PURE", "TOKLINE_STRICT_BUILD"):
            if var in os.environ:
                self.env[var] = os.environ[var]
        config = home / ".config" / "tokline"
        config.mkdir(parents=True, exist_ok=True)
        (config / "config.toml").write_text(f'[sync]\ndevice = "{name}"\n')

    @property
    def ledger(self) -> Path:
        return self.home / ".local" / "share" / "tokline" / "ledger.sqlite3"

    @property
    def id(self) -> int:
        return local_id(str(self.ledger))

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tokline", *args]

    def run(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True,
                              timeout=120, check=False, cwd=self.home)
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == code, (done.returncode, done.stderr)
        return done

    def sync(self, share: Path) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(self.run("sync", "--json", "--target",
                                                     str(share)).stdout)
        return report

    def cells(self) -> Cells:
        """Per (UTC day, "model", model) and (UTC day, "source", source) from the daily
        report: the models leave out Claude Code's <synthetic> messages, the sources
        count them."""
        report = json.loads(self.run("daily", "--json", "--tz", "UTC", "--offline").stdout)
        out: Cells = {}
        for row in report["rows"]:
            day = row["period"]
            for model in row["models"]:
                out[(day, "model", model["model"])] = _cell(model)
            for source, sums in row["sources"].items():
                out[(day, "source", source)] = _cell(sums)
            if row["synthetic_requests"]:
                out[(day, "synthetic")] = [0, 0, 0, 0, row["synthetic_requests"], 0.0]
        return out

    def attribution(self) -> dict[int, tuple[int, int]]:
        """Every row's key -> (its device, its time)."""
        with sqlite3.connect(f"file:{self.ledger}?mode=ro", uri=True) as db:
            return {k: (d, t) for k, d, t in db.execute("SELECT key, device, ts_ms FROM usage")}


def _cell(sums: dict[str, Any]) -> list[float]:
    return [sums["input_tokens"], sums["output_tokens"], sums["cache_creation_tokens"],
            sums["cache_read_tokens"], sums["requests"], sums["cost_usd"]]


def _gen(out: Path, *args: str) -> dict[str, Any]:
    subprocess.run([sys.executable, str(GENCORPUS), "--out", str(out), *args], check=True,
                   capture_output=True)
    truth: dict[str, Any] = json.loads((out / "ground_truth.json").read_text())
    return truth


def _truth_cells(*truths: dict[str, Any]) -> Cells:
    """What every device must report once it holds all these corpora: their sum, in the
    shape of Device.cells (Codex's input includes its cached input; tokline counts that
    part as cache reads)."""
    out: Cells = defaultdict(lambda: [0, 0, 0, 0, 0, 0.0])

    def add(key: tuple[str, ...], values: list[float]) -> None:
        cell = out[key]
        for i, value in enumerate(values):
            cell[i] += value

    for truth in truths:
        for day, models in truth["claude"]["daily"].items():
            for model, c in models.items():
                values = [c["input"], c["output"], c["cache_creation_5m"] + c["cache_creation_1h"],
                          c["cache_read"], c["requests"], c["cost"]]
                add((day, "source", "claude"), values)
                if model == "<synthetic>":
                    add((day, "synthetic"), [0, 0, 0, 0, c["requests"], 0.0])
                else:
                    add((day, "model", model), values)
        for day, models in truth["codex"]["daily"].items():
            for model, c in models.items():
                values = [c["input"] - c["cached_input"], c["output"], 0, c["cached_input"],
                          c["events"], c["cost"]]
                add((day, "source", "codex"), values)
                add((day, "model", model), values)
    return dict(out)


def _assert_cells(got: Cells, want: Cells, who: str) -> None:
    assert sorted(got) == sorted(want), who
    for key, cell in want.items():
        assert got[key][:5] == cell[:5], (who, key)
        assert got[key][5] == pytest.approx(cell[5], abs=1e-5), (who, key)


def _requests(truth: dict[str, Any]) -> int:
    return int(truth["claude"]["totals"]["requests"] + truth["codex"]["totals"]["events"])


@pytest.fixture
def share(tmp_path: Path) -> Path:
    path = tmp_path / "share"
    path.mkdir()
    return path


# --- two and three machines with generated corpora --------------------------------------

@needs_corpus
def test_two_then_three_devices_sum_their_ground_truths(tmp_path: Path, share: Path) -> None:
    corpora = [("--codex-share", "0.2"), ("--codex-share", "0.5"), ("--codex-share", "0.05")]
    devices, truths = [], []
    for n, extra in enumerate(corpora):
        device = Device(tmp_path / f"m{n}", f"machine-{n}")
        truths.append(_gen(device.home, "--size", "2M", "--seed", str(100 + n),
                           "--end", END, *extra))
        devices.append(device)
    # two machines: the first exports before the second exists
    for device in (devices[0], devices[1], devices[0]):
        report = device.sync(share)
        assert not report["rejected"], report
    want = _truth_cells(*truths[:2])
    for device in devices[:2]:
        _assert_cells(device.cells(), want, device.name)
    # a third joins, imports both at once, and the first two import its rows
    for device in devices[2], devices[0], devices[1]:
        report = device.sync(share)
        assert report["imported_rows"] > 0 and not report["rejected"], report
    # then more usage on one of them reaches the others at their next sync, once
    truths[0] = _gen(devices[0].home, "--append-mb", "0.3", "--end", "2026-11-20T13:00:00Z")
    assert devices[0].sync(share)["exported_rows"] > 0
    for device in devices[1:]:
        device.sync(share)
    assert devices[1].sync(share)["imported_rows"] == 0  # nothing new: nothing comes
    want = _truth_cells(*truths)
    for device in devices:
        _assert_cells(device.cells(), want, device.name)
    # every row is its own device's, the same on every device
    owners = {device.id: _requests(truth) for device, truth in zip(devices, truths, strict=True)}
    seen = [device.attribution() for device in devices]
    assert all(table == seen[0] for table in seen[1:])
    per_device: dict[int, int] = defaultdict(int)
    for owner, _ts in seen[0].values():
        per_device[owner] += 1
    assert per_device == owners


@needs_corpus
def test_a_copy_of_another_devices_logs_adds_nothing(tmp_path: Path, share: Path) -> None:
    """A shared or synced home: the same responses reach the ledger from two devices;
    they count once, and every device attributes each to the same device."""
    laptop, desktop, server = (Device(tmp_path / n, n) for n in ("laptop", "desktop", "server"))
    truth_laptop = _gen(laptop.home, "--size", "2M", "--seed", "7", "--end", END)
    truth_desktop = _gen(desktop.home, "--size", "2M", "--seed", "8", "--end", END,
                         "--codex-share", "0.4")
    for folder in (".claude", ".codex"):  # the server holds a copy of the laptop's logs
        shutil.copytree(laptop.home / folder, server.home / folder)
    for device in (server, desktop, laptop, server, desktop):
        device.sync(share)
    want = _truth_cells(truth_laptop, truth_desktop)
    tables = []
    for device in (laptop, desktop, server):
        _assert_cells(device.cells(), want, device.name)
        tables.append(device.attribution())
    assert tables[0] == tables[1] == tables[2]
    # the laptop's rows, seen by two devices, are the lower id's: a deterministic rule
    lower = min(laptop.id, server.id)
    owners = {owner for owner, _ts in tables[0].values()}
    assert owners == {lower, desktop.id}


# --- convergence: random interleavings on N devices (in-process) -------------------------

DAY_MS = 86_400_000
BASE_MS = 1_793_232_000_000  # 2026-10-29T00:00:00Z
MODELS = ("claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-5-20251101")
BOOK = PriceBook(bundled_table())
EXAMPLES = int(os.environ.get("TOKLINE_SYNC_EXAMPLES") or (100 if os.environ.get("CI") else 25))


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


class Response:
    """One API response as Claude Code logs it: ``len(outputs)`` lines, one per content
    block, 700 ms apart, with a running output count (so each line's total is larger)."""

    def __init__(self, n: int, model: int, day: int, second: int, inp: int, cache: int,
                 outputs: list[int]) -> None:
        self.n, self.model, self.inp, self.cache = n, MODELS[model], inp, cache
        self.ts = BASE_MS + day * DAY_MS + second * 1000  # seconds near midnight cross it
        self.outputs = outputs

    def line(self, k: int, shift_ms: int = 0, sidechain: bool = False) -> bytes:
        usage = {"input_tokens": self.inp, "cache_creation_input_tokens": self.cache,
                 "cache_read_input_tokens": 3 * self.cache, "output_tokens": self.outputs[k]}
        return json.dumps({
            "type": "assistant", "timestamp": _iso(self.ts + 700 * k + shift_ms),
            "isSidechain": sidechain,
            "sessionId": f"session-{self.n % 3}", "requestId": f"req_{self.n}",
            "cwd": f"/home/someone/work/project-{self.n % 2}",
            "message": {"id": f"msg_{self.n}", "model": self.model, "usage": usage}},
            separators=(",", ":")).encode() + b"\n"

    def counts(self, held: int) -> tuple[int, int, int, int]:
        return self.inp, self.outputs[held - 1], self.cache, 3 * self.cache


# (model, day, second, input, cache writes, running output counts): Response's arguments
responses_st = st.lists(
    st.tuples(st.integers(0, len(MODELS) - 1), st.integers(0, 2),
              st.sampled_from([0, 3600, 86_399]),  # 86,399 s: its later lines are tomorrow's
              st.integers(1, 5000), st.integers(0, 40_000),
              st.lists(st.integers(1, 900), min_size=1, max_size=4)),
    min_size=1, max_size=8)

# (op, device, argument, seed): the ops that make ties and crossings (two devices logging
# one response, copies of logs, syncs, deliveries) are drawn more often
OPS = ("log", "log", "log", "copy", "replay", "refresh", "sync", "sync", "sync", "deliver",
       "deliver", "deliver", "restart", "unmark", "rebuild")
ops_st = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 3), st.integers(0, 9),
                            st.integers(0, 2**16)), min_size=4, max_size=40)


class Machine:
    """A device of the convergence test: its home, its ledger, and its own replica of
    the shared folder (a sync tool such as Syncthing copies files between replicas)."""

    def __init__(self, root: Path, n: int, privacy: str) -> None:
        self.home = root / f"home{n}"
        self.replica = root / f"replica{n}"
        self.path = root / f"data{n}" / "ledger.sqlite3"
        self.replica.mkdir(parents=True)
        self.privacy = privacy
        self.name = f"device-{n}"
        self.ledger = Ledger(self.path)
        self.id = local_id(str(self.path))
        self.held: dict[int, int] = {}  # response -> lines of it in this device's logs

    def append(self, file: str, data: bytes) -> None:
        path = self.home / ".claude" / "projects" / "-home-someone-work" / file
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as fh:
            fh.write(data)

    def refresh(self) -> None:
        refresh(self.ledger, {"HOME": str(self.home)}, prices=BOOK)

    def sync(self) -> exchange.Report:
        report, _quota = exchange.sync(self.ledger, DirectoryTarget(str(self.replica)), self.id,
                                       self.name, self.privacy, BOOK.cost_of)
        assert not report.rejected, report
        return report

    def restart(self) -> None:
        self.ledger.close()
        self.ledger = Ledger(self.path)

    def rebuild(self) -> None:
        """``tokline scan --rebuild``: a new ledger (the device id stays) from the logs."""
        self.ledger.close()
        for suffix in ("", "-wal", "-shm"):
            with_suffix = Path(f"{self.path}{suffix}")
            if with_suffix.exists():
                with_suffix.unlink()
        self.ledger = Ledger(self.path)
        assert local_id(str(self.path)) == self.id
        self.refresh()

    def rows(self) -> dict[int, tuple[Any, ...]]:
        """key -> (device, ts, source, session, model, project as it leaves this device,
        input, output, cache writes, cache reads, flags)."""
        out = {}
        for row in self.ledger.db.execute(
                "SELECT u.key, u.device, u.ts_ms, c.source, c.session_id, c.model, c.project,"
                " u.input, u.output, u.cache_5m + u.cache_1h, u.cache_read, u.flags"
                " FROM usage u JOIN contexts c ON c.id = u.ctx"):
            project = row[6]
            if row[1] == self.id:  # its own: as other devices received it
                project = exchange.project_for_export(project, self.privacy)
            out[row[0]] = (*row[1:6], project, *row[7:])
        return out

    def cells(self) -> list[tuple[Any, ...]]:
        with self.ledger.write():  # what the snapshot does for recent rows, for all of them
            self.ledger.price_pending(0, BOOK.cost_of)
        return self.ledger.db.execute(
            "SELECT u.ts_ms / 86400000, c.source, c.model, sum(u.input), sum(u.output),"
            " sum(u.cache_5m + u.cache_1h), sum(u.cache_read), count(*),"
            " round(sum(u.cost_calc), 9)"  # summed in another order: the last bits differ
            " FROM usage u JOIN contexts c ON c.id = u.ctx GROUP BY 1, 2, 3"
            " ORDER BY 1, 2, 3").fetchall()


def _deliver(src: Machine, dst: Machine, rng: random.Random) -> None:
    """The sync tool copies some of ``src``'s files (any device's) that ``dst`` lacks or
    holds only in part, in a random order; some arrive half-copied (the rest comes with a
    later delivery), some twice, some also under a conflict copy's name."""
    names = [str(p.relative_to(src.replica)) for p in src.replica.glob("*/*")
             if not p.name.startswith(".")]
    rng.shuffle(names)
    for name in names[:rng.randint(0, len(names))]:
        data = (src.replica / name).read_bytes()
        there = dst.replica / name
        if there.exists() and there.read_bytes() == data and rng.random() < 0.7:
            continue
        there.parent.mkdir(exist_ok=True)
        mode = rng.random()
        if mode < 0.25:  # half-copied: a sync tool writing in place
            there.write_bytes(data[:rng.randint(0, len(data) - 1)])
        else:
            there.write_bytes(data)
            if mode > 0.9:
                there.with_name(there.stem + ".sync-conflict-20261130" + there.suffix) \
                    .write_bytes(data)


def _deliver_all(machines: list[Machine]) -> None:
    everything: dict[str, bytes] = {}
    for machine in machines:
        for path in machine.replica.glob("*/seg-*"):
            name = str(path.relative_to(machine.replica))
            data = path.read_bytes()
            if segments.parse_name(name) is None:
                continue
            if len(data) > len(everything.get(name, b"")):  # the whole file, not a part
                everything[name] = data
    for machine in machines:
        for name, data in everything.items():
            there = machine.replica / name
            if not there.exists() or there.read_bytes() != data:
                there.parent.mkdir(exist_ok=True)
                there.write_bytes(data)


def _run_interleaving(machines: list[Machine],
                      raw: list[tuple[int, int, int, int, int, list[int]]],
                      ops: list[tuple[str, int, int, int]]) -> None:
    responses = [Response(n, *spec[:5], sorted(set(spec[5]))) for n, spec in enumerate(raw)]
    rng = random.Random(len(ops))
    for op, who, a, b in ops:
        machine = machines[who % len(machines)]
        if op == "log":  # the assistant writes more lines of a response (maybe all of them)
            resp = responses[a % len(responses)]
            held = machine.held.get(resp.n, 0)
            upto = min(len(resp.outputs), held + 1 + b % 4)
            machine.append(f"s{resp.n % 4}.jsonl",
                           b"".join(resp.line(k) for k in range(held, upto)))
            machine.held[resp.n] = upto
        elif op == "copy":  # this device gets a copy of another's logs (a synced home)
            other = machines[a % len(machines)]
            if other is not machine:
                source = other.home / ".claude" / "projects"
                for log in source.rglob("*.jsonl"):
                    there = machine.home / ".claude" / "projects" / f"copy-{a}" / log.name
                    there.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(log, there)
                for n, lines in other.held.items():
                    machine.held[n] = max(machine.held.get(n, 0), lines)
        elif op == "replay":  # a resumed session copies what it holds, a little later,
            # or a subagent's sidechain does (the row stays a sidechain only if every
            # copy is one)
            resp = responses[a % len(responses)]
            held = machine.held.get(resp.n, 0)
            if held:
                machine.append(f"resumed-{resp.n}.jsonl",
                               b"".join(resp.line(k, b % 2500, sidechain=b % 3 == 0)
                                        for k in range(held)))
        elif op == "refresh":
            machine.refresh()
        elif op == "sync":
            machine.sync()
        elif op == "deliver":
            rng.seed(b)
            _deliver(machine, machines[a % len(machines)], rng)
        elif op == "restart":
            machine.restart()
        elif op == "unmark":  # killed after writing a segment, before marking its rows
            with machine.ledger.write():
                machine.ledger.db.execute("UPDATE usage SET synced = 0")
        elif op == "rebuild":
            machine.rebuild()
    # quiet period: everyone scans and syncs, the sync tool delivers everything, until no
    # device has anything left to export
    for _round in range(6):
        exported = 0
        for machine in machines:
            machine.refresh()
            exported += machine.sync().exported_rows
        _deliver_all(machines)
        for machine in machines:
            machine.sync()
        if not exported:
            break
    else:
        raise AssertionError("the devices never stopped exporting")
    # what the logs hold: each response at its longest copy, the device holding that copy
    # (the lower id when several do) being its device
    # and no flags: wherever a sidechain copy is, the main one is too
    want: dict[int, tuple[int, ...]] = {}
    for resp in responses:
        longest = max(m.held.get(resp.n, 0) for m in machines)
        if longest:
            owner = min(m.id for m in machines if m.held.get(resp.n, 0) == longest)
            want[key64(f"msg_{resp.n}", f"req_{resp.n}")] = (owner, *resp.counts(longest), 0)
    first = machines[0].rows()
    for machine in machines:
        assert machine.rows() == first, machine.name
        assert machine.cells() == machines[0].cells(), machine.name
    assert {key: (row[0], *row[6:11]) for key, row in first.items()} == want


@given(privacies=st.lists(st.sampled_from(exchange.PRIVACY), min_size=2,
                          max_size=4 if os.environ.get("CI") else 3),
       raw=responses_st, ops=ops_st)
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_devices_converge_whatever_the_interleaving(
        privacies: list[str], raw: list[tuple[int, int, int, int, int, list[int]]],
        ops: list[tuple[str, int, int, int]]) -> None:
    root = Path(tempfile.mkdtemp(prefix="tokline-converge-"))
    machines: list[Machine] = []
    # Durability is not what this test is about: without fsync an example takes a tenth
    # of the time on a busy disk (the kill -9 test below keeps it).
    with mock.patch("os.fsync"):
        try:
            for n, privacy in enumerate(privacies):
                machines.append(Machine(root, n, privacy))
            _run_interleaving(machines, raw, ops)
        finally:
            for machine in machines:
                machine.ledger.close()
            shutil.rmtree(root, ignore_errors=True)


def _machines(root: Path, privacies: list[str]) -> list[Machine]:
    """Devices in the order of their ids (the lower id wins a tie)."""
    return sorted((Machine(root, n, p) for n, p in enumerate(privacies)), key=lambda m: m.id)


def _copy_all(src: Machine, dst: Machine, only: Machine | None = None) -> None:
    """The sync tool copies ``src``'s replica (or only ``only``'s segments) to ``dst``."""
    pattern = f"{to_hex(only.id)}/seg-*" if only else "*/seg-*"
    for path in src.replica.glob(pattern):
        there = dst.replica / path.relative_to(src.replica)
        there.parent.mkdir(exist_ok=True)
        there.write_bytes(path.read_bytes())


def test_forwarded_rows_keep_their_devices_project(tmp_path: Path) -> None:
    """A row another device recorded leaves this one again (this device's scan met a copy
    of it and lost the tie to the lower id) as its device exported it: its project is
    not hashed a second time, so every device ends with the same project for it."""
    low, high, third = _machines(tmp_path, ["name", "name", "name"])
    high.privacy = "hash"
    resp = Response(0, 0, 1, 3600, 10, 100, [5, 50])
    for machine in (low, high):
        machine.append("s.jsonl", resp.line(0) + resp.line(1))
        machine.held[0] = 2
    low.refresh()
    low.sync()
    _copy_all(low, high)
    high.sync()  # the lower id's row first
    high.refresh()  # then its own copy: a tie, the row stays the lower id's
    high.sync()
    # the third device gets the higher id's segment first, then the lower one's
    _copy_all(high, third, only=high)
    third.sync()
    _copy_all(low, third)
    third.sync()
    rows = [machine.rows() for machine in (low, high, third)]
    assert rows[0] == rows[1] == rows[2]
    ((device, project),) = [(row[0], row[5]) for row in rows[2].values()]
    assert device == low.id
    assert project == "project-0"  # the lower id's privacy: the last path component


def _indexes(ledger: Ledger) -> set[str]:
    return {name for (name,) in ledger.db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage'")}


def test_the_unexported_rows_index_exists_once_a_ledger_exports(tmp_path: Path) -> None:
    """A ledger that never syncs keeps no index of its unexported rows (every row would be
    in it, and every refresh would change it); the first export makes it, a cold load
    keeps it, and an older ledger's is dropped until it exports again."""
    (machine,) = _machines(tmp_path, ["name"])
    resp = Response(0, 0, 1, 3600, 10, 100, [5, 50])
    machine.append("s.jsonl", resp.line(0))
    machine.refresh()
    assert "usage_unsynced" not in _indexes(machine.ledger)
    assert "usage_time" in _indexes(machine.ledger)
    machine.sync()
    assert "usage_unsynced" in _indexes(machine.ledger)
    plan = machine.ledger.db.execute(
        "EXPLAIN QUERY PLAN " + exchange._EXPORT_SELECT).fetchall()
    assert any("usage_unsynced" in str(step) for step in plan)
    machine.append("s.jsonl", resp.line(1))
    machine.refresh()
    assert machine.sync().exported_rows == 1
    with machine.ledger.write():  # empty again: a load into it rebuilds what it had
        machine.ledger.db.execute("DELETE FROM usage")
    with machine.ledger.write(), machine.ledger.bulk_load():
        pass
    assert "usage_unsynced" in _indexes(machine.ledger)
    with machine.ledger.write():  # as schema 8 left every ledger
        machine.ledger.db.execute("UPDATE meta SET value = '8' WHERE key = 'schema'")
    machine.restart()
    assert "usage_unsynced" not in _indexes(machine.ledger)


def test_a_sidechain_copy_on_one_device_and_the_main_one_on_another(tmp_path: Path) -> None:
    """A row stays a sidechain only if every copy is one, whichever device imports
    which first (the flags are part of the merge every device must agree on)."""
    main, side = _machines(tmp_path, ["name", "name"])
    resp = Response(0, 0, 1, 3600, 10, 100, [5])
    main.append("s.jsonl", resp.line(0))
    side.append("agent.jsonl", resp.line(0, sidechain=True))
    for machine in (main, side):
        machine.refresh()
        machine.sync()
    _copy_all(main, side)
    _copy_all(side, main)
    for machine in (main, side):
        machine.sync()
    assert main.rows() == side.rows()
    assert [row[10] for row in main.rows().values()] == [0]


def test_an_imported_copy_merged_into_a_row_prices_it_again(tmp_path: Path) -> None:
    """The snapshot prices again only its recent weeks; an import merges rows of any age,
    so it stores the merged row's cost itself (the graph and the dashboard sum it)."""
    full, partial = _machines(tmp_path, ["name", "name"])
    resp = Response(0, 2, 0, 3600, 10, 100, [5, 5000])
    full.append("s.jsonl", resp.line(0) + resp.line(1))
    partial.append("s.jsonl", resp.line(0))  # half a stream: a log copied mid-response
    for machine in (full, partial):
        machine.refresh()
        machine.sync()
    _copy_all(full, partial)
    partial.sync()
    stored = partial.ledger.db.execute("SELECT output, cost_calc, priced FROM usage").fetchall()
    want = BOOK.cost_of(resp.model, 10, 5000, 100, 0, 300, 0, 0)
    assert stored == [(5000, pytest.approx(want), 1)]


# --- bad input ---------------------------------------------------------------------------

GOOD_MODEL = "claude-sonnet-4-5-20250929"
SEG_TS = 1_795_089_600_000  # 2026-11-20T00:00:00Z


def _good_row(n: int, owner: int, cells: dict[str, Any] | None = None) -> list[Any]:
    row: list[Any] = [n, SEG_TS + n % 1000, "claude", "session", "project", GOOD_MODEL,
                      10, 20, 0, 0, 0, 0, None, 0, to_hex(owner)]
    for name, value in (cells or {}).items():
        row[segments.COLUMNS.index(name)] = value
    return row


def _segment(device: int, seq: int = 1, rows: list[Any] | None = None, *,
             lines: list[bytes] | None = None, trailer: dict[str, Any] | None = None,
             header: dict[str, Any] | None = None, head_line: bytes | None = None,
             end_line: bytes | None = None) -> bytes:
    """A segment put together by hand: rows as JSON (or raw ``lines``), a header with
    ``header``'s fields changed, a trailer with the right checksum unless given."""
    head = {"format": segments.FORMAT, "version": segments.VERSION, "device": to_hex(device),
            "name": "elsewhere", "seq": seq, "created_ms": SEG_TS, "quota": [],
            "columns": list(segments.COLUMNS), **(header or {})}
    body = [head_line if head_line is not None else json.dumps(head).encode()]
    body += lines if lines is not None else [json.dumps(r).encode() for r in rows or []]
    text = b"\n".join(body) + b"\n"
    end = {"end": len(body) - 1, "sha256": hashlib.sha256(text).hexdigest(), **(trailer or {})}
    if end_line is None:
        end_line = json.dumps(end).encode()
    return gzip.compress(text + end_line + b"\n", mtime=0)


def _put(share: Path, device: int, seq: int, data: bytes) -> str:
    name = segments.file_name(device, seq)
    (share / name).parent.mkdir(exist_ok=True)
    (share / name).write_bytes(data)
    return name


GOOD_A, GOOD_B = 0x0100000000000001, 0x7F00000000000001  # listed first and last
BAD = 0x2000000000000000  # bad segments' devices: BAD + 1, BAD + 2, ...


def _bad_segments() -> list[tuple[str, bytes, str]]:
    """(case, segment, the words its reason must hold), each of its own device."""
    bad: list[tuple[str, bytes, str]] = []

    def add(case: str, reason: str, rows: list[Any] | None = None,
            cells: dict[str, Any] | None = None, lines: list[bytes] | None = None,
            trailer: dict[str, Any] | None = None, head_line: bytes | None = None,
            end_line: bytes | None = None, **header: Any) -> None:
        device = BAD + len(bad) + 1
        if rows is None:
            rows = [_good_row(7, device, cells)]
        bad.append((case, _segment(device, rows=rows, lines=lines, trailer=trailer,
                                   header=header, head_line=head_line, end_line=end_line),
                    reason))

    def flip(data: bytes, at: int) -> bytes:
        return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:]

    add("future version", "format version 2 is newer", version=2)
    add("no version", "no format version", version="1")
    add("not ours", "not a tokline-sync segment", format="other")
    add("other columns", "unknown columns", columns=["key"])
    add("device mismatch", "header's device is not its directory's", device=to_hex(GOOD_A))
    add("bad seq", "bad seq or created_ms", seq=-1)
    add("bad name", "bad device name", name=["x"])
    add("huge count", validate.R_COUNT, cells={"output": 10**10})
    add("huger count", validate.R_COUNT, cells={"input": 2**80})
    add("negative count", validate.R_COUNT, cells={"cache_read": -5})
    add("string count", validate.R_COUNT, cells={"input": "10"})
    add("bool count", validate.R_COUNT, cells={"output": True})
    add("float count", validate.R_COUNT, cells={"output": 1.5})
    add("negative cost", validate.R_COST, cells={"cost_usd": -0.5})
    add("string cost", validate.R_COST, cells={"cost_usd": "0.5"})
    add("huge cost", validate.R_COST, cells={"cost_usd": 1e300})
    add("future time", validate.R_TIME, cells={"ts_ms": 4_102_444_800_000})
    add("ancient time", validate.R_TIME, cells={"ts_ms": 0})
    add("key too big", "64-bit", cells={"key": 2**63})
    add("key a string", "64-bit", cells={"key": "7"})
    add("long model", "model is not a text", cells={"model": "m" * 5000})
    add("model a number", "model is not a text", cells={"model": 5})
    add("control character", "control character", cells={"session": "a\x00b"})
    add("row device", "not a device id", cells={"device": "../../etc/passwd"})
    add("short row", "a row is a list of 15 values", rows=[[1, 2, 3]])
    add("row an object", "a row is a list of 15 values", rows=[{"key": 1}])
    add("NaN cost", validate.R_COST, lines=[json.dumps(_good_row(7, BAD)).replace(
        "null", "NaN").encode()])
    add("deep row", "line 2", lines=[b"[" * 100_000 + b"]" * 100_000])
    deep = b"[" * 100_000 + b"]" * 100_000
    add("deep header", "header", head_line=deep)
    add("deep trailer", "trailer", end_line=b'{"end":' + deep + b"}")
    add("trailer count", "trailer says 5 rows", trailer={"end": 5})
    good = _segment(BAD + len(bad) + 1, rows=[_good_row(7, BAD + len(bad) + 1)])
    plain = gzip.decompress(good)
    bad.append(("checksum", gzip.compress(plain.replace(b'"project"', b'"projecu"'),
                                          mtime=0), "checksum mismatch"))
    bad.append(("bit flip", flip(good, len(good) // 2), "gzip"))
    bad.append(("not gzip", b"hello, world\n", "not a gzip stream"))
    return bad


def test_bad_segments_are_skipped_with_a_reason(tmp_path: Path, share: Path) -> None:
    me = Device(tmp_path / "me", "me")
    good = [_put(share, GOOD_A, 1, _segment(GOOD_A, 1, [_good_row(1, GOOD_A)])),
            _put(share, GOOD_B, 1, _segment(GOOD_B, 1, [_good_row(2, GOOD_B)]))]
    cases = _bad_segments()
    names = {}
    for n, (case, data, reason) in enumerate(cases, start=1):
        names[_put(share, BAD + n, 1, data)] = (case, reason)
    whole = _segment(GOOD_B, 2, [_good_row(3, GOOD_B)])
    half = _put(share, GOOD_B, 2, whole[:len(whole) // 2])  # a sync tool still copying it

    done = me.run("sync", "--target", str(share))
    lines = done.stderr.splitlines()
    assert len(lines) == len(cases), done.stderr
    for line in lines:
        assert line.startswith("tokline: skipped segment "), line
        name, reason = line[len("tokline: skipped segment "):].split(": ", 1)
        case, words = names.pop(name)
        assert words in reason, (case, reason)
    assert not names, names  # every bad one reported
    assert f"waiting for {half}" in done.stdout
    assert "imported 2 rows from 2 segments" in done.stdout
    with Ledger(me.ledger, readonly=True) as led:
        assert sorted(r.input for r in led.usage()) == [10, 10]
        assert [n for (n,) in led.db.execute(
            "SELECT name FROM sync_files WHERE rows > 0 ORDER BY name")] == good

    # next time: the whole file is imported; the bad ones are not reported again
    (share / half).write_bytes(whole)
    done = me.run("sync", "--target", str(share))
    assert done.stderr == ""
    assert "imported 1 rows from 1 segments" in done.stdout
    # a rejected file replaced by a good one (another size) is read again
    name = segments.file_name(BAD + 1, 1)
    fixed = _segment(BAD + 1, 1, [_good_row(4, BAD + 1, {"output": 99, "session": "s" * 99})])
    assert len(fixed) != (share / name).stat().st_size
    (share / name).write_bytes(fixed)
    done = me.run("sync", "--target", str(share))
    assert done.stderr == "" and "imported 1 rows from 1 segments" in done.stdout
    assert "skipped segment" in me.run("sync", "--status").stdout
    with Ledger(me.ledger, readonly=True) as led:
        assert sorted(r.output for r in led.usage()) == [20, 20, 20, 99]
        assert [tuple(r) for r in led.db.execute("PRAGMA integrity_check")] == [("ok",)]


def _import_dir(root: Path) -> exchange.Report:
    """One in-process sync of a fresh ledger with the directory ``root``."""
    with Ledger(root.parent / "in" / "ledger.sqlite3") as led:
        report, _quota = exchange.sync(led, DirectoryTarget(str(root)),
                                       local_id(led.path), "me", "name", BOOK.cost_of)
    return report


def test_bombs_and_oversized_segments_are_rejected(tmp_path: Path, share: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # limits made small so the test stays small; the checks are the same
    monkeypatch.setattr(segments, "MAX_PLAIN", 1 << 20)
    monkeypatch.setattr(segments, "MAX_COMPRESSED", 1 << 20)
    rows = [_good_row(1, BAD + 1, {"session": "x" * 1000})]
    one_member = gzip.decompress(_segment(BAD + 1, rows=rows * 2000))  # 2 MiB of rows
    _put(share, BAD + 1, 1, gzip.compress(one_member, mtime=0))
    members = gzip.compress(one_member[:600_000]) + gzip.compress(one_member[600_000:])
    _put(share, BAD + 2, 1, members)  # each member under the limit, together over it
    _put(share, BAD + 3, 1, os.urandom((1 << 20) + 1))
    _put(share, GOOD_A, 1, _segment(GOOD_A, rows=[_good_row(5, GOOD_A)]))
    report = _import_dir(share)
    assert report.imported_rows == 1
    reasons = sorted(report.rejected)
    assert [r.split(": ", 1)[1] for r in reasons] == [
        "more than 1 MiB once decompressed", "more than 1 MiB once decompressed",
        "larger than 1 MiB"]


TRICKS = ("../0123456789abcdef/seg-00000001.tlseg", "/etc/seg-00000001.tlseg",
          "0123456789abcdef/../seg-00000001.tlseg", "0123456789abcdef/sub/seg-00000001.tlseg",
          "0123456789ABCDEF/seg-00000001.tlseg", "0000000000000000/seg-00000001.tlseg",
          "8123456789abcdef/seg-00000001.tlseg", "0123456789abcdef/seg-0000001.tlseg",
          "0123456789abcdef/.seg-00000001.tlseg.77.tmp", "0123456789abcdef/seg-00000001.tlseg.tmp",
          "0123456789abcdef/seg-\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff11.tlseg",
          "0123456789abcdef/seg-00000001.sync-conflict-20261130.tlseg",
          "0123456789abcdef/seg-00000001.tlseg/", "./0123456789abcdef/seg-00000001.tlseg",
          "0123456789abcdef\\seg-00000001.tlseg", "0123456789abcdef/seg-+0000001.tlseg")


def test_names_with_path_tricks_are_never_read_or_written(tmp_path: Path, share: Path) -> None:
    for name in TRICKS:
        assert segments.parse_name(name) is None, name
    assert segments.parse_name("0123456789abcdef/seg-00000001.tlseg") == (0x0123456789ABCDEF, 1)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "seg-00000001.tlseg").write_bytes(_segment(GOOD_B, rows=[_good_row(9, GOOD_B)]))
    folder = share / to_hex(GOOD_A)
    folder.mkdir()
    # a link to a file elsewhere, a linked device folder, a folder and a pipe named like
    # segments, a temporary file: none is a segment
    (folder / "seg-00000001.tlseg").symlink_to(outside / "seg-00000001.tlseg")
    (share / to_hex(GOOD_B)).symlink_to(outside)
    (folder / "seg-00000002.tlseg").mkdir()
    os.mkfifo(folder / "seg-00000003.tlseg")
    (folder / ".seg-00000004.tlseg.12.tmp").write_bytes(b"x")
    (folder / "seg-00000005.tlseg").write_bytes(_segment(GOOD_A, 5, [_good_row(3, GOOD_A)]))
    target = DirectoryTarget(str(share))
    assert target.names() == [f"{to_hex(GOOD_A)}/seg-00000005.tlseg"]
    assert target.fetch(TRICKS) == {}
    for name in TRICKS:
        with pytest.raises(ValueError):
            target.put(name, b"")
    report = _import_dir(share)
    assert (report.imported_rows, report.rejected) == (1, [])


# --- kill -9 at random points, and syncs at the same moment ------------------------------

PEERS = (0x3000000000000001, 0x6000000000000001)


class Expected:
    """What a ledger must hold: per key, every copy met (counts, time, device); the
    merged row is each count's maximum, time and device from the copy with the largest
    total (the lower device id on ties)."""

    def __init__(self) -> None:
        self.copies: dict[int, list[tuple[int, int, int, int, int, int]]] = defaultdict(list)

    def add(self, key: int, device: int, ts: int, counts: tuple[int, int, int, int]) -> None:
        self.copies[key].append((*counts, ts, device))

    def rows(self) -> dict[int, tuple[int, ...]]:
        """key -> (device, ts, input, output, cache writes, cache reads)."""
        out = {}
        for key, copies in self.copies.items():
            best = max(copies, key=lambda c: (sum(c[:4]), -c[5]))
            out[key] = (best[5], best[4], *(max(c[i] for c in copies) for i in range(4)))
        return out


def _imported(path: Path, me: int) -> int:
    """Segments of other devices the ledger at ``path`` holds."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM sync_files WHERE device != ?",
                              (me,)).fetchone()[0])


def _ledger_rows(path: Path) -> dict[int, tuple[int, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return {row[0]: row[1:] for row in db.execute(
            "SELECT key, device, ts_ms, input, output, cache_5m + cache_1h, cache_read"
            " FROM usage")}


class Workload:
    """Rows for a device's logs and its peers' segments, round after round: new
    responses (some left half-written, finished the next round), and peers holding copies
    of some of the device's responses, longer or shorter than its own."""

    def __init__(self, device: Device, rng: random.Random,
                 put: Callable[[int, int, bytes], object],
                 peers: tuple[int, ...] = PEERS, base: int = 0) -> None:
        self.device, self.rng, self.put, self.peers = device, rng, put, peers
        self.base = base  # apart from other workloads' responses
        self.expected = Expected()
        self.pending: list[tuple[Response, Path]] = []
        self.seq = 0

    def log(self, per_round: int, device_id: int) -> None:
        rng = self.rng
        self.seq += 1
        projects = self.device.home / ".claude" / "projects" / "-home-someone-work"
        projects.mkdir(parents=True, exist_ok=True)
        for resp, path in self.pending:  # streams that went on
            with path.open("ab") as fh:
                fh.write(b"".join(resp.line(k) for k in range(1, len(resp.outputs))))
            self._note(resp, len(resp.outputs), device_id)
        self.pending = []
        path = projects / f"round-{self.seq}.jsonl"
        peer_rows: dict[int, list[list[Any]]] = {peer: [] for peer in self.peers}
        with path.open("ab") as fh:
            for i in range(per_round):
                outputs = sorted(rng.sample(range(1, 3000), rng.randint(1, 3)))
                resp = Response(self.base + self.seq * 10_000 + i, rng.randrange(3),
                                rng.randrange(3),
                                rng.randrange(86_400), rng.randint(1, 5000),
                                rng.randint(0, 50_000), outputs)
                held = len(outputs) if len(outputs) == 1 or rng.random() < 0.7 else 1
                fh.write(b"".join(resp.line(k) for k in range(held)))
                if held < len(outputs):
                    self.pending.append((resp, path))
                self._note(resp, held, device_id)
                if rng.random() < 0.2:  # a peer holds a copy, maybe a longer one
                    peer = rng.choice(self.peers)
                    k = rng.randint(1, len(outputs))
                    peer_rows[peer].append(self._row(resp, k, peer))
        for peer in self.peers:  # and rows of its own
            for i in range(per_round * 3):
                n = self.base + 5_000_000 + self.seq * 100_000 + (peer >> 56) * 1000 + i
                resp = Response(n, rng.randrange(3), rng.randrange(3), rng.randrange(86_400),
                                rng.randint(1, 5000), rng.randint(0, 50_000),
                                [rng.randint(1, 3000)])
                peer_rows[peer].append(self._row(resp, 1, peer))
            rows = peer_rows[peer]
            rng.shuffle(rows)
            data = segments.encode(peer, f"peer-{peer:x}", self.seq, SEG_TS, rows)
            self.put(peer, self.seq, data)

    def _note(self, resp: Response, held: int, device: int) -> None:
        key = key64(f"msg_{resp.n}", f"req_{resp.n}")
        self.expected.add(key, device, resp.ts + 700 * (held - 1), resp.counts(held))

    def _row(self, resp: Response, held: int, peer: int) -> list[Any]:
        inp, out, cache, read = resp.counts(held)
        key = key64(f"msg_{resp.n}", f"req_{resp.n}")
        ts = resp.ts + 700 * (held - 1)
        self.expected.add(key, peer, ts, (inp, out, cache, read))
        return [key, ts, "claude", f"session-{resp.n % 3}", "project-0", resp.model,
                inp, out, cache, 0, read, 0, None, 0, peer]


def test_kill_9_at_random_points_loses_nothing_and_counts_nothing_twice(
        tmp_path: Path, share: Path) -> None:
    seed = int(os.environ.get("TOKLINE_KILL_SEED") or time.time_ns() % 10**6)
    rng = random.Random(seed)  # the rows; the kills' timing cannot be replayed anyway
    device = Device(tmp_path / "victim", "victim")
    me = device.id
    work = Workload(device, rng, lambda peer, seq, data: _put(share, peer, seq, data))
    work.log(200, me)
    started = time.monotonic()
    device.run("sync", "--target", str(share))
    took = [time.monotonic() - started]  # whole syncs: scan, export, import, snapshot
    mine = share / to_hex(me)
    phases: dict[str, int] = defaultdict(int)
    rounds = int(os.environ.get("TOKLINE_KILL_ROUNDS") or 50)
    for number in range(rounds):
        work.log(200, me)
        exported_before = len(list(mine.iterdir()))
        imported_before = _imported(device.ledger, me)
        started = time.monotonic()
        proc = subprocess.Popen(device.argv("sync", "--target", str(share)), env=device.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                cwd=device.home)
        # every fifth sync runs to its end: the ledger grows, so do syncs (and the box
        # may be busy); the others are killed from a third of the way on, where the
        # scan ends and export, import and the snapshot follow
        whole = statistics.median(took[-3:])
        try:
            proc.wait(timeout=None if number % 5 == 4 else rng.uniform(0.3, 1.05) * whole)
            took.append(time.monotonic() - started)
            phases["finished"] += 1
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            # where it was: before its export, between it and the last import, after
            if len(list(mine.iterdir())) == exported_before:
                phases["before its export"] += 1
            elif _imported(device.ledger, me) < imported_before + len(PEERS):
                phases["exporting or importing"] += 1
            else:
                phases["after importing"] += 1
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
        assert "Traceback" not in stderr, stderr
    print(f"TOKLINE_KILL_SEED={seed}", dict(phases))  # where the kills landed (pytest -s)
    # random, but 50 rounds leave no chance of missing either part
    assert phases["before its export"] and phases["exporting or importing"], phases
    device.run("sync", "--target", str(share))
    want = work.expected.rows()
    assert _ledger_rows(device.ledger) == want, f"TOKLINE_KILL_SEED={seed}"
    # its exports were not lost either: a new device importing everything agrees
    fresh = tmp_path / "fresh" / "ledger.sqlite3"
    with Ledger(fresh) as led:
        report, _quota = exchange.sync(led, DirectoryTarget(str(share)), local_id(str(fresh)),
                                       "fresh", "name", BOOK.cost_of)
        assert not report.rejected and not report.waiting
    assert _ledger_rows(fresh) == want, f"TOKLINE_KILL_SEED={seed}"


def test_devices_syncing_at_the_same_moment(tmp_path: Path, share: Path) -> None:
    """Two devices write into the shared directory at once, and each device runs two
    syncs at once too (the background refresh's and the command's)."""
    rng = random.Random(5)
    devices = [Device(tmp_path / n, n) for n in ("one", "two")]
    works = [Workload(d, rng, lambda peer, seq, data: _put(share, peer, seq, data),
                      (PEERS[n],), n * 10**8) for n, d in enumerate(devices)]
    for _round in range(4):
        for device, work in zip(devices, works, strict=True):
            work.log(300, device.id)
        procs = [subprocess.Popen(device.argv("sync", "--target", str(share)), env=device.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  cwd=device.home) for device in devices for _twice in (1, 2)]
        for proc in procs:
            _out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0 and not err, err
    for device in devices:  # what the other exported last
        device.run("sync", "--target", str(share))
    want = Expected()
    for work in works:
        for key, copies in work.expected.copies.items():
            for copy in copies:
                want.add(key, copy[5], copy[4], copy[:4])
    for device in devices:
        assert _ledger_rows(device.ledger) == want.rows(), device.name


def test_a_rebuilt_ledger_gets_back_history_its_logs_lost(tmp_path: Path) -> None:
    """Claude Code deletes old logs; the ledger keeps their rows, and so do the segments
    this device exported.  After ``scan --rebuild`` (a new ledger from the logs left),
    the next sync brings those rows back from its own segments, as other devices have
    them: every device shows the same history again."""
    one, two = _machines(tmp_path, ["name", "name"])
    one.privacy = "hash"  # what came back is hashed already: not hashed again
    old, new = Response(0, 0, 0, 3600, 10, 100, [5, 50]), Response(1, 1, 2, 60, 7, 0, [9])
    one.append("old.jsonl", old.line(0) + old.line(1))
    one.refresh()
    one.sync()
    _copy_all(one, two)
    two.sync()
    (one.home / ".claude" / "projects" / "-home-someone-work" / "old.jsonl").unlink()
    one.append("new.jsonl", new.line(0))
    one.rebuild()  # the new ledger holds only the newer response
    assert len(one.rows()) == 1
    one.sync()
    _copy_all(one, two)
    two.sync()
    assert one.rows() == two.rows()
    assert len(one.rows()) == 2
    assert one.cells() == two.cells()
    # and should it go out again (a new target gets every row), it goes as it came back
    with one.ledger.write():
        one.ledger.db.execute("UPDATE usage SET synced = 0")
    one.sync()
    third = Machine(tmp_path, 9, "name")
    newest = max((one.replica / to_hex(one.id)).iterdir())
    (third.replica / to_hex(one.id)).mkdir()
    shutil.copyfile(newest, third.replica / to_hex(one.id) / newest.name)
    third.sync()
    assert third.rows() == two.rows()
