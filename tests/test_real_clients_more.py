"""Issue 15: the real Gemini CLI, OpenCode and Copilot CLI write their logs against
loopback stand-ins (tests/standins.py), and tokline counts exactly what was served.

As in tests/test_real_clients.py (Claude Code, Codex): each scenario chooses the usage
of every response, runs the pinned client (tests/real_clients.py) in a private HOME,
runs ``tokline scan`` there, and compares the ledger's rows with what the stand-in
served, per request (tokens exactly, by formats.md's counting rules), and the cost with
one computed straight from the bundled price table (within 0.1 %).  Nothing leaves
127.0.0.1: telemetry and updates are off, and the proxy is the stand-in, which refuses
(and records) any CONNECT elsewhere.  Without npm or the registry, these skip.

How each client is pointed at a stand-in with a fake key:
* Gemini CLI: GEMINI_API_KEY + GOOGLE_GEMINI_BASE_URL (http allowed for 127.0.0.1);
  ``models/<model>:streamGenerateContent?alt=sse``.
* OpenCode: an ``opencode.json`` provider whose ``options.baseURL`` is the stand-in
  (the bundled anthropic, openai = Responses, and openai-compatible = chat completions
  SDKs), models.dev fetch and plugin installs off.
* Copilot CLI: its BYOK mode, COPILOT_PROVIDER_BASE_URL/TYPE/API_KEY with
  COPILOT_OFFLINE=true: no GitHub login, no token exchange, no telemetry.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
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
    prices,
    run,
    served_cost,
    session_cost,
)
from real_clients import CLIENTS
from standins import (
    AnthropicStandIn,
    ChatCompletionsStandIn,
    GeminiStandIn,
    Reply,
    ResponsesStandIn,
    Served,
    StandIn,
    anthropic_usage,
    chat_usage,
    gemini_usage,
    openai_usage,
)


def _current(name: str) -> pytest.MarkDecorator:
    """Run a scenario on the current pin only: the older one's format is covered by the
    scenarios that run on both, and each run costs seconds (the file keeps well under
    the 3 minutes a leg allows)."""
    return pytest.mark.parametrize(name, CLIENTS[name][1][:1], indirect=True)


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    return home


def _real(stand: StandIn) -> list[Served]:
    """The scripted conversation's requests (not a client's side calls)."""
    return [s for s in stand.served if not s.side]


def _check_cost(home: Path, want: list[Row]) -> None:
    cost, requests = session_cost(home)
    assert requests == len(want)
    assert cost == pytest.approx(served_cost(want), rel=1e-3)


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


# Gemini CLI, OpenCode and Copilot CLI write no Claude or Codex log: the compiled
# scanners and their twins never read these files, and the key and writer twins
# they do use are held to the compiled ones by tests/test_incremental.py and
# tests/test_writer.py.  So these run in the compiled leg of .ci/run only.
pytestmark = pytest.mark.scanner_independent

# ---------------------------------------------------------------------------- Gemini

GEMINI_MODEL = "gemini-2.5-pro"


@pytest.fixture(params=CLIENTS["gemini"][1])
def gemini(request: pytest.FixtureRequest) -> tuple[str, Path]:
    version = str(request.param)
    return version, client("gemini", version)


@pytest.fixture
def gemini_api() -> Iterator[GeminiStandIn]:
    with GeminiStandIn(Reply(gemini_usage(100, 5), text="ok")) as stand:
        yield stand


def _gemini_run(gemini: tuple[str, Path], home: Path, stand: GeminiStandIn, label: str,
                *args: str) -> dict[str, Any]:
    version, exe = gemini
    settings = home / ".gemini" / "settings.json"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    }))
    env = dict(base_env(home, stand), GEMINI_API_KEY="stand-in-key",
               GOOGLE_GEMINI_BASE_URL=stand.url, GEMINI_CLI_TRUST_WORKSPACE="true",
               GEMINI_TELEMETRY_ENABLED="false",
               # No child process with a larger heap: halves 0.34's start (4 s, not 8).
               GEMINI_CLI_NO_RELAUNCH="true")
    out = run(f"gemini {version} {label}",
              [str(exe), "-p", "hi", "-m", GEMINI_MODEL, "-o", "json", *args],
              env, home / "work")
    result: dict[str, Any] = json.loads(out[out.index("{"):])
    return result


def _gemini_records(home: Path) -> list[dict[str, Any]]:
    """Every gemini message with tokens the chat files hold, replays included."""
    found = []
    for path in sorted((home / ".gemini" / "tmp").rglob("session-*.json*")):
        if path.suffix == ".json":
            found += json.loads(path.read_text()).get("messages", [])
            continue
        for line in path.read_text().splitlines():
            record = json.loads(line) if line.strip() else {}
            found += [*record.get("$set", {}).get("messages", []), record]
    return [m for m in found if m.get("type") == "gemini" and m.get("tokens")]


def _gemini_expected(served: list[Served]) -> list[Row]:
    # promptTokenCount includes the cached part and tool-use prompt tokens are billed as
    # input; thoughts are billed as output, beside the candidates (formats.md §3).
    rows = []
    for s in served:
        u = s.usage
        cached = u.get("cachedContentTokenCount", 0)
        rows.append((s.model, u["promptTokenCount"] - cached + u.get("toolUsePromptTokenCount", 0),
                     u["candidatesTokenCount"] + u.get("thoughtsTokenCount", 0), 0, 0, cached))
    return sorted(rows)


def _check_gemini(home: Path, stand: GeminiStandIn) -> list[Row]:
    no_escape(stand)
    real = _real(stand)
    assert real and all(s.stream for s in real), stand.seen
    # Each streamed answer is in the chat log under one message id, with the served counts.
    logged = {m["id"]: m["tokens"] for m in _gemini_records(home)}
    assert len(logged) == len(real)
    assert sorted(t["input"] for t in logged.values()) == \
        sorted(s.usage["promptTokenCount"] for s in real)
    want = _gemini_expected(real)
    assert ledger_rows(home, "gemini") == want
    _check_cost(home, want)
    return want


def test_gemini_cached_and_thoughts(gemini: tuple[str, Path], sandbox: Path,
                                    gemini_api: GeminiStandIn) -> None:
    gemini_api.script.append(Reply(gemini_usage(11020, 236, cached=10240, thoughts=40),
                                   text="hello"))
    result = _gemini_run(gemini, sandbox, gemini_api, "plain")
    assert result.get("response", "hello") == "hello"
    want = _check_gemini(sandbox, gemini_api)
    assert want == [(GEMINI_MODEL, 780, 276, 0, 0, 10240)]


@_current("gemini")
def test_gemini_tool_loop_reappended_ids(gemini: tuple[str, Path], sandbox: Path,
                                         gemini_api: GeminiStandIn) -> None:
    gemini_api.script += [
        Reply(gemini_usage(9000, 120, cached=8192, thoughts=64), text="running it",
              tool={"name": "run_shell_command", "input": {"command": "echo hi"}}),
        Reply(gemini_usage(9500, 30, cached=8192, tool=211), text="it printed hi"),
    ]
    _gemini_run(gemini, sandbox, gemini_api, "tool loop", "--approval-mode", "yolo")
    real = _real(gemini_api)
    assert len(real) == 2, gemini_api.seen
    # The function response went back with the shell's output.
    assert "hi" in json.dumps(real[1].body.get("contents", [])[-1])
    # The tool call appends the first message again under the same id: last one wins.
    ids = [m["id"] for m in _gemini_records(sandbox)]
    assert len(ids) > len(set(ids)) == 2
    _check_gemini(sandbox, gemini_api)


@_current("gemini")
def test_gemini_resume_counted_once(gemini: tuple[str, Path], sandbox: Path,
                                    gemini_api: GeminiStandIn) -> None:
    # --resume appends to the session's file (a new header and a `$set` replaying the
    # earlier messages), sometimes starting a file beside it: the first answer stays one
    # row.  (0.34's resume rewrites its .json: see the legacy test below.)
    gemini_api.script += [Reply(gemini_usage(7000, 50, cached=4096, thoughts=24), text="first"),
                          Reply(gemini_usage(7400, 60, cached=6144, thoughts=12),
                                text="second")]
    _gemini_run(gemini, sandbox, gemini_api, "before resume")
    # A scan between the runs: the resumed session is then read again as it grows.
    assert ledger_rows(sandbox, "gemini") == _gemini_expected(_real(gemini_api))
    _gemini_run(gemini, sandbox, gemini_api, "resume", "--resume", "latest")
    real = _real(gemini_api)
    assert len(real) == 2 and "first" in json.dumps(real[1].body.get("contents"))
    _check_gemini(sandbox, gemini_api)


def test_gemini_legacy_json_resumed_by_current(sandbox: Path,
                                               gemini_api: GeminiStandIn) -> None:
    # 0.34 writes one .json rewritten whole; 0.61 resuming it writes the conversation
    # again as .jsonl beside it (the .json stays): the same session and message ids.
    old, new = (CLIENTS["gemini"][1][-1], CLIENTS["gemini"][1][0])
    gemini_api.script += [Reply(gemini_usage(5000, 40, cached=2048, thoughts=8), text="old"),
                          Reply(gemini_usage(5600, 45, cached=4096), text="new")]
    _gemini_run((old, client("gemini", old)), sandbox, gemini_api, "legacy .json")
    _gemini_run((new, client("gemini", new)), sandbox, gemini_api, "resumes it",
                "--resume", "latest")
    chats = {p.suffix for p in (sandbox / ".gemini" / "tmp").rglob("session-*")}
    assert chats == {".json", ".jsonl"}
    _check_gemini(sandbox, gemini_api)


def test_gemini_long_prompt_priced_at_tier(sandbox: Path, gemini_api: GeminiStandIn) -> None:
    # Over 200k prompt tokens (cache included) every category takes gemini-2.5-pro's
    # higher rates (formats.md §3, §6.3).
    version = CLIENTS["gemini"][1][0]
    tier = prices()[GEMINI_MODEL]["tier"]
    gemini_api.script.append(Reply(gemini_usage(250_000, 300, cached=200_000, thoughts=100),
                                   text="long"))
    _gemini_run((version, client("gemini", version)), sandbox, gemini_api, "200k+")
    want = _check_gemini(sandbox, gemini_api)
    assert want == [(GEMINI_MODEL, 50_000, 400, 0, 0, 200_000)]
    assert served_cost(want) == pytest.approx(
        50_000 * tier["input"] + 400 * tier["output"] + 200_000 * tier["cache_read"])


# ---------------------------------------------------------------------------- OpenCode


@pytest.fixture(params=CLIENTS["opencode"][1])
def opencode(request: pytest.FixtureRequest) -> tuple[str, Path]:
    version = str(request.param)
    return version, client("opencode", version)


def _opencode_setup(home: Path, provider: str, stand: StandIn,
                    custom: dict[str, Any] | None = None, small_model: str = "") -> None:
    config = home / ".config" / "opencode"
    config.mkdir(parents=True, exist_ok=True)
    options = {"baseURL": f"{stand.url}/v1", "apiKey": "sk-stand-in"}
    entry: dict[str, Any] = dict(custom or {}, options=options)
    (config / "opencode.json").write_text(json.dumps({
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False, "share": "disabled",
        "permission": {"bash": "allow"},
        "provider": {provider: entry},
        **({"small_model": small_model} if small_model else {}),
    }))
    # OpenCode installs @opencode-ai/plugin into each config directory from the npm
    # registry in the background unless node_modules is there and its lock file already
    # names the package (its Npm.install checkNodeModules/checkDirty steps).
    (config / "node_modules").mkdir(exist_ok=True)
    (config / "package-lock.json").write_text(json.dumps(
        {"packages": {"": {"dependencies": {"@opencode-ai/plugin": "*"}}}}))


def _opencode_run(opencode: tuple[str, Path], home: Path, stand: StandIn, label: str,
                  model: str, *args: str, prompt: str = "hi") -> list[dict[str, Any]]:
    version, exe = opencode
    env = dict(base_env(home, stand), OPENCODE_DISABLE_AUTOUPDATE="1",
               OPENCODE_DISABLE_MODELS_FETCH="1",  # the bundled models.dev snapshot
               OPENCODE_DISABLE_DEFAULT_PLUGINS="1",  # 1.1: would install auth plugins
               OPENCODE_DISABLE_LSP_DOWNLOAD="1", OPENCODE_DISABLE_SHARE="1")
    # --title: no title request to the small model (1.18; 1.1 asks for one regardless).
    out = run(f"opencode {version} {label}",
              [str(exe), "run", "-m", model, "--format", "json", "--title", "stand-in",
               *args, prompt], env, home / "work")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _opencode_messages(home: Path) -> list[dict[str, Any]]:
    """Every assistant message OpenCode stored (database rows or legacy JSON files)."""
    root = home / ".local" / "share" / "opencode"
    found = []
    db = root / "opencode.db"
    if db.exists():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            found += [dict(json.loads(data), id=ident, sessionID=session)
                      for ident, session, data in conn.execute(
                          "SELECT id, session_id, data FROM message")]
    found += [json.loads(p.read_text())
              for p in (root / "storage" / "message").rglob("*.json")]
    return [m for m in found if m.get("role") == "assistant" and m.get("tokens")]


def _anthropic_row(s: Served) -> Row:
    # OpenCode keeps one cache.write (no 5m/1h split): these usages write 5-minute entries.
    u = s.usage
    assert not u["cache_creation"]["ephemeral_1h_input_tokens"]
    return (s.model, u["input_tokens"], u["output_tokens"], u["cache_creation_input_tokens"],
            0, u["cache_read_input_tokens"])


def _openai_row(s: Served) -> Row:
    # Cached tokens are inside input, reasoning inside output (Responses and chat
    # completions alike); the ledger keeps input net of cache reads.
    u = s.usage
    if "prompt_tokens" in u:
        cached = u["prompt_tokens_details"]["cached_tokens"]
        return (s.model, u["prompt_tokens"] - cached, u["completion_tokens"], 0, 0, cached)
    cached = u["input_tokens_details"]["cached_tokens"]
    return (s.model, u["input_tokens"] - cached, u["output_tokens"], 0, 0, cached)


def _check_opencode(home: Path, stand: StandIn, want: list[Row]) -> None:
    # OpenCode 1.1 fetches ripgrep from GitHub when rg is not on PATH (.ci/run installs
    # it); the proxy refuses that, and the run goes on without it.
    no_escape(stand, frozenset() if shutil.which("rg") else frozenset({"github.com:443"}))
    assert len(_opencode_messages(home)) >= len(want)
    assert ledger_rows(home, "opencode") == want
    _check_cost(home, want)


@pytest.fixture
def anthropic() -> Iterator[AnthropicStandIn]:
    with AnthropicStandIn(Reply(anthropic_usage(3, 5), text="ok")) as stand:
        stand.main_model = "claude-sonnet-4-5"  # 1.1's title request uses claude-haiku
        yield stand


def test_opencode_anthropic_tool_loop(opencode: tuple[str, Path], sandbox: Path,
                                      anthropic: AnthropicStandIn) -> None:
    anthropic.script += [
        Reply(anthropic_usage(12, 34, read=5600, write_5m=780), text="running it",
              tool={"name": "bash", "input": {"command": "echo hi",
                                              "description": "print hi"}}),
        Reply(anthropic_usage(13, 35, read=6600, write_5m=790), text="it printed hi"),
    ]
    _opencode_setup(sandbox, "anthropic", anthropic)
    events = _opencode_run(opencode, sandbox, anthropic, "tool loop",
                           "anthropic/claude-sonnet-4-5")
    assert any(e.get("type") == "tool_use" for e in events), events
    real = _real(anthropic)
    assert len(real) == 2, anthropic.seen
    # One stored message per request, each with OpenCode's own cost (which tokline uses).
    stored = _opencode_messages(sandbox)
    assert len(stored) == 2 and all(m["cost"] > 0 for m in stored)
    _check_opencode(sandbox, anthropic, sorted(map(_anthropic_row, real)))


def test_opencode_openai_cached_and_reasoning(opencode: tuple[str, Path], sandbox: Path
                                             ) -> None:
    with ResponsesStandIn(Reply(openai_usage(100, 5), text="ok")) as responses:
        responses.main_model = "gpt-5"  # 1.1 asks gpt-5-nano for a title
        responses.script.append(Reply(openai_usage(4200, 61, cached=3072, reasoning=20),
                                      text="thought"))
        _opencode_setup(sandbox, "openai", responses)
        _opencode_run(opencode, sandbox, responses, "openai", "openai/gpt-5")
        (served,) = _real(responses)
        # OpenCode stores input net of cache reads and the reasoning apart; 1.18 stores
        # output net of it too (tokline adds it back, formats.md §4), while 1.1's output
        # still held it: its total adds up without the reasoning, and its own cost
        # charged the reasoning twice (tokline then prices the tokens itself).
        (stored,) = _opencode_messages(sandbox)
        tokens = stored["tokens"]
        assert tokens["reasoning"] == 20
        if opencode[0] == "1.1.65":
            assert tokens["output"] == 61
            assert tokens["total"] == tokens["input"] + 61 + tokens["cache"]["read"]
            assert stored["cost"] == pytest.approx(served_cost([_openai_row(served)])
                                                   + 20 * prices()["gpt-5"]["output"])
        else:
            assert tokens["output"] + tokens["reasoning"] == 61
        want = [_openai_row(served)]
        assert want == [("gpt-5", 1128, 61, 0, 0, 3072)]
        _check_opencode(sandbox, responses, want)


def test_opencode_custom_provider_priced_by_tokline(opencode: tuple[str, Path], sandbox: Path
                                                   ) -> None:
    # A provider of one's own (openai-compatible chat completions) with no prices set:
    # OpenCode stores cost 0 and tokline prices the tokens itself.
    with ChatCompletionsStandIn(Reply(chat_usage(100, 5), text="ok")) as chat:
        chat.main_model = "gpt-4.1"
        chat.script.append(Reply(chat_usage(3000, 44, cached=1024, reasoning=0), text="hi"))
        # 1.1 asks the small model for a title; without one of this provider's it
        # would ask OpenCode's own service (opencode.ai).
        _opencode_setup(sandbox, "stand", chat, {
            "npm": "@ai-sdk/openai-compatible", "name": "stand-in",
            "models": {"gpt-4.1": {"name": "gpt-4.1"}, "gpt-4.1-mini": {"name": "mini"}}},
            small_model="stand/gpt-4.1-mini")
        _opencode_run(opencode, sandbox, chat, "custom provider", "stand/gpt-4.1")
        real = _real(chat)
        assert len(real) == 1 and real[0].stream, chat.seen
        (stored,) = _opencode_messages(sandbox)
        assert not stored.get("cost")
        want = sorted(map(_openai_row, real))
        _check_opencode(sandbox, chat, want)


def test_opencode_fork_copy_counted_once(opencode: tuple[str, Path],
                                                        sandbox: Path,
                                                        anthropic: AnthropicStandIn) -> None:
    # `run --continue --fork`: the last session is copied into a new one, which the
    # prompt then continues (a second turn, in the fork).
    anthropic.script += [
        Reply(anthropic_usage(21, 40, read=3000, write_5m=500), text="first"),
        Reply(anthropic_usage(22, 41, read=3500, write_5m=510), text="forked"),
    ]
    _opencode_setup(sandbox, "anthropic", anthropic)
    model = "anthropic/claude-sonnet-4-5"
    _opencode_run(opencode, sandbox, anthropic, "first", model)
    # A scan between the runs: the fork's copy arrives after its original was counted.
    assert ledger_rows(sandbox, "opencode") == sorted(map(_anthropic_row, _real(anthropic)))
    _opencode_run(opencode, sandbox, anthropic, "fork", model, "--continue", "--fork")
    real = _real(anthropic)
    assert len(real) == 2, anthropic.seen
    assert "first" in json.dumps(real[1].body.get("messages"))
    # The fork copied the earlier answer into its own session, under a new id.
    stored = _opencode_messages(sandbox)
    assert len(stored) == 3 and len({m["sessionID"] for m in stored}) == 2
    _check_opencode(sandbox, anthropic, sorted(map(_anthropic_row, real)))


# ---------------------------------------------------------------------------- Copilot

COPILOT_CLAUDE = "claude-sonnet-4.5"  # Copilot's name; the price table's is claude-sonnet-4-5
# Releases whose replies carry outputTokens and whose shutdown totals cover one run.
PER_REPLY = {"1.0.60"}


@pytest.fixture(params=CLIENTS["copilot"][1])
def copilot(request: pytest.FixtureRequest) -> tuple[str, Path]:
    version = str(request.param)
    return version, client("copilot", version)


def _copilot_run(copilot: tuple[str, Path], home: Path, stand: StandIn, label: str,
                 provider: str, model: str, *args: str) -> str:
    version, exe = copilot
    base = stand.url if provider == "anthropic" else f"{stand.url}/v1"
    env = dict(base_env(home, stand), COPILOT_OFFLINE="true", COPILOT_AUTO_UPDATE="false",
               COPILOT_PROVIDER_BASE_URL=base, COPILOT_PROVIDER_API_KEY="sk-stand-in",
               COPILOT_PROVIDER_TYPE="openai" if provider != "anthropic" else provider,
               COPILOT_MODEL=model,
               # The binary unpacks its JavaScript (some 230 MB) once, beside the install
               # (1.0.60 knows only COPILOT_CACHE_HOME, which 1.0.102 uses for no more).
               COPILOT_PKG_CACHE_HOME=str(exe.parent.parent.parent),
               COPILOT_CACHE_HOME=str(exe.parent.parent.parent))
    if provider == "responses":
        env["COPILOT_PROVIDER_WIRE_API"] = "responses"
    return run(f"copilot {version} {label}",
               [str(exe), "-p", "hi", "--allow-all-tools", "--no-auto-update", *args],
               env, home / "work")


def _copilot_events(home: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in (home / ".copilot" / "session-state").rglob(
        "events.jsonl") for line in path.read_text().splitlines() if line.strip()]


def _copilot_expected(version: str, runs: list[list[Served]],
                      row: Callable[[Served], Row]) -> list[Row]:
    """Per request (usage records); for the per-reply releases, each reply's output and,
    per run and model, the shutdown totals' input and cache beyond them."""
    if version not in PER_REPLY:
        return sorted(row(s) for one in runs for s in one)
    want: list[Row] = []
    for one in runs:
        per_model: dict[str, list[int]] = {}
        for s in one:
            model, inp, out, w5, _, read = row(s)
            want.append((model, 0, out, 0, 0, 0))
            sums = per_model.setdefault(model, [0, 0, 0])
            for i, value in enumerate((inp, w5, read)):
                sums[i] += value
        want += [(model, inp, 0, w5, 0, read) for model, (inp, w5, read) in per_model.items()]
    return sorted(want)


