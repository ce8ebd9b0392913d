"""Qwen Code, Pi and Kimi (Kimi Code and Kimi CLI): append-only JSON lines read from the
last offset (formats.md §10.4, §10.6, §10.7).

The shared fixtures are read where they are (each source's environment override points
at them) and counted per the oracles of formats.md §10.10, once with each twin of the
line finder (tests/twins.py: the compiled one and the pure one).  Record shapes not in
the fixtures (Qwen's telemetry beside its assistant records, Pi's fork copies, Kimi CLI's
wire) are the ones the real clients wrote against the stand-ins
(tests/test_real_clients_jsonl.py), trimmed; Kimi CLI's as kimi-cli 1.51.0 wrote them
(its fork copy per ``session_fork.py``).  Property tests: a fork's or a
copy's entries add nothing, and a file read in random pieces, refreshed between, counts
what it counts read at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import twins
from conftest import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokline import cli
from tokline.engine.refresh import refresh
from tokline.ledger.store import Ledger, StoredUsage
from tokline.sources import documents, kimi, pi, qwen

Sums = tuple[int, int, int, int, int]  # rows, input, output, cache reads, cache writes


@pytest.fixture(params=twins.each("codex"))
def finder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The line finder the appended sources use: the compiled one, then its pure twin."""
    monkeypatch.setattr(documents, "candidate_lines", request.param.candidate_lines)
    yield request.param


def _rows(led: Ledger, source: str) -> list[StoredUsage]:
    return sorted(led.usage(sources=[source]), key=lambda r: (r.ts_ms, r.input))


def _sums(led: Ledger, source: str) -> Sums:
    rows = _rows(led, source)
    return (len(rows), sum(r.input for r in rows), sum(r.output for r in rows),
            sum(r.cache_read for r in rows), sum(r.cache_5m + r.cache_1h for r in rows))


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(home), **extra}


