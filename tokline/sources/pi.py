"""Pi (pi-mono's coding agent): ``sessions/--<cwd>--/<time>_<uuid>.jsonl`` under
PI_CODING_AGENT_DIR or ~/.pi/agent, and the OMP fork's ~/.omp/agent (formats.md §10.6),
append-only, read from the last offset.

Usage is in ``type: "message"`` entries whose ``message.role`` is ``assistant``:
``message.usage`` {input (uncached for every provider), output, cacheRead, cacheWrite,
cost.total}; pi 1.x adds ``reasoning``, which ``output`` already holds (checked against
pi 1.6.0 and 0.73.1 on chat completions).  The file's first line (after an OMP
``title``) is the ``session`` header: session id and directory.

Forks and branches (``--fork``, ``/fork``, ``/clone``) copy the source's entries
verbatim into a new file whose header names it in ``parentSession``: same entry ids,
times and usage (checked against pi 1.6.0 and 0.73.1, tests/test_real_clients_jsonl.py).
So the key comes from the entry, never from the file: ``responseId`` with the entry's
timestamp, else the entry id, timestamp and usage.  A copy lands on its original's row
and adds nothing; the first one read keeps its session.  Not the ``responseId`` alone:
providers (and the fixture's fake one) repeat it, and 8-hex entry ids collide across
sessions (omarchy#8602).

Cost: pi prices each call from its own model table (``usage.cost.total``, USD, an API
price also for subscription logins; pi 1.x takes the provider's own figure where one
is reported, ``totalFromProvider``).  As with OpenCode, that figure is the row's logged
cost when above 0 (``cost_mode = "auto"`` shows it; ``calculate`` prices the tokens
from tokline's table instead): it is the one pi showed, and it covers models tokline's
table lacks.  A provider pi has no prices for (a local or custom one) logs 0, and
tokline prices the tokens itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tokline.engine import validate
from tokline.prompt import lightjson
from tokline.sources.documents import (
    Usage,
    count,
    existing,
    first,
    iso_ms,
    parse_appended,
    split_roots,
    time_ms,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAME = "pi"
SUFFIXES = (".jsonl",)
SESSION_DEPTH = 1  # sessions/--<cwd>--: where a new session's file appears
NEEDLES = (b'"usage"', b'"session"')


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    agents = split_roots(env, "PI_CODING_AGENT_DIR", os.path.join(home, ".pi", "agent"))
    omp = os.path.join(home, ".omp", "agent")
    return [os.path.join(d, "sessions") for d in dict.fromkeys([*agents, omp])]


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    return path.endswith(".jsonl")


class State:
    """The session header's id and directory."""

    __slots__ = ("cwd", "session")

    def __init__(self, text: str | None, path: str) -> None:
        data: dict[str, Any] = lightjson.loads(text) if text else {}
        stem = os.path.basename(path).rsplit(".", 1)[0]
        self.session: str = data.get("session") or stem.rsplit("_", 1)[-1]
        self.cwd: str = data.get("cwd") or ""

    def dump(self) -> str:
        return lightjson.dumps({"session": self.session, "cwd": self.cwd})


def take(record: Mapping[str, Any], state: State, found: dict[str, Usage]) -> None:
    kind = record.get("type")
    if kind == "session":
        if isinstance(record.get("id"), str) and record["id"]:
            state.session = record["id"]
        if isinstance(record.get("cwd"), str):
            state.cwd = record["cwd"]
        return
    message = record.get("message")
    if kind != "message" or not isinstance(message, dict) or message.get("role") != "assistant":
        return
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return
    tokens = (count(usage.get("input")), count(usage.get("output")),
              count(usage.get("cacheRead")), count(usage.get("cacheWrite")))
    if not any(tokens):
        return  # an aborted or failed call: nothing was billed
    stamp = record.get("timestamp")
    ts = iso_ms(stamp)
    if ts is None:
        ts = time_ms(message.get("timestamp"))  # raises Invalid when neither is a time
    cost_block = usage.get("cost")
    cost = validate.cost(cost_block.get("total")) if isinstance(cost_block, dict) else None
    response = message.get("responseId")
    entry = record.get("id")
    when = stamp if isinstance(stamp, str) else str(ts)
    key = f"response\x1f{response}\x1f{when}" if isinstance(response, str) and response else \
        f"entry\x1f{entry if isinstance(entry, str) else ''}\x1f{when}\x1f" + \
        ",".join(map(str, tokens))
    model = message.get("model")
    inp, out, read, write = tokens
    first(found, key, Usage(ts, state.session, state.cwd,
                            model if isinstance(model, str) and model else "unknown",
                            inp, out, write, read, cost if cost else None))


def parse(path: str, data: bytes) -> tuple[dict[str, Usage], int]:
    """Usage per call of one session file, and its malformed lines."""
    return parse_appended(take, NEEDLES, State(None, path), data)