def _check_copilot(home: Path, stand: StandIn, version: str, want: list[Row]) -> None:
    no_escape(stand)
    events = _copilot_events(home)
    records = [e for e in events if e["type"] == "session.usage_record"]
    replies = [e for e in events if e["type"] == "assistant.message"
               and e["data"].get("outputTokens")]
    # The log's format is the one this release is pinned for.
    assert bool(replies) == (version in PER_REPLY) != bool(records), events
    assert ledger_rows(home, "copilot") == want
    cost, _ = session_cost(home)
    assert cost == pytest.approx(served_cost(want), rel=1e-3)


def test_copilot_chat_completions_tool_loop(copilot: tuple[str, Path], sandbox: Path) -> None:
    with ChatCompletionsStandIn(Reply(chat_usage(100, 5), text="ok")) as chat:
        chat.main_model = "gpt-4.1"
        chat.script += [
            Reply(chat_usage(4200, 61, cached=3072), text="running it",
                  tool={"name": "bash", "input": {"command": "echo hi",
                                                  "description": "print hi"}}),
            Reply(chat_usage(5200, 71, cached=4096), text="it printed hi"),
        ]
        _copilot_run(copilot, sandbox, chat, "tool loop", "completions", "gpt-4.1")
        real = _real(chat)
        assert len(real) == 2, chat.seen
        assert "hi" in json.dumps(real[1].body.get("messages", [])[-1])
        want = _copilot_expected(copilot[0], [real], _openai_row)
        _check_copilot(sandbox, chat, copilot[0], want)