def _lines(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


# ---------------------------------------------------------------------------- fixtures


def test_fixture_oracles(home: Path, ledger: Ledger, finder: Any) -> None:
    env = _env(home, KIMI_CODE_HOME=str(FIXTURES / "kimi" / "agentsessions"),
               PI_CODING_AGENT_DIR=f"{FIXTURES / 'pi' / 'agentsessions'},"
                                   f"{FIXTURES / 'pi' / 'cass'}",
               QWEN_RUNTIME_DIR=str(FIXTURES / "qwen" / "agentsessions"))
    report = refresh(ledger, env)
    assert report.problems == [] and report.malformed == 0
    # Kimi Code (§10.10): the main wire's 23 usage.record (22 turns and a compaction),
    # not its 22 step.end; the subagent's wire, 3 more; the session without any, none.
    session = FIXTURES / "kimi" / "agentsessions" / "sessions" / "wd_project_ac3bb318f98e"
    wires = sorted(session.rglob("*.jsonl"))
    per_file = []
    for wire in wires:
        found, malformed = kimi.parse(str(wire), wire.read_bytes())
        assert malformed == 0
        per_file.append((wire.name, len(found), sum(u.input for u in found.values()),
                         sum(u.output for u in found.values()),
                         sum(u.cache_read for u in found.values())))
    assert per_file == [("subagent_agent-0.jsonl", 3, 12_905, 330, 28_416),
                        ("assistant_tools.jsonl", 23, 30_174, 5_515, 661_504),
                        ("small.jsonl", 0, 0, 0, 0)]
    assert _sums(ledger, "kimi") == (26, 43_079, 5_845, 689_920, 0)
    rows = _rows(ledger, "kimi")
    assert {r.model for r in rows} == {"moonshot-ai/kimi-k2.7-code"}
    assert {r.session_id for r in rows} == {"1bcbe023-4f7e-4971-9dc9-43b8756045b0"}
    # the subagent's config.update names the work dir (the main wire's does not)
    assert {r.project for r in rows} == {"", "/private/tmp/as-agent-lab/kimi/project"}
    # Pi: two calls sharing one fake responseId stay two (12 in, 7 out each); the older
    # synthetic file's entries have no ids, and pi's own cost.
    pis = _rows(ledger, "pi")
    assert [(r.input, r.output, r.cost_usd, r.model) for r in pis] == [
        (50, 100, 0.00045, "claude-sonnet-4-20250514"),
        (60, 80, 0.00042, "claude-sonnet-4-20250514"),
        (12, 7, None, "pi-fixture-model"), (12, 7, None, "pi-fixture-model")]
    assert {r.session_id for r in pis[2:]} == {"019e19b4-eb48-746a-aa6b-8dfcfa37954b"}
    assert {r.project for r in pis[2:]} == {"/tmp/as-agent-fixture/project"}
    # Qwen: one usage per assistant uuid (the streamed first record has none), on the
    # rewound-to branch; the telemetry file's counts were all trimmed to 0.
    assert [(r.input, r.output, r.cache_read, r.model, r.project) for r in
            _rows(ledger, "qwen")] == [(12, 4, 0, "synthetic-active-model",
                                        "/tmp/as-qwen-fixture/new-project")]
    assert refresh(ledger, env).files_scanned == 0


@pytest.mark.parametrize("name", ["sample-wire.jsonl", "usage-only-model.jsonl"])
def test_kimi_code_codemie_samples(home: Path, ledger: Ledger, finder: Any, name: str) -> None:
    wire = home / ".kimi-code" / "sessions" / "wd_p_0" / "session_s" / "agents" / "main"
    wire.mkdir(parents=True)
    shutil.copy(FIXTURES / "kimi" / "codemie" / name, wire / "wire.jsonl")
    refresh(ledger, _env(home))
    # the 0.14.2 shape: three step.end without usage, one usage.record
    want = {"sample-wire.jsonl": ("kimi-for-coding", 14_341, 570, 14_336),
            "usage-only-model.jsonl": ("fallback-model", 100, 50, 0)}[name]
    assert [(r.model, r.input, r.output, r.cache_read) for r in _rows(ledger, "kimi")] == [want]


def test_kimi_code_aliases_named_by_its_config(home: Path, ledger: Ledger, finder: Any) -> None:
    # Kimi Code 2.1.0 logs the model alias; config.toml's [models] names the model.
    kimi_home = home / ".kimi-code"
    session = kimi_home / "sessions" / "wd_work_ff5552cec86b" / "session_bab99e44"
    (session / "agents" / "main").mkdir(parents=True)
    (kimi_home / "config.toml").write_text(
        'default_model = "stand/kimi-k2.6"\n[models."stand/kimi-k2.6"]\nprovider = "stand"\n'
        'model = "kimi-k2.6"\nmax_context_size = 262144\n')
    (session / "state.json").write_text(json.dumps({"id": "session_bab99e44", "version": 2,
                                                    "cwd": "/w", "agents": {}}))
    (session / "agents" / "main" / "wire.jsonl").write_bytes(_lines(
        {"type": "metadata", "protocol_version": "1.5", "created_at": 1796068930388},
        dict(_kimi_code_usage(1796068930855, (1128, 61, 3072, 0)), model="stand/kimi-k2.6"),
        dict(_kimi_code_usage(1796068930900, (1104, 71, 4096, 0)), model="other/k3"),
        dict(_kimi_code_usage(1796068930950, (1, 1, 0, 0)), model="kimi-code/kimi-for-coding")))
    refresh(ledger, _env(home))
    assert [(r.model, r.session_id, r.project) for r in _rows(ledger, "kimi")] == [
        ("kimi-k2.6", "bab99e44", "/w"), ("other/k3", "bab99e44", "/w"),
        ("kimi-for-coding", "bab99e44", "/w")]


# ---------------------------------------------------------------------------- Qwen

QWEN_SESSION = "65ae5622-868f-45b7-9209-637d1ae97d17"


def _qwen_base(uuid: str, parent: str | None, second: int, kind: str) -> dict[str, Any]:
    return {"uuid": uuid, "parentUuid": parent, "sessionId": QWEN_SESSION,
            "timestamp": f"2026-11-30T19:34:{second:02d}.375Z", "type": kind,
            "cwd": "/w", "version": "0.24.4"}


def _qwen_telemetry(uuid: str, second: int, response: str, counts: tuple[int, int, int, int],
                    parent: str | None = None) -> dict[str, Any]:
    """Qwen Code 0.24.4's api_response event: prompt (cache included), output (thoughts
    included), cached, thoughts."""
    prompt, output, cached, thoughts = counts
    return dict(_qwen_base(uuid, parent, second, "system"), subtype="ui_telemetry",
                systemPayload={"uiEvent": {
                    "event.name": "qwen-code.api_response", "response_id": response,
                    "model": "qwen3-coder-plus", "status_code": 200, "input_token_count": prompt,
                    "output_token_count": output, "cached_content_token_count": cached,
                    "thoughts_token_count": thoughts, "total_token_count": prompt + output,
                    "prompt_id": f"{QWEN_SESSION}########0", "auth_type": "openai"}})


def _qwen_assistant(uuid: str, parent: str | None, second: int,
                    counts: tuple[int, int, int, int], total: int | None = None
                    ) -> dict[str, Any]:
    prompt, candidates, cached, thoughts = counts
    return dict(_qwen_base(uuid, parent, second, "assistant"), model="qwen3-coder-plus",
                message={"role": "model", "parts": [{"text": "ok"}]},
                usageMetadata={"promptTokenCount": prompt, "candidatesTokenCount": candidates,
                               "thoughtsTokenCount": thoughts,
                               "totalTokenCount": prompt + candidates if total is None else total,
                               "cachedContentTokenCount": cached},
                contextWindowSize=1_000_000)


FIRST, SECOND = (4200, 61, 3072, 20), (5200, 71, 4096, 0)


def _qwen_file(home: Path) -> Path:
    path = home / ".qwen" / "projects" / "-w" / "chats" / f"{QWEN_SESSION}.jsonl"
    path.parent.mkdir(parents=True)
    return path


def test_qwen_telemetry_and_assistant_record_are_one_call(home: Path, ledger: Ledger,
                                                          finder: Any) -> None:
    # As 0.24.4 writes a tool loop: each call's telemetry, then its assistant record.
    records = [_qwen_telemetry("t1", 14, "chatcmpl-1", FIRST),
               _qwen_assistant("a1", "t1", 14, FIRST),
               _qwen_telemetry("t2", 15, "chatcmpl-3", SECOND, parent="a1"),
               _qwen_assistant("a2", "t2", 15, SECOND)]
    path = _qwen_file(home)
    path.write_bytes(_lines(*records[:1]))  # read between the two copies of a call
    refresh(ledger, _env(home))
    with path.open("ab") as fh:
        fh.write(_lines(*records[1:]))
    refresh(ledger, _env(home))
    # uncached = prompt - cached; output = candidates, the thoughts inside
    assert [(r.input, r.output, r.cache_read, r.model, r.session_id, r.project)
            for r in _rows(ledger, "qwen")] == [
        (1128, 61, 3072, "qwen3-coder-plus", QWEN_SESSION, "/w"),
        (1104, 71, 4096, "qwen3-coder-plus", QWEN_SESSION, "/w")]


def test_qwen_either_record_alone_counts(home: Path, ledger: Ledger, finder: Any) -> None:
    # A subagent's call: telemetry only (its transcript is elsewhere).  An older
    # release: an assistant record only, its telemetry without counts.  A forked copy.
    empty = _qwen_telemetry("t0", 10, "chatcmpl-0", (0, 0, 0, 0))
    empty["systemPayload"]["uiEvent"] = {"event.name": "qwen-code.api_response"}
    copy = dict(_qwen_assistant("c1", None, 9, (999, 9, 0, 0)),
                forkedFrom={"sessionId": "other", "messageUuid": "x"})
    _qwen_file(home).write_bytes(_lines(
        copy, empty, _qwen_assistant("a0", "t0", 10, (300, 30, 0, 0)),
        _qwen_telemetry("t1", 11, "chatcmpl-sub", FIRST),
        _qwen_assistant("a1", "t1", 12, SECOND)))
    refresh(ledger, _env(home))
    assert [(r.input, r.output, r.cache_read) for r in _rows(ledger, "qwen")] == [
        (300, 30, 0), (1128, 61, 3072), (1104, 71, 4096)]


def test_qwen_gemini_semantics_by_the_total(home: Path, ledger: Ledger, finder: Any) -> None:
    # A native Gemini generator: thoughts beside the candidates, as the total shows.
    _qwen_file(home).write_bytes(_lines(
        _qwen_assistant("g1", None, 1, (1000, 50, 200, 40), total=1090),
        _qwen_assistant("o1", None, 2, (1000, 50, 200, 40), total=1050)))
    refresh(ledger, _env(home))
    assert [(r.input, r.output, r.cache_read) for r in _rows(ledger, "qwen")] == [
        (800, 90, 200), (800, 50, 200)]


# ---------------------------------------------------------------------------- Pi


def _pi_header(session: str, parent: str | None = None) -> dict[str, Any]:
    header = {"type": "session", "version": 3, "id": session,
              "timestamp": "2026-11-30T19:35:28.522Z", "cwd": "/w"}
    if parent:
        header["parentSession"] = parent
    return header


def _pi_call(i: int, tokens: tuple[int, int, int, int], response: str | None = "auto",
             cost: float = 0.0) -> dict[str, Any]:
    inp, out, read, write = tokens
    message: dict[str, Any] = {
        "role": "assistant", "content": [{"type": "text", "text": "ok"}],
        "api": "openai-completions", "provider": "stand", "model": "stand-model",
        "usage": {"input": inp, "output": out, "cacheRead": read, "cacheWrite": write,
                  "totalTokens": inp + out + read + write,
                  "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0,
                           "total": cost}},
        "stopReason": "stop", "timestamp": 1796067328683 + i}
    if response:
        message["responseId"] = f"chatcmpl-{i}" if response == "auto" else response
    return {"type": "message", "id": f"{i:08x}", "parentId": None,
            "timestamp": f"2026-11-30T19:{i // 60 % 60:02d}:{i % 60:02d}.750Z",
            "message": message}


