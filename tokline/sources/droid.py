"""Factory Droid: ``<sessionId>.settings.json`` under ``~/.factory/sessions/<cwd slug>/``
(DROID_SESSIONS_DIR, a comma list, as ccusage), rewritten in place (formats.md §10.5).

Its ``tokenUsage`` is cumulative for the whole session; tokline/sources/totals.py turns it
into increases between reads (a rewrite with unchanged totals, as Droid makes when it
saves other settings, adds nothing; a session listed under two folders keeps the larger).
The row is dated at the file's modification time; its project is the ``cwd`` of the
transcript's ``session_start`` line (``<id>.jsonl`` beside it), else the folder's name.

Counts, as the real Droid (0.215, tests/test_sources_totals.py) writes them:
``inputTokens`` is the uncached input (the prompt less its cached part),
``cacheCreationTokens`` and ``cacheReadTokens`` apart, ``outputTokens`` with the
reasoning inside; ``thinkingTokens`` repeats that reasoning (a Responses API call with 25
reasoning tokens of 60 output: 60 and 25) and is not added (ccusage adds it, counting it
twice).  ``tokenUsage`` is the session's own; ``inclusiveTokenUsage`` (beside
``childInclusiveTokenUsageBySessionId``) adds its sub-agent sessions, by those names
sessions with files of their own (not seen: the runs here made none), so it is not read.
Droid rewrites the file after every call (and keeps a ``.settings.json.bak`` copy, not
read).

Model: ``model`` normalised (``custom:`` and its index suffix, ``[...]`` dropped, spaces to
``-``, lower case; dots kept, the price matcher reads both); else a ``Model: …`` line near
the start of the session's transcript; else ``<providerLock>-unknown``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from tokline.engine.validate import Invalid
from tokline.sources.documents import existing, split_roots
from tokline.sources.totals import Reading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAME = "droid"
SUFFIXES = (".json",)
RUNNING_TOTALS = True
SETTINGS = ".settings.json"
TRANSCRIPT_HEAD = 256 << 10  # bytes of a transcript searched for its model
_MODEL_LINE = re.compile(rb"Model: ?([A-Za-z0-9][A-Za-z0-9._:/\[\]() -]{1,80})")


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    return split_roots(env, "DROID_SESSIONS_DIR", os.path.join(home, ".factory", "sessions"))


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    return os.path.basename(path).endswith(SETTINGS)


def normalize_model(name: str) -> str:
    """``custom:Claude-Opus-4.5-Thinking-[Anthropic]-0`` -> ``claude-opus-4.5-thinking``."""
    text = name.strip()
    custom = text.lower().startswith("custom:")
    if custom:
        text = text[len("custom:"):]
    text = re.sub(r"\[[^\]]*\]", "", text)
    if custom:
        text = re.sub(r"[-_ ]+\d+$", "", text.strip())  # the custom model's index
    text = re.sub(r"\s+", "-", text.strip())
    text = re.sub(r"-{2,}", "-", text).strip("-")
    return text.lower()


def _transcript_head(path: str) -> bytes:
    """The first part of the session's transcript (``<id>.jsonl`` beside the settings)."""
    try:
        with open(path[: -len(SETTINGS)] + ".jsonl", "rb") as fh:
            return fh.read(TRANSCRIPT_HEAD)
    except OSError:
        return b""


def _transcript_model(head: bytes) -> str | None:
    """``Model: …`` in the first part of the session's transcript, if any."""
    found = _MODEL_LINE.search(head)
    return found.group(1).decode("utf-8", "replace").strip() if found else None


def project_of(head: bytes, path: str) -> str:
    """The ``cwd`` of the transcript's ``session_start`` line, else the folder's name (the
    working directory with ``/`` turned into ``-``)."""
    import json  # noqa: PLC0415 - imported by the sources that have files only

    first = head.split(b"\n", 1)[0]
    try:
        start = json.loads(first) if first.strip() else None
    except ValueError:
        start = None
    cwd = start.get("cwd") if isinstance(start, dict) else None
    return cwd if isinstance(cwd, str) and cwd else os.path.basename(os.path.dirname(path))


def model_of(doc: Mapping[str, Any], head: bytes) -> str:
    model = doc.get("model")
    if isinstance(model, str) and model.strip():
        return normalize_model(model) or "unknown"
    seen = _transcript_model(head)
    if seen:
        return normalize_model(seen) or "unknown"
    provider = doc.get("providerLock") or doc.get("apiProviderLock")
    return f"{provider}-unknown" if isinstance(provider, str) and provider else "unknown"


def parse(path: str, data: bytes) -> tuple[list[Reading], int]:
    """The session's totals: (readings, malformed)."""
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        doc = json.loads(data)
    except ValueError:
        return [], 1  # a torn write: read again when the file next changes
    if not isinstance(doc, dict):
        return [], 0
    usage = doc.get("tokenUsage")
    if not isinstance(usage, dict):
        return [], 0
    session = os.path.basename(path)[: -len(SETTINGS)]
    try:
        mtime_ms: int | None = os.stat(path).st_mtime_ns // 1_000_000
    except OSError:
        mtime_ms = None
    head = _transcript_head(path)
    try:
        reading = Reading(session, session, project_of(head, path),
                          model_of(doc, head), usage.get("inputTokens"),
                          usage.get("outputTokens"), usage.get("cacheCreationTokens"),
                          usage.get("cacheReadTokens"), None, mtime_ms)
    except Invalid:
        return [], 1
    return [reading], 0
