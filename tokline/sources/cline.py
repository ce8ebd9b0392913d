"""Cline: the classic task files, ``tasks/<task>/ui_messages.json`` of the VS Code
extension (``<editor user dir>/globalStorage/saoudrizwan.claude-dev``, or CLINE_TASKS_DIR)
and of the pre-SDK standalone store (``<data>/tasks``), and the SDK sessions (mid-2026 on),
``<data>/sessions/<id>/<id>.messages.json`` (formats.md §10.3).  ``<data>`` is
CLINE_DATA_DIR, else ``$CLINE_DIR/data``, else ~/.cline/data; CLINE_SESSION_DATA_DIR names
the sessions directory itself.  All are rewritten whole.

Classic tasks are read by tokline/sources/roo.py with Cline's rules: ``tokensIn`` is the
uncached input (the four buckets are disjoint); ``say:"subagent_usage"`` rows (a subagent
batch's usage) count; ``say:"deleted_api_reqs"`` holds the sum of the calls a checkpoint
restore deleted, earlier sums included: it counts for what tokline had not read of them.
The model is the message's ``modelInfo``, else the last model ``task_metadata.json``
recorded at or before the call.

SDK sessions: one row per assistant message with ``metrics``, keyed by its id and time.
``inputTokens`` is the whole request, cache reads and writes included, so the uncached
input is what is left without them; the model is the message's ``modelInfo.id``, the cost
``metrics.cost``.  A fork copies its parent's messages (ids, times and metrics): keyed
without the session, a copy merges into the original.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tokline.engine import validate
from tokline.engine.validate import Invalid
from tokline.sources import roo
from tokline.sources.documents import Usage, count, existing, time_ms

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAME = "cline"
SUFFIXES = (".json",)
EXTENSION = "saoudrizwan.claude-dev"
SESSION_FILE = ".messages.json"

RULES = roo.Rules(lambda ts, tokens_in, cache: False, "deleted_api_reqs", True,
                  {"api_req_started": roo.API, "subagent_usage": roo.SUBAGENTS}, False)


def data_dir(env: Mapping[str, str]) -> str:
    home = env.get("HOME") or os.path.expanduser("~")
    if env.get("CLINE_DATA_DIR", "").strip():
        return os.path.expanduser(env["CLINE_DATA_DIR"].strip())
    if env.get("CLINE_DIR", "").strip():
        return os.path.join(os.path.expanduser(env["CLINE_DIR"].strip()), "data")
    return os.path.join(home, ".cline", "data")


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    data = data_dir(env)
    sessions = env.get("CLINE_SESSION_DATA_DIR", "").strip()
    return [os.path.expanduser(sessions) if sessions else os.path.join(data, "sessions"),
            os.path.join(data, "tasks"),
            *roo.extension_tasks(env, "CLINE_TASKS_DIR", EXTENSION)]


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    name = os.path.basename(path)
    return name == roo.TASK_FILE or name.endswith(SESSION_FILE)


def parse(path: str, data: bytes) -> tuple[dict[str, Usage], int]:
    found, malformed, _ = parse_state(path, data, None)
    return found, malformed


def parse_state(path: str, data: bytes, state: str | None
                ) -> tuple[dict[str, Usage], int, str | None]:
    if os.path.basename(path) == roo.TASK_FILE:
        return roo.parse_task(path, data, state, RULES)
    found, malformed = _session(path, data)
    return found, malformed, None


def _session(path: str, data: bytes) -> tuple[dict[str, Usage], int]:
    """An SDK session's ``<id>.messages.json``: usage per message."""
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        doc = json.loads(data)
    except ValueError:
        return {}, 1
    if not isinstance(doc, dict) or not isinstance(doc.get("messages"), list):
        return {}, 0
    directory = os.path.dirname(path)
    session = doc["sessionId"] if isinstance(doc.get("sessionId"), str) else \
        os.path.basename(path)[:-len(SESSION_FILE)]
    manifest = _manifest(directory, session)
    project = next((manifest[k] for k in ("cwd", "workspace_root")
                    if isinstance(manifest.get(k), str)), "")
    default_model = manifest["model"] if isinstance(manifest.get("model"), str) else "unknown"
    found: dict[str, Usage] = {}
    malformed = 0
    for message in doc["messages"]:
        if not isinstance(message, dict) or message.get("role") != "assistant" or \
                not isinstance(message.get("metrics"), dict) or \
                not isinstance(message.get("id"), str):
            continue
        try:
            usage = _usage(message, session, project, default_model)
        except Invalid:
            malformed += 1
            continue
        if usage is not None:
            found[f"sdk\x1f{message['id']}\x1f{usage.ts_ms}"] = usage
    return found, malformed


def _manifest(directory: str, session: str) -> Mapping[str, Any]:
    """The session's ``<id>.json`` beside its messages: its working directory, model."""
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        with open(os.path.join(directory, f"{session}.json"), "rb") as fh:
            doc = json.loads(fh.read(1 << 20))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _usage(message: Mapping[str, Any], session: str, project: str, default_model: str
           ) -> Usage | None:
    metrics = message["metrics"]
    total = count(metrics.get("inputTokens"))
    read, write = count(metrics.get("cacheReadTokens")), count(metrics.get("cacheWriteTokens"))
    out = count(metrics.get("outputTokens"))
    cost = metrics.get("cost")
    cost = validate.cost(cost) if type(cost) in (int, float) else None
    if total + out + read + write == 0:
        return None
    info = message.get("modelInfo")
    model = info.get("id") if isinstance(info, dict) else None
    return Usage(time_ms(message.get("ts")), session, project,
                 model if isinstance(model, str) and model else default_model,
                 max(0, total - read - write), out, write, read, cost or None)