def _pi_dir(home: Path) -> Path:
    path = home / ".pi" / "agent" / "sessions" / "--w--"
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_pi_fork_copies_count_once_and_cost_is_pis(home: Path, ledger: Ledger,
                                                   finder: Any) -> None:
    # pi 0.73.1's --fork: the new file's header names its parent, then every entry of
    # the parent as it was, then its own.
    calls = [_pi_call(1, (1128, 61, 3072, 0), cost=0.002786),
             _pi_call(2, (1104, 71, 4096, 0), cost=0.003294)]
    sessions = _pi_dir(home)
    original = sessions / "2026-11-30T19-35-28-522Z_a.jsonl"
    original.write_bytes(_lines(_pi_header("a"), *calls))
    refresh(ledger, _env(home))
    (sessions / "2026-11-30T19-35-30-502Z_b.jsonl").write_bytes(_lines(
        _pi_header("b", str(original)), *calls, _pi_call(3, (1200, 81, 5000, 0))))
    refresh(ledger, _env(home))
    rows = _rows(ledger, "pi")
    assert [(r.input, r.output, r.cache_read, r.cost_usd, r.session_id) for r in rows] == [
        (1128, 61, 3072, 0.002786, "a"), (1104, 71, 4096, 0.003294, "a"),
        (1200, 81, 5000, None, "b")]


