"""Issue 20: the real Qwen Code, Pi and Kimi Code write their logs against a loopback
stand-in of an OpenAI-compatible chat-completions API (tests/standins.py), and tokline
counts exactly what was served.

As in tests/test_real_clients_more.py: each scenario chooses the usage of every
response, runs the pinned client (tests/real_clients.py; Node 24 under both) in a
private HOME, runs ``tokline scan`` there, and compares the ledger's rows with what the
stand-in served, per request.  Nothing leaves 127.0.0.1: the proxy is the stand-in,
which refuses (and records) any CONNECT elsewhere.  Without npm or the registry, these
skip.

How each client is pointed at the stand-in with a fake key:
* Qwen Code: ``--auth-type openai`` with OPENAI_BASE_URL/OPENAI_API_KEY, usage
  statistics and telemetry off in ``~/.qwen/settings.json`` (``--bare`` would ignore
  that file and report to Aliyun's RUM endpoint, which the proxy refuses).
* Pi: a provider of its own in ``~/.pi/agent/models.json`` (``openai-completions``,
  ``baseUrl`` the stand-in), ``--offline``.
* Kimi Code: a ``kimi`` provider (Moonshot's OpenAI-compatible API) in
  ``~/.kimi-code/config.toml`` whose ``base_url`` is the stand-in, and a model alias for
  it; KIMI_DISABLE_TELEMETRY (else it posts to telemetry-logs.kimi.com) and
  KIMI_CODE_NO_AUTO_UPDATE.
* Kimi CLI (Python), only when TOKLINE_KIMI_CLI names its ``kimi``: the same provider in
  ``~/.kimi/config.toml``, ``telemetry = false``.  It is not installed by ``.ci/run``: it
  needs Python 3.12 or later (3.13 here: 3.12.1 crashes at start), some 60 packages,
  and its last release (1.52.0) is a stub that only points to Kimi Code, so 1.51.0 is
  the one to run (``pip install kimi-cli==1.51.0`` in a Python 3.13 venv).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client_runs import (
    TIMINGS,
    Row,
    base_env,
    client,
    ledger_rows,
    no_escape,
    run,
    served_cost,
    session_cost,
    tokline,
)
from real_clients import CLIENTS, path_for
from standins import ChatCompletionsStandIn, Reply, Served, chat_usage

from tokline.ledger.store import Ledger


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    return home


@pytest.fixture(scope="module", autouse=True)
def _timings() -> Iterator[None]:
    """How long each client run took, and tokline's runs together (pytest -s)."""
    yield
    ours = [(wall, cpu) for label, wall, cpu in TIMINGS if label.startswith("tokline ")]
    for label, wall, cpu in TIMINGS:
        if not label.startswith("tokline "):
            print(f"{label}: {wall:.2f}s (CPU {cpu:.2f}s)")
    print(f"tokline, {len(ours)} runs: {sum(w for w, _ in ours):.2f}s "
          f"(CPU {sum(c for _, c in ours):.2f}s)")


def _real(stand: ChatCompletionsStandIn) -> list[Served]:
    return [s for s in stand.served if not s.side]


def _row(s: Served) -> Row:
    # chat completions: cached tokens inside the prompt, reasoning inside the completion
    u = s.usage
    cached = u["prompt_tokens_details"]["cached_tokens"]
    return (s.model, u["prompt_tokens"] - cached, u["completion_tokens"], 0, 0, cached)


def _records(home: Path, pattern: str) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(home.rglob(pattern))
            for line in path.read_text().splitlines() if line.strip()]


# Qwen Code, Pi and Kimi Code write no Claude or Codex log: the compiled
# scanners and their twins never read these files, and the key and writer twins
# they do use are held to the compiled ones by tests/test_incremental.py and
# tests/test_writer.py.  So these run in the compiled leg of .ci/run only.
pytestmark = pytest.mark.scanner_independent

# ---------------------------------------------------------------------------- Qwen Code

QWEN_PRICED = "glm-5.1"  # a model the bundled table prices (Qwen's own have no price)
QWEN_UNPRICED = "qwen3-coder-plus"


@pytest.fixture(params=CLIENTS["qwen"][1])
def qwen(request: pytest.FixtureRequest) -> tuple[str, Path]:
    version = str(request.param)
    return version, client("qwen", version)


