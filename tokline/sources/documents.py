"""Sources whose files are read whole on every change: Gemini CLI, OpenCode, Copilot CLI.

Each module turns one file's bytes (or database) into ledger rows keyed by the
assistant's own message id, so reading a file again merges into the same rows (field by
field maximum: a message's counts only grow while it streams) instead of adding any.

Every count goes through ``count`` and every message through ``Usage``, which hold them
to tokline/engine/validate.py's bounds: out of bounds raises ``Invalid``, and the source
counts that message's line (or file) as malformed instead of storing it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from tokline.engine import validate
from tokline.engine.keys import key64
from tokline.engine.validate import Invalid
from tokline.ledger.store import CostFn, UsageRow

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