def test_pi_default_locations_and_overrides(home: Path) -> None:
    assert pi.candidate_roots(_env(home)) == [str(home / ".pi" / "agent" / "sessions"),
                                              str(home / ".omp" / "agent" / "sessions")]
    assert pi.candidate_roots(_env(home, PI_CODING_AGENT_DIR="~/pi-agent")) == [
        os.path.expanduser("~/pi-agent/sessions"), str(home / ".omp" / "agent" / "sessions")]
    assert qwen.candidate_roots(_env(home)) == [str(home / ".qwen" / "projects")]
    assert qwen.candidate_roots(_env(home, QWEN_RUNTIME_DIR="/q")) == ["/q/projects"]
    assert kimi.candidate_roots(_env(home)) == [str(home / ".kimi-code" / "sessions"),
                                                str(home / ".kimi" / "sessions")]
    assert kimi.candidate_roots(_env(home, KIMI_CODE_HOME="/c", KIMI_SHARE_DIR="/s")) == [
        "/c/sessions", "/s/sessions"]
    assert pi.roots(_env(home)) == qwen.roots(_env(home)) == kimi.roots(_env(home)) == []


# ---------------------------------------------------------------------------- Kimi CLI


def _kimi_status(seconds: float, tokens: tuple[int, int, int, int], message_id: str | None
                 ) -> dict[str, Any]:
    other, out, read, write = tokens
    payload: dict[str, Any] = {
        "context_usage": 0.045, "context_tokens": 11706, "max_context_tokens": 262144,
        "token_usage": {"input_other": other, "output": out, "input_cache_read": read,
                        "input_cache_creation": write},
        "message_id": message_id, "plan_mode": False, "mcp_status": None}
    return {"timestamp": seconds, "message": {"type": "StatusUpdate", "payload": payload}}


