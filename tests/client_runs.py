"""Running a real client in a private HOME against a stand-in, then tokline over it.

The parts of tests/test_real_clients.py's harness that every client shares, for
tests/test_real_clients_more.py (Gemini CLI, OpenCode, Copilot CLI): the sandboxed
environment (its proxy is the stand-in, which refuses anything aimed elsewhere), a timed
client run, ``tokline scan`` in the sandbox, the ledger's per-request rows and a cost
computed straight from the bundled price table.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from real_clients import Unavailable, binary
from standins import StandIn

from tokline.ledger.store import Ledger

TIMINGS: list[tuple[str, float, float]] = []  # label, wall seconds, CPU seconds

Row = tuple[str, int, int, int, int, int]  # model, input, output, cache 5m, cache 1h, read


def prices() -> dict[str, Any]:
    data = resources.files("tokline.data").joinpath("prices.json").read_text()
    models: dict[str, Any] = json.loads(data)["models"]
    return models


def client(name: str, version: str) -> Path:
    """The pinned client, or a skip that says why it cannot be had."""
    try:
        return binary(name, version)
    except Unavailable as exc:
        pytest.skip(f"{name} {version} unavailable: {exc}")


def base_env(home: Path, stand: StandIn) -> dict[str, str]:
    proxy = stand.url
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        # Anything not aimed at the stand-in goes to it as a CONNECT and is refused.
        "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "ALL_PROXY": proxy,
        "https_proxy": proxy, "http_proxy": proxy, "all_proxy": proxy,
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    }


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run(label: str, argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run a client; its wall and CPU seconds go to TIMINGS (the CPU time tells what a
    run costs on a busy machine, where the wall time says little)."""
    start, cpu = time.monotonic(), _cpu()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL, check=False)
    TIMINGS.append((label, time.monotonic() - start, _cpu() - cpu))
    assert done.returncode == 0, \
        f"{label}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


# Where the clients look for their logs, when set: tokline must find them under HOME.
_CLIENT_VARS = ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_DATA_DIR", "GEMINI_CLI_HOME",
                "OPENCODE_DATA_DIR", "COPILOT_HOME", "KILO_DB", "TZ")


def tokline(home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TOKLINE_") and k not in _CLIENT_VARS}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local" / "share"),
               XDG_STATE_HOME=str(home / ".local" / "state"),
               XDG_CACHE_HOME=str(home / ".cache"), TZ="UTC",
               TOKLINE_LEDGER=str(home / "ledger.sqlite3"))
    for var in ("TOKLINE_PURE", "TOKLINE_STRICT_BUILD"):
        if var in os.environ:
            env[var] = os.environ[var]
    start, cpu = time.monotonic(), _cpu()
    done = subprocess.run([sys.executable, "-m", "tokline", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    TIMINGS.append((f"tokline {args[0]}", time.monotonic() - start, _cpu() - cpu))
    assert done.returncode == 0, done.stderr
    return done.stdout


def ledger_rows(home: Path, source: str) -> list[Row]:
    """``tokline scan`` in the sandbox, then the source's rows, one per request."""
    tokline(home, "scan", "-q")
    with Ledger(home / "ledger.sqlite3", readonly=True) as led:
        return sorted((r.model, r.input, r.output, r.cache_5m, r.cache_1h, r.cache_read)
                      for r in led.usage(sources=[source]))


def session_cost(home: Path) -> tuple[float, int]:
    out = json.loads(tokline(home, "session", "--json"))
    assert not out["totals"]["unpriced"], out["unpriced_models"]
    return float(out["totals"]["cost_usd"]), int(out["totals"]["requests"])


def price_key(model: str) -> str:
    """The table's name for a logged model: as it stands, or with the dots of a version
    as dashes (Copilot's ``claude-sonnet-4.5``; formats.md §6.2)."""
    table = prices()
    return model if model in table else model.replace(".", "-")


def served_cost(rows: list[Row]) -> float:
    """The cost of served rows, computed here from the bundled table (not by tokline's
    pricing code): above a model's tier threshold (the whole prompt, cache included)
    every category at the tier's rate (formats.md §6.3)."""
    table = prices()
    cost = 0.0
    for model, inp, out, w5, w1, read in rows:
        p = table[price_key(model)]
        tier = p.get("tier")
        if tier is not None and inp + w5 + w1 + read > tier["threshold"]:
            p = dict(p, **tier)
        cost += inp * p["input"] + out * p["output"] + read * p["cache_read"]
        if w5 or w1:
            cost += w5 * p["cache_write_5m"] + w1 * p["cache_write_1h"]
    return cost


def no_escape(stand: StandIn, allowed: frozenset[str] = frozenset()) -> None:
    """Nothing tried to leave the machine through the proxy, beyond ``allowed`` hosts."""
    tried = {path for method, path in stand.unknown if method == "CONNECT"}
    assert tried <= allowed, stand.unknown
