"""Amp (Sourcegraph): ``threads/T-*.json``, one thread per file rewritten whole, under
AMP_DATA_DIR (comma list, ccusage's name) or $XDG_DATA_HOME/amp (formats.md §10.2).

A thread's usage is in its ``usageLedger.events`` (one per inference, with the model and
the input and output) and in its assistant messages' ``usage`` (the current format, with
the cache split).  Each inference is counted once: a ledger event, keyed by its id, takes
the cache reads and writes of the message its ``toMessageId`` points to (an event without
one, the first message left with its model, input and output); a message's own usage
counts only when no event stands for it.  Rows are dated by their own timestamps; rows of
zeros are skipped; a count given only as a total is output.  ``inputTokens`` is the
uncached input (``totalInputTokens`` adds the cache to it).  Amp bills credits, not
dollars: tokline prices the tokens.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tokline.engine.native import parse_iso_ms
from tokline.engine.validate import Invalid
from tokline.sources.documents import Usage, count, existing
from tokline.sources.opencode import data_home

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAME = "amp"
SUFFIXES = (".json",)


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    configured = env.get("AMP_DATA_DIR", "").strip()
    dirs = [os.path.expanduser(p.strip()) for p in configured.split(",") if p.strip()] \
        if configured else [os.path.join(data_home(env), "amp")]
    return [os.path.join(d, "threads") for d in dirs]


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    name = os.path.basename(path)
    return name.startswith("T-") and name.endswith(".json")


def _time(value: object) -> int | None:
    return parse_iso_ms(value) if isinstance(value, str) else None


def _tokens(inp: object, out: object, total: object, write: int, read: int
            ) -> tuple[int, int]:
    """(input, output); a count given only as a total is taken as output (as ccusage)."""
    i, o = count(inp), count(out)
    return (i, o) if i or o or write or read else (0, count(total))


def parse(path: str, data: bytes) -> tuple[dict[str, Usage], int]:
    """Usage per ledger event or unclaimed message of one thread, and its malformed
    entries."""
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        doc = json.loads(data)
    except ValueError:
        return {}, 1  # caught mid-write: the next change reads it again
    if not isinstance(doc, dict):
        return {}, 0
    thread = doc["id"] if isinstance(doc.get("id"), str) and doc["id"] else \
        os.path.basename(path)[:-len(".json")]
    messages = [m for m in doc.get("messages") or () if isinstance(m, dict)
                and m.get("role") == "assistant" and isinstance(m.get("usage"), dict)]
    ledger = doc.get("usageLedger")
    events = [e for e in (ledger.get("events") or () if isinstance(ledger, dict) else ())
              if isinstance(e, dict) and isinstance(e.get("tokens"), dict)]
    by_id = {m["messageId"]: m for m in messages if type(m.get("messageId")) is int}
    claimed: set[int] = set()  # id() of the messages an event stands for
    found: dict[str, Usage] = {}
    malformed = 0
    pending: list[tuple[int, dict[str, Any]]] = []  # events that point to no message
    for index, event in enumerate(events):
        to = event.get("toMessageId")
        target = by_id.get(to) if type(to) is int else None
        if target is not None:
            claimed.add(id(target))
            malformed += _event(found, thread, index, event, target)
        else:
            pending.append((index, event))
    for index, event in pending:
        target = _same_call(event, messages, claimed)
        if target is not None:
            claimed.add(id(target))
        malformed += _event(found, thread, index, event, target)
    for message in messages:
        if id(message) in claimed:
            continue
        usage = message["usage"]
        try:
            ts = _time(usage.get("timestamp")) or _time(message.get("timestamp"))
            write = count(usage.get("cacheCreationInputTokens"))
            read = count(usage.get("cacheReadInputTokens"))
            inp, out = _tokens(usage.get("inputTokens"), usage.get("outputTokens"),
                               usage.get("totalTokens"), write, read)
            model = usage.get("model") if isinstance(usage.get("model"), str) else \
                message.get("model")
            if ts is None or inp + out + write + read == 0:
                continue
            ident = message.get("messageId")
            key = f"{thread}\x1fmessage\x1f{ident}" if type(ident) in (int, str) else \
                f"{thread}\x1fmessage@{ts}"
            found[key] = Usage(ts, thread, "", model if isinstance(model, str) and model
                               else "unknown", inp, out, write, read)
        except Invalid:
            malformed += 1
    return found, malformed


def _same_call(event: Mapping[str, Any], messages: list[dict[str, Any]],
               claimed: set[int]) -> dict[str, Any] | None:
    """The first message no event has claimed with the event's model, input and output."""
    tokens = event["tokens"]
    for message in messages:
        usage = message["usage"]
        if id(message) not in claimed and usage.get("model") == event.get("model") and \
                usage.get("inputTokens") == tokens.get("input") and \
                usage.get("outputTokens") == tokens.get("output"):
            return message
    return None


def _event(found: dict[str, Usage], thread: str, index: int, event: Mapping[str, Any],
           message: Mapping[str, Any] | None) -> int:
    """Add a ledger event's row; returns 1 when it is malformed."""
    tokens = event["tokens"]
    cache = message["usage"] if message is not None else {}
    try:
        write = count(cache.get("cacheCreationInputTokens"))
        read = count(cache.get("cacheReadInputTokens"))
        inp, out = _tokens(tokens.get("input"), tokens.get("output"), tokens.get("total"),
                           write, read)
        ts = _time(event.get("timestamp"))
        if ts is None or inp + out + write + read == 0:
            return 0
        ident = event.get("id")
        key = f"{thread}\x1fevent\x1f{ident}" if isinstance(ident, str) and ident else \
            f"{thread}\x1fevent#{index}"
        model = event.get("model")
        found[key] = Usage(ts, thread, "", model if isinstance(model, str) and model
                           else "unknown", inp, out, write, read)
    except Invalid:
        return 1
    return 0
