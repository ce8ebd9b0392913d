"""GitHub Copilot CLI: ``session-state/<id>/events.jsonl`` under COPILOT_HOME or
~/.copilot (formats.md §5).

What a file holds per request depends on the release (each checked against the real
CLI, tests/test_real_clients_more.py):

* ``session.usage_record`` (1.0.9x+): one per model request, with its model, input
  (cache reads and writes included), output (reasoning included), cache reads and
  writes.  These are the rows, at their own times, keyed by the record's usage id.
* ``assistant.message`` ``outputTokens`` (up to 1.0.7x): a reply's output only, under
  the model set by the last ``session.model_change``.
* ``session.shutdown`` ``modelMetrics``: per-model totals when a run ends; each
  ``--resume``/``--continue`` run appends another.  Up to 1.0.6x they cover only their
  own run; from 1.0.7x they are the session's running totals.  tokline adds, per model,
  what the totals hold beyond the rows above (all of the input and cache under the
  per-reply format, nothing once every request has a usage record).

Costs are API-price equivalents: Copilot bills premium requests.
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

NAME = "copilot"
SUFFIXES = (".jsonl",)

# Per-model sums in Copilot's own terms: input (cache included), output, reads, writes.
_IN, _OUT, _READ, _WRITE = range(4)
Sums = dict[str, list[int]]


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    return [os.path.join(d, "session-state") for d in
            split_roots(env, "COPILOT_HOME", os.path.join(home, ".copilot"))]


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    return os.path.basename(path) == "events.jsonl"


def _add(sums: Sums, model: str, values: list[int]) -> None:
    into = sums.setdefault(model, [0, 0, 0, 0])
    for i, value in enumerate(values):
        into[i] += value


def _metrics(body: Mapping[str, Any]) -> Sums:
    """A shutdown's per-model totals (raises Invalid on an out-of-bounds count)."""
    metrics = body.get("modelMetrics")
    totals: Sums = {}
    for name, entry in (metrics.items() if isinstance(metrics, dict) else ()):
        usage = entry.get("usage") if isinstance(entry, dict) else None
        if isinstance(usage, dict):
            # reasoningTokens are part of outputTokens (OpenAI-style usage), as
            # inputTokens hold the cache reads and writes.
            totals[name] = [count(usage.get("inputTokens")), count(usage.get("outputTokens")),
                            count(usage.get("cacheReadTokens")),
                            count(usage.get("cacheWriteTokens"))]
    return totals


def _covers_own_run(totals: Sums, run: Sums, earlier: Sums) -> bool:
    """Whether a shutdown's totals are its own run's (up to 1.0.6x) rather than the
    session's (1.0.7x on): told by the output, which the per-request rows account for,
    being nearer the run's or the whole session's.  With no earlier output to tell them
    apart (the first run, or no per-request counts), the totals are the session's."""
    votes = 0
    for name, values in totals.items():
        own = run.get(name, [0, 0, 0, 0])[_OUT]
        before = earlier.get(name, [0, 0, 0, 0])[_OUT]
        if before:
            votes += 1 if abs(values[_OUT] - own) < abs(values[_OUT] - own - before) else -1
    return votes > 0


def _remainder(ts: int, session: str, project: str, name: str, totals: list[int],
               counted: list[int]) -> Usage | None:
    """What ``totals`` hold beyond ``counted``, as a row (None when nothing)."""
    left = [max(0, t - c) for t, c in zip(totals, counted, strict=True)]
    if not any(left):
        return None
    uncached = max(0, left[_IN] - left[_READ] - left[_WRITE])
    return Usage(ts, session, project, name, uncached, left[_OUT], left[_WRITE], left[_READ])


def parse(path: str, data: bytes) -> tuple[dict[str, Usage], int]:
    import json  # noqa: PLC0415 - imported by the sources that have files only

    session = os.path.basename(os.path.dirname(path))
    project = ""
    model = "unknown"
    found: dict[str, Usage] = {}
    malformed = 0
    counted: Sums = {}  # by the rows so far, except the session-totals one
    run: Sums = {}  # by per-request rows of the current run (since its start or resume)
    recorded_calls: set[str] = set()
    shutdowns = 0
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
            if kind in ("session.start", "session.resume"):
                run = {}
            if kind == "session.start":
                if isinstance(body.get("sessionId"), str):
                    session = body["sessionId"]
                context = body.get("context")
                if isinstance(context, dict) and isinstance(context.get("cwd"), str):
                    project = context["cwd"]
                if isinstance(body.get("selectedModel"), str):
                    model = body["selectedModel"]
            elif kind == "session.model_change" and isinstance(body.get("newModel"), str):
                model = body["newModel"]
            elif kind == "session.usage_record" and ts is not None:
                usage = body.get("usage")
                if not isinstance(usage, dict):
                    continue
                name = usage["model"] if isinstance(usage.get("model"), str) else model
                values = [count(usage.get("inputTokens")), count(usage.get("outputTokens")),
                          count(usage.get("cacheReadTokens")),
                          count(usage.get("cacheWriteTokens"))]
                accounting = usage.get("accounting")
                ident = accounting.get("usageId") if isinstance(accounting, dict) else None
                call = usage.get("apiCallId")
                if isinstance(call, str):
                    recorded_calls.add(call)
                ident = ident if isinstance(ident, str) else call if isinstance(call, str) \
                    else event.get("id")
                if not isinstance(ident, str):
                    continue
                found[f"{session}\x1frecord\x1f{ident}"] = Usage(
                    ts, session, project, name,
                    max(0, values[_IN] - values[_READ] - values[_WRITE]), values[_OUT],
                    values[_WRITE], values[_READ])
                _add(counted, name, values)
                _add(run, name, values)
            elif kind == "assistant.message" and ts is not None:
                output = count(body.get("outputTokens"))
                ident = body.get("messageId")
                if not output or not isinstance(ident, str) or \
                        body.get("apiCallId") in recorded_calls:
                    continue
                name = body["model"] if isinstance(body.get("model"), str) else model
                found[ident] = Usage(ts, session, project, name, 0, output)
                _add(counted, name, [0, output, 0, 0])
                _add(run, name, [0, output, 0, 0])
            elif kind == "session.shutdown" and ts is not None:
                totals = _metrics(body)  # all or nothing: one line
                earlier = {name: [c - r for c, r in zip(
                    values, run.get(name, [0, 0, 0, 0]), strict=True)]
                    for name, values in counted.items()}
                if shutdowns and _covers_own_run(totals, run, earlier):
                    # Keyed by its place in the file: each run's totals are new usage.
                    for name, values in totals.items():
                        row = _remainder(ts, session, project, name, values,
                                         run.get(name, [0, 0, 0, 0]))
                        if row is not None:
                            found[f"{session}\x1fshutdown{shutdowns}\x1f{name}"] = row
                            _add(counted, name, [row.input + row.cache_read + row.cache_write,
                                                 row.output, row.cache_read, row.cache_write])
                else:
                    # The session's totals: one row per model, replaced by each later
                    # shutdown (under the key earlier releases of tokline used for it).
                    for name, values in totals.items():
                        row = _remainder(ts, session, project, name, values,
                                         counted.get(name, [0, 0, 0, 0]))
                        if row is not None:
                            found[f"{session}\x1fshutdown\x1f{name}"] = row
                shutdowns += 1
                run = {}
        except Invalid:  # out of tokline/engine/validate.py bounds
            malformed += 1
    return found, malformed
