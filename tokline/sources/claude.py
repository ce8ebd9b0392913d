"""Claude Code: ``projects/**/*.jsonl`` under each config root (formats.md §1).

Dedup key (§1.7): (message.id, requestId) across all files; (sessionId, message.id)
when requestId is missing; a line without message.id is its own entry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from tokline.engine.keys import key64
from tokline.engine.records import F_SIDECHAIN, Record
from tokline.ledger.store import CostFn, UsageRow

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tokline.engine.filescan import FileScan
    from tokline.ledger.store import UsageBatch

NAME = "claude"


def configured_dirs(env: Mapping[str, str]) -> list[str]:
    """The directories CLAUDE_CONFIG_DIR names (comma separated); empty when unset."""
    configured = env.get("CLAUDE_CONFIG_DIR", "").strip()
    return [os.path.expanduser(p.strip()) for p in configured.split(",") if p.strip()]


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    """Every ``projects`` directory that would be read if it existed."""
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    candidates = configured_dirs(env)
    if not candidates:
        xdg = env.get("XDG_CONFIG_HOME") or ""
        xdg_base = xdg if os.path.isabs(xdg) else os.path.join(home, ".config")
        candidates = [os.path.join(xdg_base, "claude"), os.path.join(home, ".claude")]
    projects_dirs: list[str] = []
    for candidate in candidates:
        if os.path.basename(os.path.normpath(candidate)) == "projects" and os.path.isdir(candidate):
            projects_dirs.append(candidate)
        else:
            projects_dirs.append(os.path.join(candidate, "projects"))
    return projects_dirs


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    """``projects`` directories to read: CLAUDE_CONFIG_DIR (comma separated) or both defaults."""
    found: list[str] = []
    for projects in candidate_roots(env):
        real = os.path.realpath(projects)
        if os.path.isdir(projects) and real not in {os.path.realpath(f) for f in found}:
            found.append(projects)
    return found


def file_identity(path: str) -> tuple[str, str]:
    """(session id, project dir name) implied by a file's place, for lines that lack them."""
    parts = path.replace(os.sep, "/").split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    if len(parts) >= 4 and parts[-2] == "subagents":
        return parts[-3], parts[-4]
    return stem, parts[-2] if len(parts) >= 2 else ""


ContextFn = Callable[[str, str, str, str], int]


RatesFn = Callable[[str], "tuple[float | int, ...] | float | None"]


def add_usage_rows(batch: UsageBatch, found: FileScan, context_id: ContextFn,
                   sidechain_ids: set[str], main_ids: set[str] | None,
                   cost_of: CostFn | None = None, rates: RatesFn | None = None) -> int:
    """The ledger rows of one file's records into ``batch`` (as ``usage_rows`` makes
    them); returns how many records there were.  The compiled writer's batch takes the
    compiled reader's deferred records as rows built in C (ext/_claude_c.pyx
    Pending.rows), costs computed from ``rates`` (PriceBook.rates, cost_of's terms), so
    no Python object is made per row; else the records are built and ``usage_rows`` runs."""
    deferred = found.deferred
    add_packed: Any = getattr(batch, "add_packed", None)
    path = found.state.path
    if deferred is not None and add_packed is not None and (cost_of is None or rates) \
            and not any(pending.slow for pending, _ in deferred.parts):
        resolve = _context_of(path, context_id, rates if cost_of is not None else None)
        session_default = file_identity(path)[0]
        count = 0
        for pending, base in deferred.parts:
            packed, made = pending.rows(base, path, session_default, resolve, sidechain_ids,
                                        main_ids, cost_of is not None)
            add_packed(packed)
            count += made
        return count
    records = found.records
    batch.extend(usage_rows(records, path, context_id, sidechain_ids, main_ids, cost_of))
    return len(records)


def _context_of(path: str, context_id: ContextFn, rates: RatesFn | None
                ) -> Callable[[str | None, str | None, str | None], tuple[int, Any]]:
    """(session, cwd, model) of a record -> (its context id, its model's rates), asked in
    the order usage_rows asks, so contexts get the same ids."""
    session_default, project_default = file_identity(path)
    contexts: dict[tuple[str | None, str | None, str | None], tuple[int, Any]] = {}

    def resolve(sid: str | None, cwd: str | None, model: str | None) -> tuple[int, Any]:
        found = contexts.get((sid, cwd, model))
        if found is None:
            found = contexts[(sid, cwd, model)] = (
                context_id(NAME, sid or session_default, cwd or project_default,
                           model or "unknown"),
                rates(model or "unknown") if rates is not None else None)
        return found

    return resolve


def usage_rows(records: list[Record], path: str, context_id: ContextFn,
               sidechain_ids: set[str], main_ids: set[str] | None,
               cost_of: CostFn | None = None) -> list[UsageRow]:
    """Ledger rows for the records of one file; collects message ids for the sidechain
    rule (``main_ids`` None: only the sidechain ones)."""
    session_default, project_default = file_identity(path)
    contexts: dict[tuple[str | None, str | None, str | None], int] = {}
    rows: list[UsageRow] = []
    append = rows.append
    for (offset, ts_ms, mid, rid, sid, model, cwd, inp, out, c5m, c1h, cread, web, cost,
         flags) in records:
        if mid is not None and rid is not None:
            key = key64(mid, rid)
            if flags & F_SIDECHAIN:
                sidechain_ids.add(mid)
            elif main_ids is not None:
                main_ids.add(mid)
        elif mid is not None:
            # Whole key in the 48-bit half: a session holds many message ids.
            key = key64("\x1e" + (sid or session_default) + "\x1f" + mid, "")
        else:
            key = key64("\x1d" + path + "\x1f" + str(offset), "")
        ctx = contexts.get((sid, cwd, model))
        if ctx is None:
            ctx = contexts[(sid, cwd, model)] = context_id(
                NAME, sid or session_default, cwd or project_default, model or "unknown")
        if cost_of is None:
            append((key, ts_ms, ctx, inp, out, c5m, c1h, cread, web, cost, flags, None, 0))
        else:
            priced = cost_of(model or "unknown", inp, out, c5m, c1h, cread, web, flags)
            append((key, ts_ms, ctx, inp, out, c5m, c1h, cread, web, cost, flags, priced, 1))
    return rows