def _kimi_cli_session(share: Path, work: str, session: str) -> Path:
    group = hashlib.md5(work.encode()).hexdigest()
    path = share / "sessions" / group / session
    path.mkdir(parents=True)
    return path


def test_kimi_cli_wire_subagents_and_forks(home: Path, ledger: Ledger, finder: Any) -> None:
    share = home / ".kimi"
    (share / "sessions").mkdir(parents=True)
    (share / "kimi.json").write_text(json.dumps(
        {"work_dirs": [{"path": "/w", "kaos": "local", "last_session_id": "s1"}]}))
    (share / "config.toml").write_text(
        'default_model = "k2"\n[models.k2]\nprovider = "moonshot"\nmodel = "kimi-k2.6"\n'
        'max_context_size = 262144\n[providers.moonshot]\ntype = "kimi"\n'
        'base_url = "http://127.0.0.1:9"\napi_key = "sk-x"\n')
    one, two, three = (2490, 106, 9216, 0), (120, 40, 11000, 512), (300, 9, 0, 0)
    session = _kimi_cli_session(share, "/w", "s1")
    mirrored = {"timestamp": 1777454399.7, "message": {"type": "SubagentEvent", "payload": {
        "agent_id": "a1", "event": _kimi_status(1777454399.7, three, "chatcmpl-sub")["message"]}}}
    (session / "wire.jsonl").write_bytes(_lines(
        {"type": "metadata", "protocol_version": "1.9"},
        {"timestamp": 1777454399.1, "message": {"type": "TurnBegin", "payload": {}}},
        {"timestamp": 1777454399.2, "message": {"type": "StatusUpdate",
                                                "payload": {"plan_mode": True}}},
        _kimi_status(1777454399.6, one, "chatcmpl-1"), mirrored,
        _kimi_status(1777454400.6, two, None)))
    (session / "context.jsonl").write_bytes(b'{"role": "user", "token_usage": 1}\n')
    sub = session / "subagents" / "a1"
    sub.mkdir(parents=True)
    (sub / "wire.jsonl").write_bytes(_lines(_kimi_status(1777454399.7, three, "chatcmpl-sub")))
    refresh(ledger, _env(home))
    want = [(2490, 106, 9216, 0), (300, 9, 0, 0), (120, 40, 11000, 512)]
    rows = _rows(ledger, "kimi")
    assert [(r.input, r.output, r.cache_read, r.cache_5m) for r in rows] == want
    assert {(r.model, r.session_id, r.project) for r in rows} == {("kimi-k2.6", "s1", "/w")}
    # /fork copies the wire lines up to a turn into a new session, as they were.
    fork = _kimi_cli_session(share, "/w", "s2")
    (fork / "wire.jsonl").write_bytes((session / "wire.jsonl").read_bytes())
    refresh(ledger, _env(home))
    assert [(r.input, r.output, r.cache_read, r.cache_5m)
            for r in _rows(ledger, "kimi")] == want


@pytest.mark.parametrize(("files", "model"), [
    ({}, "kimi-for-coding"),
    ({"config.json": '{"model": "kimi-k2.5"}'}, "kimi-k2.5"),
    ({"config.toml": 'default_model = "kimi-code/kimi-for-coding"\n'}, "kimi-for-coding"),
    ({"config.toml": "not = [toml"}, "kimi-for-coding"),
])
def test_kimi_cli_model_from_its_config(home: Path, ledger: Ledger, files: dict[str, str],
                                        model: str) -> None:
    share = home / "share"
    share.mkdir()
    for name, text in files.items():
        (share / name).write_text(text)
    session = _kimi_cli_session(share, "/w", "s")
    (session / "wire.jsonl").write_bytes(_lines(_kimi_status(1777454399.6, (1, 2, 3, 4), "m")))
    refresh(ledger, _env(home, KIMI_SHARE_DIR=str(share)))
    assert [r.model for r in _rows(ledger, "kimi")] == [model]