@_current("copilot")
def test_copilot_responses_reasoning(copilot: tuple[str, Path], sandbox: Path) -> None:
    with ResponsesStandIn(Reply(openai_usage(100, 5), text="ok")) as responses:
        responses.script.append(Reply(openai_usage(4200, 61, cached=3072, reasoning=20),
                                      text="thought"))
        _copilot_run(copilot, sandbox, responses, "responses", "responses", "gpt-5")
        real = _real(responses)
        assert len(real) == 1, responses.seen
        assert _openai_row(real[0]) == ("gpt-5", 1128, 61, 0, 0, 3072)  # reasoning inside
        _check_copilot(sandbox, responses, copilot[0],
                       _copilot_expected(copilot[0], [real], _openai_row))


def test_copilot_continue_counts_each_run_once(copilot: tuple[str, Path], sandbox: Path,
                                               anthropic: AnthropicStandIn) -> None:
    # A plain prompt (cache reads and writes), then --continue.  Each run appends a
    # session.shutdown with per-model totals: that run's alone (1.0.60), or the
    # session's so far (1.0.102).  Neither may be lost nor counted twice.
    anthropic.main_model = COPILOT_CLAUDE
    anthropic.script += [Reply(anthropic_usage(12, 34, read=5600, write_5m=780), text="one"),
                         Reply(anthropic_usage(13, 35, read=6600, write_5m=790), text="two")]
    _copilot_run(copilot, sandbox, anthropic, "first", "anthropic", COPILOT_CLAUDE)
    first = list(_real(anthropic))
    # A scan between the runs: the continued session is read again as it grows.
    assert ledger_rows(sandbox, "copilot") == \
        _copilot_expected(copilot[0], [first], _anthropic_row)
    _copilot_run(copilot, sandbox, anthropic, "continue", "anthropic", COPILOT_CLAUDE,
                 "--continue")
    real = _real(anthropic)
    assert len(real) == 2 and "one" in json.dumps(real[1].body.get("messages"))
    shutdowns = [e for e in _copilot_events(sandbox) if e["type"] == "session.shutdown"]
    assert len(shutdowns) == 2
    want = _copilot_expected(copilot[0], [real[:1], real[1:]], _anthropic_row)
    _check_copilot(sandbox, anthropic, copilot[0], want)
