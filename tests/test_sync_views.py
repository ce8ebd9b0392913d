"""Issue 16, the views: what reports, devices, export, status and quota show once two
devices have synced (two HOMEs with their own XDG directories and generated corpora,
sharing a directory)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, noon_zone

GENCORPUS = FIXTURES.parent / "tools" / "gencorpus.py"


# the corpora end minutes ago: their last hours are today's, this month's, wherever it runs
ZONE = noon_zone()


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKLINE_")}
    for var in ("CLAUDE_CONFIG_DIR", "CODEX_HOME"):
        env.pop(var, None)
    env.update(HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "config"),
               XDG_DATA_HOME=str(root / "data"), XDG_STATE_HOME=str(root / "state"),
               XDG_CACHE_HOME=str(root / "cache"), TZ=ZONE)
    for var in ("TOKLINE_PURE", "TOKLINE_STRICT_BUILD"):
        if var in os.environ:
            env[var] = os.environ[var]
    return env


def tokline(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "tokline", *args], env=_env(root),
                          capture_output=True, text=True, timeout=120, check=False)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def as_json(root: Path, *args: str) -> Any:
    return json.loads(tokline(root, *args).stdout)


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two devices, laptop and desktop, each with its own corpus, synced both ways."""
    base = tmp_path_factory.mktemp("sync-views")
    shared = base / "shared"
    shared.mkdir()
    found = {}
    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    for seed, name in enumerate(("laptop", "desktop"), start=1):
        root = base / name
        # the desktop's logs end later: its Codex quota reading is the newer one
        end = (now - dt.timedelta(minutes=20 if name == "laptop" else 5)).isoformat()
        subprocess.run([sys.executable, str(GENCORPUS), "--out", str(root / "home"), "--size",
                        "1M", "--seed", str(seed), "--end", end],
                       check=True, capture_output=True, timeout=300)
        (root / "config" / "tokline").mkdir(parents=True)
        (root / "config" / "tokline" / "config.toml").write_text(
            f'[sync]\ndevice = "{name}"\ntarget = "{shared}"\n')
        found[name] = root
        # what the device counts alone, before any sync
        (root / "alone.json").write_text(tokline(root, "daily", "--json").stdout)
    for name in ("laptop", "desktop", "laptop"):
        tokline(found[name], "sync")
    return found