# ---------------------------------------------------------------------------- offsets


def test_half_written_line_waits_and_malformed_lines_are_counted(home: Path, ledger: Ledger,
                                                                 finder: Any) -> None:
    path = _pi_dir(home) / "s.jsonl"
    whole = _lines(_pi_header("s"), _pi_call(1, (10, 1, 0, 0)), _pi_call(2, (20, 2, 0, 0)))
    cut = whole.index(b'"chatcmpl-2"')
    path.write_bytes(whole[:cut])
    report = refresh(ledger, _env(home))
    assert _sums(ledger, "pi")[:2] == (1, 10) and report.malformed == 0
    with path.open("ab") as fh:
        # the rest of the line, a broken line with usage, one out of bounds, one without
        fh.write(whole[cut:] + b'{"type":"message","message":{"usage": \n'
                 + json.dumps(_pi_call(3, (-5, 1, 0, 0))).encode() + b"\n"
                 + b'{"type":"label" broken\n')
    report = refresh(ledger, _env(home))
    assert _sums(ledger, "pi")[:2] == (2, 30) and report.malformed == 2
    # read again from the start of the line that was cut, not from the start
    assert report.bytes_scanned == path.stat().st_size - (whole.rindex(b"\n", 0, cut) + 1)
    doctor_lines = [p for p in report.problems if "malformed line skipped" in p]
    assert [p.rsplit(":", 2)[-2] for p in doctor_lines] == ["4", "5"]


def test_a_large_session_is_not_read_again(home: Path, ledger: Ledger) -> None:
    path = _pi_dir(home) / "big.jsonl"
    filler = {"type": "message", "id": "f", "timestamp": "2026-11-30T19:00:00.000Z",
              "message": {"role": "toolResult", "content": [{"type": "text",
                                                             "text": "x" * 100_000}]}}
    path.write_bytes(_lines(_pi_header("big"), *[filler] * 200, _pi_call(1, (5, 5, 0, 0))))
    size = path.stat().st_size
    assert size > 20_000_000
    refresh(ledger, _env(home))
    with path.open("ab") as fh:
        fh.write(_lines(_pi_call(2, (7, 7, 0, 0))))
    report = refresh(ledger, _env(home))
    assert report.bytes_scanned == path.stat().st_size - size < 2000
    assert _sums(ledger, "pi")[:2] == (2, 12)


def test_a_new_session_in_an_idle_directory_is_seen_at_once(home: Path) -> None:
    from tokline.prompt import uptodate

    sessions = _pi_dir(home)
    (sessions / "old.jsonl").write_bytes(_lines(_pi_header("old"), _pi_call(1, (1, 1, 0, 0))))
    for path in (sessions / "old.jsonl", sessions):
        os.utime(path, ns=(1_600_000_000 * 10**9,) * 2)
    env = {**_env(home), "XDG_DATA_HOME": str(home / ".local" / "share")}
    with Ledger(Path(uptodate.ledger_path(env))) as led:
        refresh(led, env)
        (sessions / "new.jsonl").write_bytes(_lines(_pi_header("new"),
                                                    _pi_call(2, (4, 1, 0, 0))))
        assert not uptodate.up_to_date(env)
        refresh(led, env, incremental=True)
        assert _sums(led, "pi")[:2] == (2, 5)


# ---------------------------------------------------------------------------- properties

TOKENS = st.tuples(st.integers(0, 50_000), st.integers(1, 5_000), st.integers(0, 90_000),
                   st.integers(0, 2_000))


def _kimi_code_usage(ms: int, tokens: tuple[int, int, int, int]) -> dict[str, Any]:
    other, out, read, write = tokens
    return {"type": "usage.record", "model": "moonshot-ai/kimi-k2.7-code",
            "usage": {"inputOther": other, "output": out, "inputCacheRead": read,
                      "inputCacheCreation": write}, "usageScope": "turn", "time": ms,
            "agentId": "main"}


