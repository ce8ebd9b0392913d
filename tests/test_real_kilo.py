"""Issue 20: the real Kilo CLI (an OpenCode fork, pinned in tests/real_clients.py) writes
its ``kilo.db`` against the loopback Anthropic stand-in (tests/standins.py), and tokline
counts exactly what was served, as tests/test_real_clients_more.py does for OpenCode.

Kilo is pointed at the stand-in by a ``kilo.json`` provider whose ``options.baseURL`` is
the stand-in, with a fake key and no login; ``enabled_providers`` keeps Kilo's own gateway
(which would fetch its model list from api.kilo.ai) out, KILO_TELEMETRY_LEVEL=off its
PostHog telemetry.  Nothing leaves 127.0.0.1: the proxy is the stand-in, which refuses
(and records) any CONNECT elsewhere.  Without npm or the registry, this skips.

Kilo's database is read by tokline's pure-Python SQLite reader only: the scanner twins
change nothing here, so this runs in the compiled leg alone (a Kilo run takes seconds).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client_runs import (
    Row,
    base_env,
    client,
    ledger_rows,
    no_escape,
    run,
    served_cost,
    session_cost,
)
from real_clients import CLIENTS
from standins import AnthropicStandIn, Reply, Served, anthropic_usage

pytestmark = pytest.mark.scanner_independent

MODEL = "claude-sonnet-4-5"


@pytest.fixture
def kilo_cli() -> tuple[str, Path]:
    version = CLIENTS["kilo"][1][0]
    return version, client("kilo", version)


@pytest.fixture
def anthropic() -> Iterator[AnthropicStandIn]:
    with AnthropicStandIn(Reply(anthropic_usage(3, 5), text="ok")) as stand:
        stand.main_model = MODEL
        yield stand


def _run(kilo_cli: tuple[str, Path], home: Path, stand: AnthropicStandIn, label: str,
         *args: str) -> list[dict[str, Any]]:
    version, exe = kilo_cli
    config = home / ".config" / "kilo"
    config.mkdir(parents=True, exist_ok=True)
    (config / "kilo.json").write_text(json.dumps({
        "$schema": "https://app.kilo.ai/config.json", "autoupdate": False,
        "share": "disabled", "enabled_providers": ["anthropic"],
        "permission": {"bash": "allow"},
        "provider": {"anthropic": {"options": {"baseURL": f"{stand.url}/v1",
                                               "apiKey": "sk-stand-in"}}}}))
    env = dict(base_env(home, stand), KILO_DISABLE_AUTOUPDATE="1",
               KILO_DISABLE_MODELS_FETCH="1", KILO_DISABLE_DEFAULT_PLUGINS="1",
               KILO_DISABLE_LSP_DOWNLOAD="1", KILO_DISABLE_SHARE="1",
               KILO_TELEMETRY_LEVEL="off", KILO_DISABLE_SESSION_INGEST="1",
               KILO_DISABLE_PRESENCE="1")
    # --title: no title request to a small model
    out = run(f"kilo {version} {label}",
              [str(exe), "run", "-m", f"anthropic/{MODEL}", "--format", "json", "--title",
               "stand-in", *args, "hi"], env, home / "work")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _stored(home: Path) -> list[dict[str, Any]]:
    """Every assistant message with tokens in Kilo's database."""
    db = home / ".local" / "share" / "kilo" / "kilo.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        found = [dict(json.loads(data), id=ident, sessionID=session)
                 for ident, session, data in conn.execute(
                     "SELECT id, session_id, data FROM message")]
    return [m for m in found if m.get("role") == "assistant" and m.get("tokens")]


def _row(s: Served) -> Row:
    # One cache.write, no 5m/1h split (as OpenCode): these usages write 5-minute entries.
    u = s.usage
    return (s.model, u["input_tokens"], u["output_tokens"], u["cache_creation_input_tokens"],
            0, u["cache_read_input_tokens"])


def test_kilo_tool_loop_then_fork(kilo_cli: tuple[str, Path], tmp_path: Path,
                                  anthropic: AnthropicStandIn) -> None:
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    anthropic.script += [
        Reply(anthropic_usage(12, 34, read=5600, write_5m=780), text="running it",
              tool={"name": "bash", "input": {"command": "echo hi", "description": "print hi"}}),
        Reply(anthropic_usage(13, 35, read=6600, write_5m=790), text="it printed hi"),
        Reply(anthropic_usage(22, 41, read=7500, write_5m=510), text="forked"),
    ]
    events = _run(kilo_cli, home, anthropic, "tool loop")
    assert any(e.get("type") == "tool_use" for e in events), events
    served = [s for s in anthropic.served if not s.side]
    assert len(served) == 2, anthropic.seen
    # one stored message per request, each with Kilo's own cost (which tokline uses)
    stored = _stored(home)
    assert len(stored) == 2 and all(m["cost"] > 0 for m in stored)
    assert ledger_rows(home, "kilo") == sorted(map(_row, served))
    # `run --continue --fork`: the session is copied into a new one (new ids, the
    # original's times and counts), which the prompt continues
    _run(kilo_cli, home, anthropic, "fork", "--continue", "--fork")
    served = [s for s in anthropic.served if not s.side]
    assert len(served) == 3, anthropic.seen
    stored = _stored(home)
    assert len(stored) == 5 and len({m["sessionID"] for m in stored}) == 2
    want = sorted(map(_row, served))
    assert ledger_rows(home, "kilo") == want
    cost, requests = session_cost(home)
    assert requests == len(want)
    assert cost == pytest.approx(served_cost(want), rel=1e-3)
    no_escape(anthropic)
