"""GitHub Copilot CLI: ``session-state/<id>/events.jsonl`` under COPILOT_HOME or
~/.copilot (formats.md §5).

Each ``assistant.message`` carries its output tokens (the model is the one set by the
last ``session.model_change``); ``session.shutdown`` carries the session's full usage
per model.  tokline keeps the replies' output at their own times and adds, at shutdown,
each model's input, cache reads and writes and whatever output the replies did not
account for.  Costs are API-price equivalents: Copilot bills premium requests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tokline.engine.native import parse_iso_ms
from tokline.engine.validate import Invalid
from tokline.sources.documents import Usage, count, existing, split_roots

NAME = "copilot"
SUFFIXES = (".jsonl",)


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    return [os.path.join(d, "session-state") for d in
            split_roots(env, "COPILOT_HOME", os.path.join(home, ".copilot"))]


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    return os.path.basename(path) == "events.jsonl"


def parse(path: str, data: bytes) -> tuple[dict[str, Usage], int]:
    import json  # noqa: PLC0415 - imported by the sources that have files only

    session = os.path.basename(os.path.dirname(path))
    project = ""
    model = "unknown"
    found: dict[str, Usage] = {}
    replied: dict[str, int] = {}
    malformed = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            malformed += 1
            continue
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            continue
        try:
            kind, body = event.get("type"), event["data"]
            stamp = event.get("timestamp")
            ts = parse_iso_ms(stamp) if isinstance(stamp, str) else None
            if kind == "session.start":
                if isinstance(body.get("sessionId"), str):
                    session = body["sessionId"]
                context = body.get("context")
                if isinstance(context, dict) and isinstance(context.get("cwd"), str):
                    project = context["cwd"]
            elif kind == "session.model_change" and isinstance(body.get("newModel"), str):
                model = body["newModel"]
            elif kind == "assistant.message" and ts is not None:
                output = count(body.get("outputTokens"))
                ident = body.get("messageId")
                if output and isinstance(ident, str):
                    found[ident] = Usage(ts, session, project, model, 0, output)
                    replied[model] = replied.get(model, 0) + output
            elif kind == "session.shutdown" and ts is not None:
                metrics = body.get("modelMetrics")
                shutdown: dict[str, Usage] = {}  # all or nothing: one line
                for name, entry in (metrics.items() if isinstance(metrics, dict) else ()):
                    usage = entry.get("usage") if isinstance(entry, dict) else None
                    if not isinstance(usage, dict):
                        continue
                    read = count(usage.get("cacheReadTokens"))
                    write = count(usage.get("cacheWriteTokens"))
                    # reasoningTokens are part of outputTokens (OpenAI-style usage), as
                    # inputTokens hold the cache reads and writes.
                    output = count(usage.get("outputTokens"))
                    shutdown[f"{session}\x1fshutdown\x1f{name}"] = Usage(
                        ts, session, project, name,
                        max(0, count(usage.get("inputTokens")) - read - write),
                        max(0, output - replied.get(name, 0)), write, read)
                found.update(shutdown)
        except Invalid:  # out of tokline/engine/validate.py bounds
            malformed += 1
    return found, malformed
