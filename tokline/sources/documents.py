"""Sources whose files are read whole on every change (Gemini CLI, OpenCode, Copilot CLI),
and the append-only JSON-lines ones read from the last offset (Qwen Code, Pi, Kimi).

Each module turns one file's bytes (or database) into ledger rows keyed by the
assistant's own message id, so reading a file again merges into the same rows (field by
field maximum: a message's counts only grow while it streams) instead of adding any.

An appended source's module has ``NEEDLES`` (a line holding none of them is never
decoded), ``State`` (what a file's earlier lines left behind: ``State(text or None,
path)``, ``dump()``, kept with the file between refreshes) and ``take(record, state,
found)``, which reads one decoded line into ``found``; ``parse_lines`` drives it over
the complete lines of a range, tokline/engine/refresh.py from each file's last offset.

Every count goes through ``count`` and every message through ``Usage``, which hold them
to tokline/engine/validate.py's bounds: out of bounds raises ``Invalid``, and the source
counts that message's line (or file) as malformed instead of storing it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from tokline.engine import validate
from tokline.engine.keys import key64
from tokline.engine.native import codex_candidate_lines as candidate_lines
from tokline.engine.native import parse_iso_ms
from tokline.engine.validate import Invalid
from tokline.ledger.store import CostFn, UsageRow
from tokline.prompt import lightjson

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ContextFn = Callable[[str, str, str, str], int]


class Usage:
    """One message's tokens in the ledger's terms: uncached input, output (reasoning
    included), 5-minute cache writes, cache reads."""

    __slots__ = ("cache_read", "cache_write", "cost_usd", "input", "model", "output",
                 "project", "session", "ts_ms")

    def __init__(self, ts_ms: int, session: str, project: str, model: str, input: int,
                 output: int, cache_write: int = 0, cache_read: int = 0,
                 cost_usd: float | None = None) -> None:
        validate.check_time(ts_ms)
        if not validate.counts_ok((input, output, cache_write, cache_read)):
            raise Invalid(validate.R_COUNT)
        self.ts_ms = ts_ms
        self.session = session
        self.project = project
        self.model = model
        self.input = input
        self.output = output
        self.cache_write = cache_write
        self.cache_read = cache_read
        self.cost_usd = validate.cost(cost_usd)


def first(found: dict[str, Usage], key: str, usage: Usage) -> None:
    """Keep ``usage`` under ``key`` unless a copy with as many tokens came first: what
    the ledger's merge keeps, so a file read at once or in parts gives the same row."""
    before = found.get(key)
    if before is None or _tokens(usage) > _tokens(before):
        found[key] = usage


def _tokens(u: Usage) -> int:
    return u.input + u.output + u.cache_write + u.cache_read


def count(value: object) -> int:
    """A token count (absent: 0); raises Invalid outside validate's bounds."""
    return validate.checked_count(value)


def time_ms(value: object) -> int:
    """An epoch-milliseconds time given as a JSON number; raises Invalid if out of range."""
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise Invalid(validate.R_TIME)
    return validate.check_time(value)


def rows(source: str, keyed: Mapping[str, Usage], context_id: ContextFn,
         cost_of: CostFn | None) -> list[UsageRow]:
    out: list[UsageRow] = []
    for ident, u in keyed.items():
        key = key64("\x1b" + source + "\x1f" + ident, "")
        ctx = context_id(source, u.session, u.project, u.model)
        cost = cost_of(u.model, u.input, u.output, u.cache_write, 0, u.cache_read, 0, 0) \
            if cost_of else None
        out.append((key, u.ts_ms, ctx, u.input, u.output, u.cache_write, 0, u.cache_read, 0,
                    u.cost_usd, 0, cost, 1 if cost_of else 0))
    return out


def existing(directories: list[str]) -> list[str]:
    return [d for d in directories if os.path.isdir(d)]


def split_roots(env: Mapping[str, str], variable: str, default: str) -> list[str]:
    configured = env.get(variable, "").strip()
    if configured:
        return [os.path.expanduser(p.strip()) for p in configured.split(",") if p.strip()]
    return [default]


if TYPE_CHECKING:
    # an appended source's ``take(record, state, found)``
    Take = Callable[[Mapping[str, Any], Any, dict[str, Usage]], None]


def parse_lines(take: Take, needles: tuple[bytes, ...], data: Any, start: int, end: int,
                state: Any, found: dict[str, Usage]) -> int:
    """Hand each complete line of ``data[start:end]`` (``end`` just past a newline) that
    holds one of ``needles`` to ``take``, decoded (the line finder is the compiled or
    pure one Codex uses).  Returns the malformed ones: not JSON, or a count or time out
    of validate's bounds (``take`` raised Invalid)."""
    malformed = 0
    for line in candidate_lines(data, start, end, needles):
        try:
            record = lightjson.loads(line.decode("utf-8", "surrogatepass"), strict=True)
        except ValueError:
            malformed += 1
            continue
        if isinstance(record, dict):
            try:
                take(record, state, found)
            except Invalid:
                malformed += 1
    return malformed


def parse_appended(take: Take, needles: tuple[bytes, ...], state: Any, data: bytes
                   ) -> tuple[dict[str, Usage], int]:
    """A whole appended file (or one line of it: tokline doctor's examples) as the
    whole-file sources' ``parse`` returns it: usage by key, malformed lines."""
    if data and not data.endswith(b"\n"):
        data += b"\n"
    found: dict[str, Usage] = {}
    return found, parse_lines(take, needles, data, 0, len(data), state, found)


def iso_ms(value: object) -> int | None:
    """An ISO-8601 time as epoch milliseconds; None when it is not one (``Usage`` holds
    the result to validate's range)."""
    return parse_iso_ms(value) if isinstance(value, str) else None
