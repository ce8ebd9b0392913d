"""Crush (Charm): one ``crush.db`` per project, in the project's data directory (``.crush``
by default), the projects listed in ``projects.json`` of Crush's global data directory:
``$CRUSH_GLOBAL_DATA``, else ``$XDG_DATA_HOME/crush``, else ``~/.local/share/crush`` (the
same on macOS) (formats.md §10.9).

Only a root session's ``cost`` is reliable: Crush adds each call's cost to it (and a
sub-agent session's cost to its parent's), while its token columns hold only the last
call.  So a Crush row holds no tokens, only the growth of a root session's cost
(tokline/sources/totals.py), as the client's cost, under the model of the session's last
assistant message; it is dated at the session's ``updated_at`` (Unix seconds, moved by
Crush's trigger on every update).

The databases live outside any fixed directory: ``roots`` are the global data directory
(so a change of ``projects.json`` is seen) and each listed project's data directory that
exists.  An incremental refresh that meets a changed ``projects.json`` walks every root
again (``moves_roots``).  Each database is read-only, from the newest ``updated_at`` seen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tokline.engine.validate import Invalid
from tokline.sources.documents import existing
from tokline.sources.totals import Reading, columns, open_db

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAME = "crush"
SUFFIXES = (".db", ".db-wal", ".json")
RUNNING_TOTALS = True
DB_NAME = "crush.db"
PROJECTS = "projects.json"
PROJECTS_LIMIT = 4 << 20  # bytes of projects.json read


def global_dir(env: Mapping[str, str]) -> str:
    configured = env.get("CRUSH_GLOBAL_DATA", "").strip()
    if configured:
        return os.path.expanduser(configured)
    base = env.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "crush")


def project_dirs(env: Mapping[str, str]) -> list[str]:
    """The data directories ``projects.json`` lists (a relative one is the project's)."""
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        with open(os.path.join(global_dir(env), PROJECTS), "rb") as fh:
            doc = json.loads(fh.read(PROJECTS_LIMIT))
    except (OSError, ValueError):
        return []
    listed = doc.get("projects") if isinstance(doc, dict) else None
    found: list[str] = []
    for project in listed if isinstance(listed, list) else []:
        if not isinstance(project, dict) or not isinstance(project.get("path"), str):
            continue
        data_dir = project.get("data_dir")
        if not isinstance(data_dir, str) or not data_dir.strip():
            data_dir = ".crush"
        path = os.path.join(project["path"], os.path.expanduser(data_dir))
        if os.path.isabs(path):
            found.append(os.path.normpath(path))
    return list(dict.fromkeys(found))


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    return [global_dir(env), *project_dirs(env)]


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    return os.path.basename(path) in (DB_NAME, DB_NAME + "-wal")


def moves_roots(path: str, env: Mapping[str, str]) -> bool:
    """A changed file that changes the roots: the global ``projects.json``."""
    return os.path.basename(path) == PROJECTS and \
        os.path.dirname(path) == os.path.normpath(global_dir(env))


def parse(path: str, data: bytes) -> tuple[list[Reading], int]:
    return [], 0  # only the databases hold usage


def project_of(db_path: str) -> str:
    """The project a database belongs to: the parent of a hidden data directory
    (``<project>/.crush``), else the data directory itself."""
    data_dir = os.path.dirname(db_path)
    return os.path.dirname(data_dir) if os.path.basename(data_dir).startswith(".") else data_dir


def time_ms(value: object) -> int | None:
    """``updated_at``: Unix seconds (milliseconds if a later Crush writes them)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if type(value) is not int or value <= 0:
        return None
    return value if value >= 10**11 else value * 1000


def parse_db(path: str, since: int) -> tuple[list[Reading], int]:
    """Root sessions updated at or after ``since`` (Crush's own ``updated_at`` units);
    their costs, and the newest ``updated_at`` seen."""
    found: list[Reading] = []
    newest = since
    project = project_of(path)
    db = open_db(path)
    try:
        have = columns(db, "sessions")
        if not {"id", "cost", "updated_at"} <= have:
            return [], since
        root = "(parent_session_id IS NULL OR parent_session_id = '')" \
            if "parent_session_id" in have else "1"
        model_of = _models(db)
        for ident, cost, updated in db.execute(
                f"SELECT id, cost, updated_at FROM sessions WHERE {root} AND updated_at >= ?",
                (since,)):
            if isinstance(updated, (int, float)):
                newest = max(newest, int(updated))
            if not isinstance(cost, (int, float)) or isinstance(cost, bool) or cost <= 0:
                continue
            try:
                found.append(Reading(str(ident), str(ident), project, model_of(str(ident)),
                                     0, 0, 0, 0, cost, time_ms(updated)))
            except Invalid:
                continue  # out of validate's bounds: a database row has no line to report
    finally:
        db.close()
    return found, newest


def _models(db: Any) -> Any:
    """session id -> the model of its last assistant message ("unknown": none)."""
    have = columns(db, "messages")
    if not {"session_id", "role", "model"} <= have:
        return lambda _ident: "unknown"
    order = "created_at DESC, rowid DESC" if "created_at" in have else "rowid DESC"

    def model(ident: str) -> str:
        row = db.execute(
            "SELECT model FROM messages WHERE session_id = ? AND role = 'assistant'"
            f" AND model IS NOT NULL AND model != '' ORDER BY {order} LIMIT 1",
            (ident,)).fetchone()
        return str(row[0]) if row else "unknown"

    return model
