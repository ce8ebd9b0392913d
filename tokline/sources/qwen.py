"""Qwen Code: ``projects/<project>/chats/<sessionId>.jsonl`` under QWEN_RUNTIME_DIR or
~/.qwen (formats.md §10.4), append-only, read from the last offset.

A call's usage is written twice: an ``assistant`` record's ``usageMetadata`` and, just
before it, a ``system``/``ui_telemetry`` record whose ``qwen-code.api_response`` event
carries the same counts with the provider's ``response_id`` (checked against Qwen Code
0.24.4, tests/test_real_clients_jsonl.py).  Either one alone is the call: some releases
write telemetry without counts, some assistant records have ``usageMetadata: {}``, and
the telemetry also covers calls that have no assistant record here (the background
memory extractor's, 0.24.4; a subagent's, whose transcript under ``subagents/`` is not
read).  So each is counted, and an assistant
record whose counts equal a telemetry event not yet claimed in its file takes that
event's key: the two merge into one ledger row (equal counts: the merge changes nothing,
even if two calls of the same counts pair up crosswise).  Keys: ``response_id`` (else
the telemetry record's uuid) and the assistant record's ``uuid``, one usage per uuid
(a streamed answer's first record has no usage).

Branches: a ``rewind`` leaves the discarded branch in the file and its tokens were spent:
they count.  A fork's copied records carry ``forkedFrom``: skipped (the originals count).

Token semantics (the default OpenAI-compatible path): ``promptTokenCount`` includes the
cached part, ``candidatesTokenCount`` the reasoning (``thoughtsTokenCount`` is inside):
uncached input = prompt − cached, output = candidates.  A native Gemini generator
reports thoughts (and tool-use prompt tokens) beside them, which its total then shows:
when ``total == prompt + candidates + thoughts + tool`` they are added to output and
input.  No cost is logged: tokline prices the tokens.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tokline.engine.validate import R_TIME, Invalid
from tokline.prompt import lightjson
from tokline.sources.documents import (
    Usage,
    count,
    existing,
    first,
    iso_ms,
    parse_appended,
    split_roots,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAME = "qwen"
SUFFIXES = (".jsonl",)
SESSION_DEPTH = 2  # projects/<project>/chats: where a new session's file appears
NEEDLES = (b'"usageMetadata"', b'"ui_telemetry"')
PENDING_KEPT = 32  # telemetry events awaiting their assistant record, per file


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    return [os.path.join(d, "projects") for d in
            split_roots(env, "QWEN_RUNTIME_DIR", os.path.join(home, ".qwen"))]


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    return path.endswith(".jsonl") and os.path.basename(os.path.dirname(path)) == "chats"


class State:
    """Telemetry events of a file not yet matched by an assistant record:
    ``[counts, key]`` in file order, the newest PENDING_KEPT."""

    __slots__ = ("pending",)

    def __init__(self, text: str | None, path: str) -> None:
        self.pending: list[list[Any]] = lightjson.loads(text)["pending"] if text else []

    def dump(self) -> str:
        return lightjson.dumps({"pending": self.pending[-PENDING_KEPT:]})


def _tokens(prompt: int, candidates: int, cached: int, thoughts: int, tool: int, total: int
            ) -> tuple[int, int, int]:
    """(uncached input, output, cache reads) of one call's counts."""
    cached = min(cached, prompt)
    if (thoughts or tool) and total == prompt + candidates + thoughts + tool:
        return prompt - cached + tool, candidates + thoughts, cached  # Gemini semantics
    return prompt - cached, candidates, cached


def take(record: Mapping[str, Any], state: State, found: dict[str, Usage]) -> None:
    if "forkedFrom" in record:
        return
    kind = record.get("type")
    if kind == "assistant":
        usage = record.get("usageMetadata")
        if not isinstance(usage, dict) or not usage or not isinstance(record.get("uuid"), str):
            return
        prompt, candidates = count(usage.get("promptTokenCount")), \
            count(usage.get("candidatesTokenCount"))
        cached, thoughts = count(usage.get("cachedContentTokenCount")), \
            count(usage.get("thoughtsTokenCount"))
        tool, total = count(usage.get("toolUsePromptTokenCount")), \
            count(usage.get("totalTokenCount"))
        key = "uuid:" + record["uuid"]
        signature = [prompt, candidates, cached]
        for i, (counts, telemetry_key) in enumerate(state.pending):
            if counts == signature:
                key = telemetry_key
                del state.pending[i]
                break
        model = record.get("model")
        _add(found, key, record, model, _tokens(prompt, candidates, cached, thoughts, tool,
                                                total))
    elif kind == "system" and record.get("subtype") == "ui_telemetry":
        payload = record.get("systemPayload")
        event = payload.get("uiEvent") if isinstance(payload, dict) else None
        if not isinstance(event, dict) or event.get("event.name") != "qwen-code.api_response":
            return
        prompt, output = count(event.get("input_token_count")), \
            count(event.get("output_token_count"))
        cached, thoughts = count(event.get("cached_content_token_count")), \
            count(event.get("thoughts_token_count"))
        tool, total = count(event.get("tool_token_count")), count(event.get("total_token_count"))
        if not (prompt or output or cached):
            return  # a release that logs the event without its counts
        response = event.get("response_id")
        key = "response:" + response if isinstance(response, str) and response else \
            "uuid:" + record["uuid"] if isinstance(record.get("uuid"), str) else None
        if key is None:
            return
        state.pending.append([[prompt, output, cached], key])
        del state.pending[:-PENDING_KEPT]
        _add(found, key, record, event.get("model"),
             _tokens(prompt, output, cached, thoughts, tool, total))


def _add(found: dict[str, Usage], key: str, record: Mapping[str, Any], model: object,
         tokens: tuple[int, int, int]) -> None:
    ts = iso_ms(record.get("timestamp"))
    if ts is None:
        raise Invalid(R_TIME)
    inp, out, cached = tokens
    session = record.get("sessionId")
    cwd = record.get("cwd")
    first(found, key, Usage(ts, session if isinstance(session, str) else "",
                            cwd if isinstance(cwd, str) else "",
                            model if isinstance(model, str) and model else "unknown",
                            inp, out, 0, cached))


def parse(path: str, data: bytes) -> tuple[dict[str, Usage], int]:
    """Usage per call of one chat file, and its malformed lines."""
    return parse_appended(take, NEEDLES, State(None, path), data)
