"""Gemini CLI: ``tmp/<project>/chats/session-*.json`` (rewritten whole) and ``.jsonl``
(append-only records, the same message id appended again as it streams) under
GEMINI_DATA_DIR or ~/.gemini (formats.md §3).

One usage per message id, the last record winning; ``$set`` patches that carry whole
``messages`` arrays merge into the same ids; rewound messages still count.  ``input``
includes the cached part and ``thoughts`` are billed as output; tool-use prompt tokens
are billed as input.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tokline.engine.native import parse_iso_ms
from tokline.engine.validate import Invalid
from tokline.sources.documents import Usage, count, existing, split_roots

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAME = "gemini"
SUFFIXES = (".json", ".jsonl")


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    return [os.path.join(d, "tmp") for d in
            split_roots(env, "GEMINI_DATA_DIR", os.path.join(home, ".gemini"))]


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    return os.path.basename(os.path.dirname(path)) == "chats" or \
        os.sep + "chats" + os.sep in path


def _usage(message: Mapping[str, Any], session: str, project: str, model: str | None
           ) -> Usage | None:
    if message.get("type") != "gemini":
        return None
    tokens = message.get("tokens")
    if not isinstance(tokens, dict) or not tokens:
        return None
    stamp = message.get("timestamp")
    ts = parse_iso_ms(stamp) if isinstance(stamp, str) else None
    if ts is None:
        return None
    inp = count(tokens.get("input"))
    cached = min(count(tokens.get("cached")), inp)
    name = message.get("model") if isinstance(message.get("model"), str) else model
    return Usage(ts, session, project, name or "gemini", inp - cached + count(tokens.get("tool")),
                 count(tokens.get("output")) + count(tokens.get("thoughts")), 0, cached)


def parse(path: str, data: bytes) -> tuple[dict[str, Usage], int]:
    """Usage per ``session/message id`` of one chat file, and its malformed lines."""
    import json  # noqa: PLC0415 - imported by the sources that have files only

    project = os.path.basename(os.path.dirname(os.path.dirname(path)))
    found: dict[str, Usage] = {}
    malformed = 0
    session = os.path.basename(path).rsplit(".", 1)[0]
    model: str | None = None

    def take(messages: Any) -> None:
        if not isinstance(messages, list):
            return
        for message in messages:
            if isinstance(message, dict) and isinstance(message.get("id"), str):
                try:
                    usage = _usage(message, session, project, model)
                except Invalid:
                    nonlocal malformed
                    malformed += 1
                    continue
                if usage is not None:
                    found[session + "\x1f" + message["id"]] = usage

    if path.endswith(".json"):
        try:
            doc = json.loads(data)
        except ValueError:
            return {}, 1
        if isinstance(doc, dict):
            if isinstance(doc.get("sessionId"), str):
                session = doc["sessionId"]
            model = doc.get("model") if isinstance(doc.get("model"), str) else None
            take(doc.get("messages"))
        return found, malformed
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            malformed += 1
            continue
        if not isinstance(record, dict):
            continue
        if isinstance(record.get("sessionId"), str) and "id" not in record:
            session = record["sessionId"]
        elif isinstance(record.get("$set"), dict):
            take(record["$set"].get("messages"))
        elif isinstance(record.get("id"), str):
            take([record])
    return found, malformed
