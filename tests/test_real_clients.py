"""Issue 15: the real Claude Code and Codex CLIs write their logs against loopback
stand-ins (tests/standins.py), and tokline counts exactly what the stand-in served.

Each scenario chooses the usage of every response, runs the pinned client
(tests/real_clients.py) in a private HOME, runs ``tokline scan`` there, and compares
the ledger's per-request rows with what was served: tokens exactly, cost within 0.1 %
of a computation straight from the bundled price table.  Nothing leaves 127.0.0.1:
the clients' telemetry and update checks are off, and their proxy is the stand-in,
which refuses (and records) any CONNECT.  Without npm or the registry, these skip.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import client_runs
import pytest
from client_runs import Row
from real_clients import CLIENTS
from standins import (
    AnthropicStandIn,
    Reply,
    ResponsesStandIn,
    Served,
    StandIn,
    anthropic_usage,
    openai_usage,
)

from tokline.ledger.store import Ledger

CLAUDE_MODEL = "claude-sonnet-4-5-20250929"
CODEX_MODEL = "gpt-5"


# The shared harness (tests/client_runs.py), under the names this module's tests and
# tests/test_real_claude_interactive.py use.
_prices = client_runs.prices
_client = client_runs.client
_base_env = client_runs.base_env
_run = client_runs.run
_tokline = client_runs.tokline
_ledger_rows = client_runs.ledger_rows
_session_cost = client_runs.session_cost
_served_cost = client_runs.served_cost


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    return home


# Known attempts to leave the machine, refused by the stand-in acting as the proxy:
# Claude Code 2.0.x checks its BigQuery metrics opt-out at api.anthropic.com even with
# telemetry and nonessential traffic disabled (its debug log: "Failed to check metrics
# opt-out status: Request failed with status code 403").
REFUSED_OK = {("claude", "2.0.77"): {"api.anthropic.com:443"}}


def _no_escape(stand: StandIn, client: str = "", version: str = "") -> None:
    """Nothing tried to leave the machine through the proxy, beyond the known ones."""
    client_runs.no_escape(stand, frozenset(REFUSED_OK.get((client, version), set())))


# ---------------------------------------------------------------------------- Claude


def _claude_expected(served: list[Served]) -> list[Row]:
    rows = []
    for s in served:
        u = s.usage
        split = u.get("cache_creation") or {}
        one_hour = int(split.get("ephemeral_1h_input_tokens") or 0)
        total = int(u["cache_creation_input_tokens"])
        rows.append((s.model, u["input_tokens"], u["output_tokens"], total - one_hour,
                     one_hour, u["cache_read_input_tokens"]))
    return sorted(rows)


@pytest.fixture(params=CLIENTS["claude"][1])
def claude(request: pytest.FixtureRequest) -> tuple[str, Path]:
    version = str(request.param)
    return version, _client("claude", version)


@pytest.fixture
def anthropic() -> Iterator[AnthropicStandIn]:
    with AnthropicStandIn(Reply(anthropic_usage(3, 5), text="ok")) as stand:
        stand.main_model = CLAUDE_MODEL
        yield stand


def _claude_env(home: Path, stand: StandIn) -> dict[str, str]:
    return dict(_base_env(home, stand),
                ANTHROPIC_BASE_URL=stand.url, ANTHROPIC_API_KEY="sk-test",
                DISABLE_TELEMETRY="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
                DISABLE_AUTOUPDATER="1", DISABLE_ERROR_REPORTING="1",
                DISABLE_BUG_COMMAND="1", CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY="1",
                CLAUDE_CODE_ENABLE_TELEMETRY="0")


def _claude_run(claude: tuple[str, Path], home: Path, stand: AnthropicStandIn, label: str,
                *args: str, model: str = CLAUDE_MODEL) -> dict[str, Any]:
    version, exe = claude
    out = _run(f"claude {version} {label}",
               [str(exe), "-p", "hi", "--model", model, "--output-format", "json", *args],
               _claude_env(home, stand), home / "work")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if isinstance(result, list):  # some builds print the whole event list
        result = next(e for e in result if e.get("type") == "result")
    return result


def _transcript_lines(home: Path) -> list[dict[str, Any]]:
    lines = []
    for path in sorted((home / ".claude" / "projects").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                lines.append(json.loads(line))
    return lines


def _check_claude(home: Path, stand: AnthropicStandIn, version: str) -> list[Row]:
    _no_escape(stand, "claude", version)
    assert stand.served, stand.seen
    # Every request of the conversation is in the transcript; 2.0.x's side calls
    # (subagent warmups, a small model reading Bash output; answered with the default
    # usage) may never reach a log, so only the logged ones are expected.  The counts compared
    # are still the served ones, never the transcript's.
    logged = {e["message"].get("id") for e in _transcript_lines(home)
              if e.get("type") == "assistant"}
    assert all(s.message_id in logged for s in stand.served if not s.side)
    want = _claude_expected([s for s in stand.served if s.message_id in logged])
    got = _ledger_rows(home, "claude")
    assert got == want
    cost, requests = _session_cost(home)
    assert requests == len(want)
    assert cost == pytest.approx(_served_cost(want), rel=1e-3)
    return want


def test_claude_plain_prompt(claude: tuple[str, Path], sandbox: Path,
                             anthropic: AnthropicStandIn) -> None:
    anthropic.script.append(Reply(anthropic_usage(12, 34, read=5600, write_5m=780,
                                                  write_1h=90), text="hello"))
    result = _claude_run(claude, sandbox, anthropic, "plain")
    assert result.get("result") == "hello"
    assert [s.stream for s in anthropic.served] == [True] * len(anthropic.served)
    _check_claude(sandbox, anthropic, claude[0])


def test_claude_tool_loop_one_response_several_lines(claude: tuple[str, Path], sandbox: Path,
                                                      anthropic: AnthropicStandIn) -> None:
    anthropic.script += [
        Reply(anthropic_usage(4, 117, read=12000, write_5m=2500), text="Running it.",
              tool={"name": "Bash", "input": {"command": "echo hi",
                                              "description": "Print hi"}}),
        Reply(anthropic_usage(6, 23, read=14500, write_5m=310), text="It printed hi."),
    ]
    _claude_run(claude, sandbox, anthropic, "tool loop", "--allowedTools", "Bash(echo:*)")
    real = [s for s in anthropic.served if not s.side]
    assert len(real) == 2, anthropic.seen
    first = real[0].message_id
    lines = [e for e in _transcript_lines(sandbox)
             if e.get("type") == "assistant" and e["message"].get("id") == first]
    assert len(lines) >= 2, "the text + tool_use response was written as one line"
    results = [str(e) for e in _transcript_lines(sandbox) if e.get("type") == "user"
               and "tool_result" in str(e)]
    assert results and "hi" in results[0]
    _check_claude(sandbox, anthropic, claude[0])


def test_claude_zero_split_counts_total_as_5m_writes(claude: tuple[str, Path], sandbox: Path,
                                                     anthropic: AnthropicStandIn) -> None:
    anthropic.script.append(Reply(anthropic_usage(7, 41, read=900, write_total=8100),
                                  text="zero split"))
    result = _claude_run(claude, sandbox, anthropic, "zero split")
    (served,) = [s for s in anthropic.served if not s.side]
    usage = [e["message"]["usage"] for e in _transcript_lines(sandbox)
             if e.get("type") == "assistant" and e["message"].get("id") == served.message_id]
    assert usage and usage[-1]["cache_creation_input_tokens"] == 8100
    assert not any(usage[-1].get("cache_creation", {}).values())
    want = _check_claude(sandbox, anthropic, claude[0])
    assert (CLAUDE_MODEL, 7, 41, 8100, 0, 900) in want
    # Claude Code's own cost record for the run agrees with ours within 1 %.
    # (--output-format json's total_cost_usd; it leaves the side calls out, as we do here.)
    own = result["total_cost_usd"]
    assert float(own) == pytest.approx(_served_cost(_claude_expected([served])), rel=1e-2)


def _claude_files_with(home: Path, message_id: str) -> int:
    """How many transcript files hold a line of the response ``message_id``."""
    return sum(1 for path in (home / ".claude" / "projects").rglob("*.jsonl")
               if message_id in path.read_text())


@pytest.mark.parametrize("how", ["continue", "resume"])
def test_claude_resumed_session_counts_replay_once(claude: tuple[str, Path], sandbox: Path,
                                                   anthropic: AnthropicStandIn,
                                                   how: str) -> None:
    anthropic.script += [
        Reply(anthropic_usage(11, 52, read=3300, write_5m=640), text="first"),
        Reply(anthropic_usage(9, 47, read=4100, write_1h=220), text="second"),
    ]
    first = _claude_run(claude, sandbox, anthropic, "before " + how)
    assert first.get("result") == "first"
    # A scan between the runs: the resumed part is then read as an append to a known file.
    assert (CLAUDE_MODEL, 11, 52, 640, 0, 3300) in _ledger_rows(sandbox, "claude")
    again = ["--continue"] if how == "continue" else ["--resume", str(first["session_id"])]
    second = _claude_run(claude, sandbox, anthropic, how, *again)
    assert second.get("result") == "second"
    real = [s for s in anthropic.served if not s.side]
    assert len(real) == 2, anthropic.seen
    # The resumed request really carried the first exchange.
    assert "first" in json.dumps(real[1].body.get("messages"))
    want = _check_claude(sandbox, anthropic, claude[0])
    assert (CLAUDE_MODEL, 11, 52, 640, 0, 3300) in want
    assert (CLAUDE_MODEL, 9, 47, 0, 220, 4100) in want


def test_claude_web_search_requests_priced(claude: tuple[str, Path], sandbox: Path,
                                           anthropic: AnthropicStandIn) -> None:
    usage = dict(anthropic_usage(21, 88, read=2000, write_5m=150),
                 server_tool_use={"web_search_requests": 2, "web_fetch_requests": 0})
    anthropic.script.append(Reply(usage, text="searched"))
    _claude_run(claude, sandbox, anthropic, "web search")
    (served,) = [s for s in anthropic.served if not s.side]
    logged = [e["message"]["usage"] for e in _transcript_lines(sandbox)
              if e.get("type") == "assistant" and e["message"].get("id") == served.message_id]
    assert logged and logged[-1].get("server_tool_use", {}).get("web_search_requests") == 2
    _no_escape(anthropic, "claude", claude[0])
    _tokline(sandbox, "scan", "-q")
    with Ledger(sandbox / "ledger.sqlite3", readonly=True) as led:
        searches = {r.model: r.web_search for r in led.usage(sources=["claude"])
                    if (r.input, r.output) == (21, 88)}
    assert searches == {CLAUDE_MODEL: 2}
    logged_ids = {e["message"].get("id") for e in _transcript_lines(sandbox)
                  if e.get("type") == "assistant"}
    want = _claude_expected([s for s in anthropic.served if s.message_id in logged_ids])
    assert _ledger_rows(sandbox, "claude") == want
    cost, requests = _session_cost(sandbox)
    assert requests == len(want)
    # $10 per 1,000 searches on top of the tokens.
    assert cost == pytest.approx(_served_cost(want) + 2 * 10 / 1000, rel=1e-3)


UNPRICED_MODEL = "my-gateway-model-x"


def test_claude_unpriced_model_counted_not_priced(claude: tuple[str, Path], sandbox: Path,
                                                  anthropic: AnthropicStandIn) -> None:
    assert UNPRICED_MODEL not in _prices()
    anthropic.main_model = UNPRICED_MODEL
    anthropic.script.append(Reply(anthropic_usage(13, 29, read=700, write_5m=90),
                                  text="gateway"))
    result = _claude_run(claude, sandbox, anthropic, "unpriced", model=UNPRICED_MODEL)
    assert result.get("result") == "gateway"
    _no_escape(anthropic, "claude", claude[0])
    (served,) = [s for s in anthropic.served if not s.side]
    assert served.model == UNPRICED_MODEL
    got = _ledger_rows(sandbox, "claude")
    assert (UNPRICED_MODEL, 13, 29, 90, 0, 700) in got
    assert all(row[0] in (UNPRICED_MODEL, *_prices()) for row in got)
    out = json.loads(_tokline(sandbox, "session", "--json"))
    assert out["totals"]["unpriced"] is True
    assert UNPRICED_MODEL in json.dumps(out["unpriced_models"])
    # Only the priced side calls (2.0.x) carry a cost.
    priced = [r for r in got if r[0] != UNPRICED_MODEL]
    assert float(out["totals"]["cost_usd"]) == pytest.approx(_served_cost(priced), abs=1e-9)
    text = _tokline(sandbox, "session")
    # The model column may abbreviate (2.0.x's side calls add models), so the session's
    # cost cell and the total are checked, and the footnote names the model.
    rows = [line.rstrip() for line in text.splitlines() if "$" in line]
    assert len(rows) == 2 and all(line.endswith("+?") for line in rows), text
    assert "unpriced" in text and UNPRICED_MODEL in text.rsplit("unpriced", 1)[1], text


def test_claude_subagent_sidechain_counted(claude: tuple[str, Path], sandbox: Path,
                                           anthropic: AnthropicStandIn) -> None:
    anthropic.script += [
        Reply(anthropic_usage(5, 60, read=1000, write_5m=100), text="delegating",
              tool={"name": "Task", "input": {"description": "say hi", "prompt": "Reply hi",
                                              "subagent_type": "general-purpose"}}),
        Reply(anthropic_usage(7, 20, read=2000, write_5m=200), text="sub says hi"),
        Reply(anthropic_usage(8, 30, read=3000, write_5m=300), text="done"),
    ]
    _claude_run(claude, sandbox, anthropic, "subagent", "--allowedTools", "Task")
    # The subagent's responses are in a sidechain file of their own: subagents/agent-*.jsonl
    # beside the session (2.1.x) or agent-*.jsonl in the project folder (2.0.x).
    served = {s.message_id for s in anthropic.served if not s.side}
    sidechain = set()
    for path in (sandbox / ".claude" / "projects").rglob("agent-*.jsonl"):
        for line in path.read_text().splitlines():
            entry = json.loads(line) if line.strip() else {}
            if entry.get("type") == "assistant" and entry.get("isSidechain") is True \
                    and entry["message"].get("id") in served:
                sidechain.add(entry["message"]["id"])
    assert sidechain, "no served response of the subagent in a sidechain file"
    want = _check_claude(sandbox, anthropic, claude[0])
    assert len(want) >= 3


# ---------------------------------------------------------------------------- Codex


def _codex_expected(served: list[Served]) -> list[Row]:
    # The ledger keeps Codex input net of cache reads; reasoning is inside output.
    rows = []
    for s in served:
        u = s.usage
        cached = u["input_tokens_details"]["cached_tokens"]
        rows.append((s.model, u["input_tokens"] - cached, u["output_tokens"], 0, 0, cached))
    return sorted(rows)


@pytest.fixture(params=CLIENTS["codex"][1])
def codex(request: pytest.FixtureRequest) -> tuple[str, Path]:
    version = str(request.param)
    return version, _client("codex", version)


@pytest.fixture
def responses() -> Iterator[ResponsesStandIn]:
    with ResponsesStandIn(Reply(openai_usage(100, 5), text="ok")) as stand:
        yield stand


def _codex_run(codex: tuple[str, Path], home: Path, stand: ResponsesStandIn,
               label: str, prompt: str, *sub: str) -> None:
    version, exe = codex
    codex_home = home / ".codex"
    codex_home.mkdir(exist_ok=True)
    (codex_home / "config.toml").write_text(
        f'model = "{CODEX_MODEL}"\n'
        'model_provider = "stand"\n'
        "check_for_update_on_startup = false\n"
        "[model_providers.stand]\n"
        'name = "stand-in"\n'
        f'base_url = "{stand.url}/v1"\n'
        'wire_api = "responses"\n'
        'env_key = "STAND_API_KEY"\n'
        "[features]\n"
        "plugins = false\n"
        "[analytics]\n"
        "enabled = false\n")
    env = dict(_base_env(home, stand), CODEX_HOME=str(codex_home), STAND_API_KEY="sk-test",
               RUST_LOG="error")
    _run(f"codex {version} {label}",
         [str(exe), "exec", "--skip-git-repo-check", "--sandbox", "read-only", *sub, prompt],
         env, home / "work")


def _check_codex(home: Path, stand: ResponsesStandIn, version: str) -> list[Row]:
    _no_escape(stand, "codex", version)
    assert stand.served, stand.seen
    want = _codex_expected(stand.served)
    got = _ledger_rows(home, "codex")
    assert got == want
    cost, requests = _session_cost(home)
    assert requests == len(stand.served)
    assert cost == pytest.approx(_served_cost(want), rel=1e-3)
    return want


def test_codex_two_exec_runs(codex: tuple[str, Path], sandbox: Path,
                             responses: ResponsesStandIn) -> None:
    responses.script += [Reply(openai_usage(4200, 61, cached=3072), text="first"),
                         Reply(openai_usage(5300, 88, cached=4096), text="second")]
    _codex_run(codex, sandbox, responses, "run 1", "say first")
    _codex_run(codex, sandbox, responses, "run 2", "say second")
    assert len(responses.served) == 2, responses.seen
    assert len(list((sandbox / ".codex" / "sessions").rglob("rollout-*.jsonl"))) == 2
    _check_codex(sandbox, responses, codex[0])


def test_codex_reasoning_tokens(codex: tuple[str, Path], sandbox: Path,
                                responses: ResponsesStandIn) -> None:
    responses.script.append(Reply(openai_usage(2500, 700, cached=1024, reasoning=512),
                                  text="thought about it"))
    _codex_run(codex, sandbox, responses, "reasoning", "think")
    want = _check_codex(sandbox, responses, codex[0])
    assert [w[2] for w in want] == [700]  # reasoning is part of output, not added to it


@pytest.mark.parametrize("how", ["last", "id"])
def test_codex_exec_resume_counts_new_turn_once(codex: tuple[str, Path], sandbox: Path,
                                                responses: ResponsesStandIn, how: str) -> None:
    responses.script += [Reply(openai_usage(6100, 73, cached=2048), text="first"),
                         Reply(openai_usage(6900, 41, cached=5120), text="resumed")]
    _codex_run(codex, sandbox, responses, "before resume", "say first")
    (rollout,) = (sandbox / ".codex" / "sessions").rglob("rollout-*.jsonl")
    session_id = rollout.stem[-36:]
    # A scan between the runs: the resumed turn is then read as an append to a known file.
    assert _ledger_rows(sandbox, "codex") == _codex_expected(responses.served)
    target = ["--last"] if how == "last" else [session_id]
    _codex_run(codex, sandbox, responses, f"resume {how}", "say resumed", "resume", *target)
    assert len(responses.served) == 2, responses.seen
    assert "say first" in json.dumps(responses.served[1].body.get("input"))
    # The resume appended to the same rollout file.
    assert [p.name for p in (sandbox / ".codex" / "sessions").rglob("rollout-*.jsonl")] \
        == [rollout.name]
    _check_codex(sandbox, responses, codex[0])


def test_codex_cache_write_tokens_stay_inside_input(codex: tuple[str, Path], sandbox: Path,
                                                   responses: ResponsesStandIn) -> None:
    # Codex (0.169.0 and 0.171.0) copies the Responses API's
    # input_tokens_details.cache_write_tokens into cache_write_input_tokens of both
    # token_usage_record and token_count.  Like cached_tokens it is part of input_tokens;
    # tokline has no Codex cache-write price (the bundled gpt-5 entry has none either), so
    # those tokens stay in the non-cached input at the input rate, never added again.
    responses.script.append(Reply(openai_usage(4000, 50, cached=1024, cache_write=1500),
                                  text="wrote cache"))
    _codex_run(codex, sandbox, responses, "cache write", "write the cache")
    (rollout,) = (sandbox / ".codex" / "sessions").rglob("rollout-*.jsonl")
    written = [json.loads(line) for line in rollout.read_text().splitlines()
               if "cache_write_input_tokens" in line]
    assert written, "Codex did not log cache_write_input_tokens"
    for entry in written:
        payload = entry["payload"]
        usage = payload.get("usage") or payload["info"]["last_token_usage"]
        assert (usage["input_tokens"], usage["cache_write_input_tokens"]) == (4000, 1500)
    want = _check_codex(sandbox, responses, codex[0])
    assert want == [(CODEX_MODEL, 4000 - 1024, 50, 0, 0, 1024)]


@pytest.fixture(scope="module", autouse=True)
def _timings() -> Iterator[None]:
    """How long each client run took, wall and CPU (shown with pytest -s)."""
    yield
    for label, seconds, cpu in client_runs.TIMINGS:
        print(f"{label}: {seconds:.2f}s wall, {cpu:.2f}s CPU")


def test_anthropic_stand_in_not_streamed() -> None:
    # The clients stream; the non-streamed answer carries the same recorded usage.
    usage = anthropic_usage(9, 8, read=7, write_1h=6)
    with AnthropicStandIn(Reply(usage, text="plain")) as stand:
        request = urllib.request.Request(
            f"{stand.url}/v1/messages", method="POST",
            data=json.dumps({"model": CLAUDE_MODEL, "max_tokens": 5,
                             "messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.loads(answer.read())
            request_id = answer.headers["request-id"]
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{stand.url}/v1/other", timeout=10)
    missing.value.close()
    assert missing.value.code == 404 and stand.unknown == [("GET", "/v1/other")]
    (served,) = stand.served
    assert not served.stream and body["usage"] == usage == served.usage
    assert (body["id"], request_id) == (served.message_id, served.request_id)
    assert body["content"] == [{"type": "text", "text": "plain"}]