def _step_end(ms: int, tokens: tuple[int, int, int, int]) -> dict[str, Any]:
    other, out, read, write = tokens
    return {"type": "context.append_loop_event", "time": ms, "event": {
        "type": "step.end", "usage": {"inputOther": other, "output": out,
                                      "inputCacheRead": read, "inputCacheCreation": write}}}


def _written(kind: str, calls: list[tuple[int, int, int, int]]) -> list[dict[str, Any]]:
    """One session's lines in each format, every call once."""
    if kind == "pi":
        return [_pi_header("orig"), *[_pi_call(i, t) for i, t in enumerate(calls)]]
    if kind == "qwen":  # 0.24.4: each call's telemetry, then its assistant record
        out: list[dict[str, Any]] = []
        for i, (inp, outp, read, _) in enumerate(calls):
            counts = (inp + read, outp, read, 0)
            out += [_qwen_telemetry(f"t{i}", i % 60, f"chatcmpl-{i}", counts),
                    _qwen_assistant(f"a{i}", f"t{i}", i % 60, counts)]
        return out
    if kind == "kimi-code":
        out = [{"type": "metadata", "protocol_version": "1.4"}]
        for i, t in enumerate(calls):
            out += [_step_end(1785613800000 + i * 1000, t),
                    _kimi_code_usage(1785613800000 + i * 1000, t)]
        return out
    return [{"type": "metadata", "protocol_version": "1.9"},
            *[_kimi_status(1777454399.25 + i, t, f"chatcmpl-{i}") for i, t in enumerate(calls)]]


def _place(home: Path, kind: str, session: str) -> Path:
    if kind == "pi":
        path = _pi_dir(home) / f"{session}.jsonl"
    elif kind == "qwen":
        path = home / ".qwen" / "projects" / "-w" / "chats" / f"{session}.jsonl"
    elif kind == "kimi-code":
        path = home / ".kimi-code" / "sessions" / "wd_w_0" / f"session_{session}" / "agents" \
            / "main" / "wire.jsonl"
    else:
        path = home / ".kimi" / "sessions" / ("0" * 32) / session / "wire.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _source(kind: str) -> str:
    return kind.split("-")[0]


def _expected(kind: str, calls: list[tuple[int, int, int, int]]) -> Sums:
    return (len(calls), sum(c[0] for c in calls), sum(c[1] for c in calls),
            sum(c[2] for c in calls), 0 if kind == "qwen" else sum(c[3] for c in calls))


def _copied(kind: str, line: dict[str, Any]) -> dict[str, Any]:
    """A line as a fork writes it: as it was (Pi, Kimi), or stamped (Qwen)."""
    if kind == "qwen":
        return dict(line, sessionId="fork", forkedFrom={"sessionId": QWEN_SESSION,
                                                        "messageUuid": line["uuid"]})
    return line


KINDS = st.sampled_from(["pi", "kimi-code", "kimi-cli", "qwen"])
PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(kind=KINDS, calls=st.lists(TOKENS, min_size=1, max_size=6), data=st.data())
def test_forks_and_copies_add_nothing(tmp_path_factory: pytest.TempPathFactory, kind: str,
                                      calls: list[tuple[int, int, int, int]],
                                      data: st.DataObject) -> None:
    """Forks copy some of a session's entries (any of them, in order) into new files,
    read before or after their original; nothing they copy counts again."""
    home = tmp_path_factory.mktemp("home")
    lines = _written(kind, calls)
    first_entry = 0 if kind == "qwen" else 1  # after the header
    forks = data.draw(st.lists(st.lists(st.sampled_from(range(first_entry, len(lines))),
                                        max_size=8).map(sorted), max_size=3))
    early = data.draw(st.booleans())
    with Ledger(home / "ledger.sqlite3") as led:
        if early:
            refresh(led, _env(home))
        for n, picked in enumerate(forks):
            header = [dict(lines[0], id=f"fork{n}", parentSession="orig.jsonl")] \
                if kind == "pi" else [] if kind == "qwen" else [lines[0]]
            _place(home, kind, f"fork{n}").write_bytes(
                _lines(*header, *[_copied(kind, lines[i]) for i in picked]))
            if early:
                refresh(led, _env(home))
        _place(home, kind, "orig").write_bytes(_lines(*lines))
        refresh(led, _env(home))
        assert _sums(led, _source(kind)) == _expected(kind, calls)