def _alone(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((root / "alone.json").read_text())["totals"]
    return out


def test_reports_split_by_device_and_filter_by_name(devices: dict[str, Path]) -> None:
    laptop, desktop = devices["laptop"], devices["desktop"]
    both = as_json(laptop, "daily", "--json", "--offline")
    totals = both["totals"]
    assert set(totals["devices"]) == {"laptop", "desktop"}
    for name, root in devices.items():
        assert totals["devices"][name]["total_tokens"] == _alone(root)["total_tokens"]
        assert totals["devices"][name]["requests"] == _alone(root)["requests"]
    assert totals["total_tokens"] == sum(_alone(r)["total_tokens"] for r in devices.values())
    for row in both["rows"]:  # each day's devices add up to the day
        assert sum(d["total_tokens"] for d in row["devices"].values()) == row["total_tokens"]
    only = as_json(laptop, "daily", "--json", "--offline", "--device", "desktop")["totals"]
    assert only["total_tokens"] == _alone(desktop)["total_tokens"]
    assert only["cost_usd"] == pytest.approx(_alone(desktop)["cost_usd"], rel=1e-9)
    assert set(only["devices"]) == {"desktop"}
    two = as_json(desktop, "monthly", "--json", "--offline", "--device", "desktop",
                  "--device", "laptop")["totals"]
    assert two["total_tokens"] == totals["total_tokens"]
    bad = tokline(laptop, "daily", "--device", "toaster", "--offline", ok=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "toaster" in bad.stderr and "laptop" in bad.stderr


def test_devices_lists_each_with_its_totals(devices: dict[str, Path]) -> None:
    listed = {d["device"]: d for d in as_json(devices["desktop"], "devices", "--json",
                                              "--offline")["devices"]}
    assert set(listed) == {"laptop", "desktop"}
    assert listed["desktop"]["this_device"] and not listed["laptop"]["this_device"]
    for name, root in devices.items():
        assert listed[name]["requests"] == _alone(root)["requests"]
        assert listed[name]["cost_usd"] == pytest.approx(_alone(root)["cost_usd"], abs=1e-5)
        assert listed[name]["last_sync"]
    table = tokline(devices["desktop"], "devices", "--offline").stdout
    assert "desktop (this)" in table and "laptop" in table


def test_export_by_device(devices: dict[str, Path]) -> None:
    out = as_json(devices["laptop"], "export", "--json", "--by", "device", "--offline")
    assert out["columns"][0] == "device"
    per: dict[str, int] = {}
    for row in out["rows"]:
        per[row["device"]] = per.get(row["device"], 0) + row["total_tokens"]
    for name, root in devices.items():  # export leaves synthetic rows out: they have 0 tokens
        assert per[name] == _alone(root)["total_tokens"]


def test_scope_and_local_field(devices: dict[str, Path]) -> None:
    laptop = devices["laptop"]
    snap = as_json(laptop, "status", "--json")
    local = snap["local"]["today"]
    assert local["cost_usd"] <= snap["today"]["cost_usd"]
    line = tokline(laptop, "status", "--format", "{today.cost}|{device.local.today}").stdout
    all_today, here_today = line.strip().split("|")
    assert here_today == f"${local['cost_usd']:,.2f}"
    cfg = laptop / "config" / "tokline" / "config.toml"
    saved = cfg.read_text()
    try:
        cfg.write_text(saved + 'scope = "local"\n')
        tokline(laptop, "sync")  # writes the snapshot anew under the new scope
        scoped = as_json(laptop, "status", "--json")
        assert scoped["today"]["cost_usd"] == pytest.approx(local["cost_usd"], abs=1e-6)
        month = as_json(laptop, "monthly", "--json", "--offline", "--device", "laptop")
        assert scoped["month"]["total_tokens"] == month["rows"][-1]["total_tokens"]
    finally:
        cfg.write_text(saved)
        tokline(laptop, "sync")
    assert as_json(laptop, "status", "--json")["today"]["cost_usd"] == \
        pytest.approx(float(all_today.strip("$").replace(",", "")), abs=0.006)


def test_quota_of_another_device_is_named_not_summed(devices: dict[str, Path]) -> None:
    laptop, desktop = devices["laptop"], devices["desktop"]
    windows = as_json(desktop, "quota", "--json")["windows"]
    keys = [(w["source"], w["window"]) for w in windows]
    assert len(keys) == len(set(keys))  # one reading per window, never a sum
    theirs = [w for w in as_json(laptop, "quota", "--json")["windows"] if w.get("device")]
    assert theirs  # the desktop's Codex windows are newer than the laptop's own
    for w in theirs:
        assert w["device"] == "desktop" and w["kind"] == "official"
        assert "(from desktop" in tokline(laptop, "quota").stdout


def test_background_refresh_syncs_when_due_without_local_change(
        devices: dict[str, Path]) -> None:
    """A machine where nothing happens locally still takes in the others' new rows: the
    prompt's no-change path goes on when the sync is due (statefiles.sync_due)."""
    laptop, desktop = devices["laptop"], devices["desktop"]
    project = next((desktop / "home" / ".claude" / "projects").iterdir())
    stamp = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    with (project / "later.jsonl").open("w") as fh:
        fh.write(json.dumps({"type": "assistant", "timestamp": stamp, "sessionId": "later",
                             "requestId": "req_later", "message": {
                                 "id": "msg_later", "model": "claude-sonnet-4-5-20250929",
                                 "usage": {"input_tokens": 123_456, "output_tokens": 7}}})
                 + "\n")
    tokline(desktop, "sync")
    before = as_json(laptop, "daily", "--json", "--offline")["totals"]["total_tokens"]
    due = laptop / "state" / "tokline" / "sync.due"
    due.write_text(str(time.time() + 3600))  # not due: the no-change path stops there
    tokline(laptop, "refresh")
    assert as_json(laptop, "daily", "--json", "--offline")["totals"]["total_tokens"] == before
    due.write_text(str(time.time() - 1))
    tokline(laptop, "refresh")
    after = as_json(laptop, "daily", "--json", "--offline")["totals"]["total_tokens"]
    assert after == before + 123_463
    assert float(due.read_text()) > time.time()  # the next one is an interval away