def _qwen_run(qwen: tuple[str, Path], home: Path, stand: ChatCompletionsStandIn, label: str,
              model: str, *args: str, prompt: str = "hi", memory: bool = False
              ) -> dict[str, Any]:
    """One headless run.  ``memory``: Qwen's managed auto-memory, whose extractor asks
    the same model in the background after a turn (off unless a test wants it: its
    calls would take replies scripted for the conversation)."""
    version, exe = qwen
    settings = home / ".qwen" / "settings.json"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(json.dumps({
        "security": {"auth": {"selectedType": "openai"}},
        "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
        "memory": {"enableManagedAutoMemory": memory}}))
    env = dict(base_env(home, stand), PATH=path_for("qwen"), OPENAI_API_KEY="sk-stand-in",
               OPENAI_BASE_URL=f"{stand.url}/v1", OPENAI_MODEL=model,
               QWEN_CODE_SUPPRESS_YOLO_WARNING="1")
    out = run(f"qwen {version} {label}",
              [str(exe), "-p", prompt, "--auth-type", "openai", "-m", model, "--yolo",
               "-o", "json", *args], env, home / "work")
    events: list[dict[str, Any]] = json.loads(out[out.index("["):])
    return events[-1]  # the result


def _qwen_calls(home: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The api_response telemetry events and the assistant records with usage, of the
    sessions (fork copies left out)."""
    records = [r for r in _records(home / ".qwen" / "projects", "*.jsonl")
               if "forkedFrom" not in r]
    telemetry = [r["systemPayload"]["uiEvent"] for r in records
                 if r.get("subtype") == "ui_telemetry"
                 and r["systemPayload"]["uiEvent"].get("event.name") == "qwen-code.api_response"]
    return telemetry, [r for r in records if r["type"] == "assistant" and r.get("usageMetadata")]


def test_qwen_tool_loop_both_copies_of_each_call_counted_once(
        qwen: tuple[str, Path], sandbox: Path) -> None:
    with ChatCompletionsStandIn(Reply(chat_usage(100, 5), text="ok")) as chat:
        chat.main_model = QWEN_PRICED
        chat.script += [
            Reply(chat_usage(4200, 61, cached=3072, reasoning=20), text="running it",
                  tool={"name": "run_shell_command", "input": {"command": "echo hi"}}),
            Reply(chat_usage(5200, 71, cached=4096), text="it printed hi"),
        ]
        result = _qwen_run(qwen, sandbox, chat, "tool loop", QWEN_PRICED, prompt="run echo hi")
        assert result.get("result") == "it printed hi", result
        real = _real(chat)
        assert len(real) == 2 and all(s.stream for s in real), chat.seen
        assert "hi" in json.dumps(real[1].body.get("messages", [])[-1])
        no_escape(chat)
    # Qwen logs every call twice: its telemetry event (with the response id) and the
    # assistant record's usageMetadata, the same counts.
    telemetry, assistant = _qwen_calls(sandbox)
    assert [t["response_id"] for t in telemetry] == [s.message_id for s in real]
    assert [(a["usageMetadata"]["promptTokenCount"], a["usageMetadata"]["thoughtsTokenCount"])
            for a in assistant] == [(4200, 20), (5200, 0)]
    want = sorted(map(_row, real))
    assert want == [(QWEN_PRICED, 1104, 71, 0, 0, 4096), (QWEN_PRICED, 1128, 61, 0, 0, 3072)]
    assert ledger_rows(sandbox, "qwen") == want
    cost, requests = session_cost(sandbox)
    assert requests == 2 and cost == pytest.approx(served_cost(want), rel=1e-3)


def test_qwen_continue_and_fork_unpriced(qwen: tuple[str, Path], sandbox: Path) -> None:
    # A session, --continue (appends to its file), then --continue --fork-session: a new
    # file that copies the session's records, each stamped forkedFrom, and goes on.
    with ChatCompletionsStandIn(Reply(chat_usage(100, 5), text="ok")) as chat:
        chat.main_model = QWEN_UNPRICED
        chat.script += [Reply(chat_usage(3000, 40, cached=1024), text="first"),
                        Reply(chat_usage(3300, 44, cached=2048), text="second"),
                        Reply(chat_usage(3600, 48, cached=3072), text="forked")]
        _qwen_run(qwen, sandbox, chat, "first", QWEN_UNPRICED)
        # scans between the runs: the session is read again from where it was left
        assert ledger_rows(sandbox, "qwen") == sorted(map(_row, _real(chat)))
        _qwen_run(qwen, sandbox, chat, "continue", QWEN_UNPRICED, "--continue")
        assert ledger_rows(sandbox, "qwen") == sorted(map(_row, _real(chat)))
        _qwen_run(qwen, sandbox, chat, "fork", QWEN_UNPRICED, "--continue", "--fork-session")
        real = _real(chat)
        assert len(real) == 3 and "second" in json.dumps(real[2].body.get("messages"))
        no_escape(chat)
    chats = sorted((sandbox / ".qwen" / "projects").rglob("chats/*.jsonl"))
    assert len(chats) == 2
    copies = [r for r in _records(sandbox / ".qwen" / "projects", "*.jsonl") if "forkedFrom" in r]
    assert any(r["type"] == "assistant" and r.get("usageMetadata") for r in copies)
    want = sorted(map(_row, real))
    assert ledger_rows(sandbox, "qwen") == want
    # Qwen's own models have no price: their tokens count, their cost is unknown.
    report = json.loads(tokline(sandbox, "session", "--json"))
    assert report["totals"]["unpriced"] and report["totals"]["requests"] == 3
    assert report["totals"]["total_tokens"] == sum(s.usage["total_tokens"] for s in real)


def test_qwen_background_calls_counted_from_telemetry(qwen: tuple[str, Path],
                                                     sandbox: Path) -> None:
    # The auto-memory extractor's calls (after a turn, same model) have no assistant
    # record in the session: only their telemetry event says what they used.
    with ChatCompletionsStandIn(Reply(chat_usage(2000, 30, cached=512), text="ok")) as chat:
        chat.main_model = QWEN_UNPRICED
        _qwen_run(qwen, sandbox, chat, "memory on", QWEN_UNPRICED, memory=True)
        served = list(chat.served)
        no_escape(chat)
    telemetry, assistant = _qwen_calls(sandbox)
    background = [t for t in telemetry if "memory-extractor" in t.get("prompt_id", "")]
    assert background and len(assistant) == len(served) - len(background), telemetry
    assert ledger_rows(sandbox, "qwen") == sorted(map(_row, served))


# ---------------------------------------------------------------------------- Pi

PI_MODEL = "stand-model"
# Pi's own prices for it (USD per million tokens): it logs each call's cost from them.
PI_COST = {"input": 1.0, "output": 2.0, "cacheRead": 0.5, "cacheWrite": 0.0}
PI_PRICED = "kimi-k2.6"  # no prices of Pi's: tokline's table prices it


@pytest.fixture(params=[("pi", v) for v in CLIENTS["pi"][1]]
                + [("pi-mono", v) for v in CLIENTS["pi-mono"][1]], ids=lambda p: "-".join(p))
def pi(request: pytest.FixtureRequest) -> tuple[str, str, Path]:
    name, version = request.param
    return name, version, client(name, version)


def _pi_run(pi: tuple[str, str, Path], home: Path, stand: ChatCompletionsStandIn, label: str,
            model: str, *args: str) -> str:
    name, version, exe = pi
    agent = home / ".pi" / "agent"
    agent.mkdir(parents=True, exist_ok=True)
    (agent / "models.json").write_text(json.dumps({"providers": {"stand": {
        "baseUrl": f"{stand.url}/v1", "api": "openai-completions", "apiKey": "sk-stand-in",
        "compat": {"supportsDeveloperRole": False, "supportsReasoningEffort": False},
        "models": [{"id": PI_MODEL, "cost": PI_COST}, {"id": PI_PRICED}]}}}))
    env = dict(base_env(home, stand), PATH=path_for(name), PI_OFFLINE="1")
    return run(f"{name} {version} {label}",
               [str(exe), "--provider", "stand", "--model", model, "--offline", *args],
               env, home / "work")


def _pi_cost(row: Row) -> float:
    _, inp, out, _, _, read = row
    return (inp * PI_COST["input"] + out * PI_COST["output"]
            + read * PI_COST["cacheRead"]) / 1e6


def test_pi_tool_loop_and_fork_counted_once(pi: tuple[str, str, Path], sandbox: Path) -> None:
    with ChatCompletionsStandIn(Reply(chat_usage(100, 5), text="ok")) as chat:
        chat.main_model = PI_MODEL
        chat.script += [
            Reply(chat_usage(4200, 61, cached=3072, reasoning=20), text="running it",
                  tool={"name": "bash", "input": {"command": "echo hi"}}),
            Reply(chat_usage(5200, 71, cached=4096), text="it printed hi"),
            Reply(chat_usage(6200, 81, cached=5000), text="forked answer"),
        ]
        assert "it printed hi" in _pi_run(pi, sandbox, chat, "tool loop", PI_MODEL,
                                          "-p", "run echo hi")
        assert len(_real(chat)) == 2, chat.seen
        # a scan before the fork: its copies arrive after their originals were counted
        assert ledger_rows(sandbox, "pi") == sorted(map(_row, _real(chat)))
        (session,) = (sandbox / ".pi" / "agent" / "sessions").rglob("*.jsonl")
        _pi_run(pi, sandbox, chat, "fork", PI_MODEL, "--fork", str(session), "-p", "again")
        real = _real(chat)
        assert len(real) == 3 and "it printed hi" in json.dumps(real[2].body.get("messages"))
        no_escape(chat)
    # the fork's file starts with a copy of every entry of the session, usage included
    files = sorted((sandbox / ".pi" / "agent" / "sessions").rglob("*.jsonl"))
    assert len(files) == 2
    usage = [r["message"]["usage"] for r in _records(sandbox / ".pi", "*.jsonl")
             if r.get("type") == "message" and r["message"].get("role") == "assistant"]
    assert len(usage) == 5
    want = sorted(map(_row, real))
    assert ledger_rows(sandbox, "pi") == want
    # each row's cost is the one pi logged from its own prices
    with Ledger(sandbox / "ledger.sqlite3", readonly=True) as led:
        logged = sorted((r.input, r.cost_usd) for r in led.usage(sources=["pi"]))
    assert [cost for _, cost in logged] == pytest.approx(
        [_pi_cost(row) for row in sorted(want, key=lambda r: r[1])], rel=1e-9)
    cost, requests = session_cost(sandbox)
    assert requests == 3 and cost == pytest.approx(sum(map(_pi_cost, want)), rel=1e-6)


def test_pi_without_its_own_price_priced_by_tokline(pi: tuple[str, str, Path],
                                                    sandbox: Path) -> None:
    with ChatCompletionsStandIn(Reply(chat_usage(100, 5), text="ok")) as chat:
        chat.main_model = PI_PRICED
        chat.script.append(Reply(chat_usage(9000, 120, cached=8192), text="hello"))
        _pi_run(pi, sandbox, chat, "tokline's price", PI_PRICED, "-p", "hi")
        real = _real(chat)
        assert len(real) == 1, chat.seen
        no_escape(chat)
    want = sorted(map(_row, real))
    assert ledger_rows(sandbox, "pi") == want
    with Ledger(sandbox / "ledger.sqlite3", readonly=True) as led:
        assert [r.cost_usd for r in led.usage(sources=["pi"])] == [None]  # pi logged 0
    cost, requests = session_cost(sandbox)
    assert requests == 1 and cost == pytest.approx(served_cost(want), rel=1e-3)


# ---------------------------------------------------------------------------- Kimi Code

KIMI_ALIAS = "stand/kimi-k2.6"  # what the wire names: config.toml maps it to the model
KIMI_MODEL = "kimi-k2.6"


@pytest.fixture(params=CLIENTS["kimi"][1])
def kimi(request: pytest.FixtureRequest) -> tuple[str, Path]:
    version = str(request.param)
    return version, client("kimi", version)


def _kimi_run(kimi: tuple[str, Path], home: Path, stand: ChatCompletionsStandIn, label: str,
              *args: str) -> str:
    version, exe = kimi
    config = home / ".kimi-code" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(f"""default_model = "{KIMI_ALIAS}"
[providers.stand]
type = "kimi"
base_url = "{stand.url}/v1"
api_key = "sk-stand-in"
[models."{KIMI_ALIAS}"]
provider = "stand"
model = "{KIMI_MODEL}"
max_context_size = 262144
""")
    env = dict(base_env(home, stand), PATH=path_for("kimi"), KIMI_DISABLE_TELEMETRY="1",
               KIMI_CODE_NO_AUTO_UPDATE="1")
    return run(f"kimi {version} {label}", [str(exe), *args], env, home / "work")


def test_kimi_code_subagent_and_fork(kimi: tuple[str, Path], sandbox: Path) -> None:
    # The main agent delegates to a subagent (its own wire), then answers; `kimi fork`
    # copies both wires (original times) and marks them `forked`; the fork goes on.
    with ChatCompletionsStandIn(Reply(chat_usage(100, 5), text="ok")) as chat:
        chat.main_model = KIMI_MODEL
        chat.script += [
            Reply(chat_usage(4200, 61, cached=3072, reasoning=20), text="delegating",
                  tool={"name": "Agent", "input": {"description": "say hi", "prompt": "say hi",
                                                   "subagent_type": "explore"}}),
            Reply(chat_usage(3100, 21, cached=1024), text="sub says hi"),
            Reply(chat_usage(5200, 71, cached=4096), text="done"),
            Reply(chat_usage(6200, 81, cached=5000), text="forked answer"),
        ]
        out = _kimi_run(kimi, sandbox, chat, "subagent", "-p", "delegate",
                        "--output-format", "stream-json")
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        (session,) = [e["session_id"] for e in events if e.get("type") == "session.resume_hint"]
        assert len(_real(chat)) == 3, chat.seen
        assert ledger_rows(sandbox, "kimi") == sorted(map(_row, _real(chat)))
        forked = _kimi_run(kimi, sandbox, chat, "fork", "fork", session, "--yes")
        (new,) = set(re.findall(r"session_[0-9a-f-]{36}", forked)) - {session}
        _kimi_run(kimi, sandbox, chat, "in the fork", "-S", new, "-p", "again")
        real = _real(chat)
        assert len(real) == 4 and "done" in json.dumps(real[3].body.get("messages"))
        no_escape(chat)
    wires = sorted((sandbox / ".kimi-code" / "sessions").rglob("agents/*/wire.jsonl"))
    assert len(wires) == 4  # main and subagent, in the session and in its fork
    lines = _records(sandbox / ".kimi-code" / "sessions", "wire.jsonl")
    assert sum(1 for r in lines if r["type"] == "usage.record") == 4 + 3
    assert sum(1 for r in lines if r["type"] == "forked") == 2
    want = sorted(map(_row, real))
    assert ledger_rows(sandbox, "kimi") == want
    cost, requests = session_cost(sandbox)
    assert requests == 4 and cost == pytest.approx(served_cost(want), rel=1e-3)


# ---------------------------------------------------------------------------- Kimi CLI


def test_kimi_cli_subagent_wire_counted_once(sandbox: Path) -> None:
    exe = os.environ.get("TOKLINE_KIMI_CLI")
    if not exe:
        pytest.skip("TOKLINE_KIMI_CLI does not name a Kimi CLI (kimi-cli 1.51.0) executable")
    # The main agent delegates to a subagent, whose wire is under subagents/ and whose
    # StatusUpdates the main wire repeats inside SubagentEvent: each call once.
    with ChatCompletionsStandIn(Reply(chat_usage(100, 5), text="ok")) as chat:
        chat.main_model = KIMI_MODEL
        chat.script += [
            Reply(chat_usage(4200, 61, cached=3072), text="delegating",
                  tool={"name": "Agent", "input": {"description": "say hi", "prompt": "say hi",
                                                   "subagent_type": "explore"}}),
            Reply(chat_usage(3100, 21, cached=1024), text="sub says hi")]
        share = sandbox / ".kimi"
        share.mkdir()
        (share / "config.toml").write_text(f"""default_model = "k26"
telemetry = false
[models.k26]
provider = "stand"
model = "{KIMI_MODEL}"
max_context_size = 262144
[providers.stand]
type = "kimi"
base_url = "{chat.url}/v1"
api_key = "sk-stand-in"
""")
        run("kimi-cli subagent", [exe, "--print", "-p", "delegate", "--yolo",
                                  "--output-format", "stream-json"],
            base_env(sandbox, chat), sandbox / "work")
        real = _real(chat)
        no_escape(chat)
    assert len(real) >= 3, chat.seen
    sessions = sandbox / ".kimi" / "sessions"
    assert len(list(sessions.rglob("subagents/*/wire.jsonl"))) == 1
    mirrored = [r for r in _records(sessions, "wire.jsonl")
                if r.get("message", {}).get("type") == "SubagentEvent"
                and "token_usage" in json.dumps(r)]
    assert mirrored
    rows = ledger_rows(sandbox, "kimi")
    assert rows == sorted(map(_row, real))
    with Ledger(sandbox / "ledger.sqlite3", readonly=True) as led:
        assert {r.project for r in led.usage(sources=["kimi"])} == {str(sandbox / "work")}