@PROPERTY
@given(kind=KINDS, calls=st.lists(TOKENS, min_size=1, max_size=6), data=st.data())
def test_random_read_points_give_the_sum_of_one_read(tmp_path_factory: pytest.TempPathFactory,
                                                     kind: str,
                                                     calls: list[tuple[int, int, int, int]],
                                                     data: st.DataObject) -> None:
    """The file grows in random pieces (lines cut anywhere), a refresh after each."""
    home = tmp_path_factory.mktemp("home")
    whole = _lines(*_written(kind, calls))
    cuts = sorted(data.draw(st.lists(st.integers(1, len(whole) - 1), max_size=8)))
    path = _place(home, kind, "orig")
    with Ledger(home / "ledger.sqlite3") as led:
        before = 0
        for cut in [*cuts, len(whole)]:
            with path.open("ab") as fh:
                fh.write(whole[before:cut])
            before = cut
            refresh(led, _env(home))
        assert _sums(led, _source(kind)) == _expected(kind, calls)


NEEDLE_PIECES = st.sampled_from([
    b'"usage"', b'"session"', b'"usageMetadata"', b'"ui_telemetry"', b'"usage.record"',
    b'"token_usage"', b'"config.update"', b'"usage', b'usage"', b'{"type":"message"}',
    b"\n", b"\n\n", b"x", b'"', b'\\"usage\\"', b"\xff\xfe", b"\r\n", b"_"])


@pytest.mark.parametrize(("compiled", "pure"), twins.pair("codex"))
@pytest.mark.parametrize("source", [qwen, pi, kimi], ids=["qwen", "pi", "kimi"])
@given(data=st.lists(NEEDLE_PIECES, max_size=30).map(b"".join), lead=st.integers(0, 8))
@settings(max_examples=150, deadline=None)
def test_the_line_finders_agree_on_these_needles(compiled: Any, pure: Any, source: Any,
                                                  data: bytes, lead: int) -> None:
    ext = twins.built(compiled)
    end = data.rfind(b"\n") + 1
    start = data.rfind(b"\n", 0, min(lead, end)) + 1
    assert ext.candidate_lines(data, start, end, source.NEEDLES) == \
        pure.candidate_lines(data, start, end, source.NEEDLES)


# ---------------------------------------------------------------------------- commands


def test_doctor_lists_them_and_reports_filter_by_them(home: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"qwen logs: none found in {home / '.qwen' / 'projects'}" in out
    assert f"pi logs: none found in {home / '.pi' / 'agent' / 'sessions'}, " \
           f"{home / '.omp' / 'agent' / 'sessions'}" in out
    assert f"kimi logs: none found in {home / '.kimi-code' / 'sessions'}, " \
           f"{home / '.kimi' / 'sessions'}" in out
    sessions = _pi_dir(home)
    (sessions / "s.jsonl").write_bytes(_lines(_pi_header("s"), _pi_call(1, (100, 10, 0, 0))))
    _qwen_file(home).write_bytes(_lines(_qwen_assistant("a", None, 1, (50, 5, 0, 0))))
    assert cli.main(["doctor"]) == 0
    assert f"pi logs: {home / '.pi' / 'agent' / 'sessions'}" in capsys.readouterr().out
    assert cli.main(["daily", "--json", "--source", "pi"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"]["total_tokens"] == 110
    assert cli.main(["daily", "--json", "--source", "qwen,pi"]) == 0
    everything = json.loads(capsys.readouterr().out)
    assert set(everything["totals"]["sources"]) == {"qwen", "pi"}
    assert everything["totals"]["unpriced"]  # stand-model and qwen3-coder-plus: no price
    # a status field per source, known before the source has any row
    assert cli.main(["status", "--format", "{source.pi.today}[{source.kimi.today}]",
                     "--target", "plain"]) == 0
    capsys.readouterr()
