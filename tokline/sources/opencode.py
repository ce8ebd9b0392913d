"""OpenCode: legacy ``storage/message/<session>/<message>.json`` files and the SQLite
``opencode*.db`` (v1 ``message`` table, v2 ``session_message``) under OPENCODE_DATA_DIR or
$XDG_DATA_HOME/opencode (formats.md §4).

One usage per assistant message id.  ``tokens.input`` is the uncached input, cache
reads and writes are separate, and reasoning is billed at the output rate on top of
``output``.  OpenCode's own ``cost`` is used when above 0 (it is 0 for subscription
providers, whose tokens tokline prices).  The database is opened read-only through
SQLite (never mapped: a writer may be active) and read again from the newest update
time seen.  Forks copy their parent's messages with new ids: v2 copies up to the fork
boundary, v1 and legacy-storage (``run --fork``) copies that keep the original's creation
time and counts; all are skipped.  Kilo's ``kilo.db`` has this schema (an OpenCode fork):
tokline/sources/kilo.py reads it with ``parse_db``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping

from tokline.engine import validate
from tokline.engine.validate import Invalid
from tokline.sources.documents import Usage, count, existing, split_roots, time_ms

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAME = "opencode"
SUFFIXES = (".json", ".db", ".db-wal")


def data_home(env: Mapping[str, str]) -> str:
    """$XDG_DATA_HOME, or ~/.local/share (on macOS too: OpenCode and Kilo use xdg-basedir)."""
    base = env.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "share")
    return base


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    return split_roots(env, "OPENCODE_DATA_DIR", os.path.join(data_home(env), "opencode"))


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    name = os.path.basename(path)
    if name.endswith((".db", ".db-wal")):
        return name.startswith("opencode")
    return (os.sep + "storage" + os.sep + "message" + os.sep) in path


def usage_of(data: Mapping[str, Any], session: str, project: str) -> Usage | None:
    """An assistant message's usage (role absent counts: some writers leave it out)."""
    if data.get("role", "assistant") != "assistant" or data.get("summary") is True:
        return None
    tokens = data.get("tokens")
    if not isinstance(tokens, dict):
        return None
    cache = tokens.get("cache")
    if not isinstance(cache, dict):
        cache = {}
    inp, out = count(tokens.get("input")), count(tokens.get("output"))
    reasoning = count(tokens.get("reasoning"))
    read, write = count(cache.get("read")), count(cache.get("write"))
    # Before AI SDK 6 (OpenCode 1.1, checked) an OpenAI reply's output already held the
    # reasoning that is stored again apart, and OpenCode's cost charged it twice; its
    # total then adds up without the reasoning.  Since (1.18) output excludes it.
    total = tokens.get("total")
    inside = reasoning > 0 and type(total) is int and total == inp + out + read + write
    if not inside:
        out += reasoning
    if inp + out + read + write == 0:
        return None
    created = (data.get("time") or {}).get("created") if isinstance(data.get("time"), dict) \
        else None
    if not isinstance(created, (int, float)):
        return None
    created = time_ms(created)  # raises Invalid out of validate's bounds
    model = data.get("modelID")
    if isinstance(data.get("model"), dict):  # v2: {id, providerID}
        model = data["model"].get("id")
    cost = data.get("cost")
    path = data.get("path")
    cwd = path.get("cwd") if isinstance(path, dict) else None
    cost = validate.cost(cost) if isinstance(cost, (int, float)) and not inside else None
    return Usage(created, session, cwd or project, model if isinstance(model, str) else
                 "unknown", inp, out, write, read, cost if cost else None)


def parse(path: str, data: bytes) -> tuple[dict[str, Usage], int]:
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        doc = json.loads(data)
    except ValueError:
        return {}, 1
    if not isinstance(doc, dict):
        return {}, 0
    session_dir = os.path.basename(os.path.dirname(path))
    session = str(doc["sessionID"]) if isinstance(doc.get("sessionID"), str) else session_dir
    try:
        usage = usage_of(doc, session, session_dir)
    except Invalid:
        return {}, 1
    ident = str(doc["id"]) if isinstance(doc.get("id"), str) else os.path.basename(path)
    if usage is None or _fork_copy(ident, doc):
        return {}, 0
    return {ident: usage}, 0


def _fork_copy(ident: str, doc: Mapping[str, Any]) -> bool:
    """A legacy-storage message that ``opencode run --fork`` (1.1, checked) copied from
    the parent session: a new id in the fork's directory, no link back, the original's
    times and counts.  OpenCode's ids begin with their creation time (``msg_`` and 12 hex
    digits: milliseconds × 4096 plus a counter, in 48 bits), which for a copy is the
    fork's, not the ``time.created`` it kept; an original's agree to the millisecond."""
    stamp = ident[4:16]
    times = doc.get("time")
    created = times.get("created") if isinstance(times, dict) else None
    if len(ident) != 30 or not ident.startswith("msg_") or not isinstance(
            created, (int, float)) or stamp.strip("0123456789abcdef"):
        return False
    delta = (int(stamp, 16) - int(created) * 4096) % (1 << 48)
    if delta >= 1 << 47:
        delta -= 1 << 48
    return abs(delta) > 4096 * 1000  # a second apart: a copy made later


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def parse_db(path: str, since: int) -> tuple[dict[str, Usage], int]:
    """Messages updated at or after ``since`` (ms); returns them and the newest update."""
    found: dict[str, Usage] = {}
    newest = since
    uri = "file:" + path.replace("?", "%3f").replace("#", "%23") + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=5)
    try:
        tables = _tables(db)
        if "message" in tables:
            directory = "s.directory" if "session" in tables and "directory" in _columns(
                db, "session") else "NULL"
            join = "LEFT JOIN session s ON s.id = m.session_id" if directory != "NULL" else ""
            created: dict[str, tuple[int, str]] = {}
            for ident, session, data, updated, made, cwd in db.execute(
                    f"SELECT m.id, m.session_id, m.data, m.time_updated, m.time_created,"
                    f" {directory} FROM message m {join} WHERE m.time_updated >= ?", (since,)):
                newest = max(newest, int(updated or 0))
                usage = _from_row(data, session, cwd or "")
                if usage is not None:
                    found[ident] = usage
                    if isinstance(made, int):
                        created[ident] = (made, _fingerprint(data))
            for ident in _fork_copies(db, created):
                del found[ident]
        if "session_message" in tables:
            copied = _fork_boundaries(db, tables)
            for ident, session, seq, data, updated in db.execute(
                    "SELECT id, session_id, seq, data, time_updated FROM session_message"
                    " WHERE type = 'assistant' AND time_updated >= ?", (since,)):
                newest = max(newest, int(updated or 0))
                if session in copied and seq is not None and seq <= copied[session]:
                    continue  # the parent's message, copied into the fork
                usage = _from_row(data, session, "")
                if usage is not None:
                    found[ident] = usage
    finally:
        db.close()
    return found, newest


def _fingerprint(data: Any) -> str:
    """What a v1 fork's copy of a message keeps from the original: its times, tokens and
    model (the copy has a new id, session and parent message; Kilo's copy, checked with
    Kilo CLI 7.7, also a cost of 0, so the cost is left out)."""
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        doc = json.loads(data) if isinstance(data, (str, bytes)) else None
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    return json.dumps([doc.get(k) for k in ("time", "tokens", "modelID", "model",
                                            "providerID")], sort_keys=True)


def _fork_copies(db: sqlite3.Connection, created: dict[str, tuple[int, str]]) -> list[str]:
    """Messages of ``created`` (id: creation time, fingerprint) that copy an older one.

    ``opencode run --fork`` (v1 ``message`` table, checked with 1.18) copies the parent's
    messages into the new session with new, later ids and no link back (the session has
    no parent_id); the copy keeps ``time_created`` and every count.  A message is a copy
    when a message with a smaller id has the same creation time and fingerprint.
    """
    import json  # noqa: PLC0415 - imported by the sources that have files only

    if not created:
        return []
    times = sorted({made for made, _ in created.values()})
    try:  # one pass over the (session, time_created, id) index, whatever the batch size
        same_time = db.execute(
            "SELECT id, time_created FROM message WHERE time_created IN"
            " (SELECT value FROM json_each(?))", (json.dumps(times),)).fetchall()
    except sqlite3.OperationalError:  # an SQLite built without JSON functions
        same_time = []
        for start in range(0, len(times), 500):
            chunk = times[start:start + 500]
            same_time += db.execute(
                "SELECT id, time_created FROM message WHERE time_created IN"
                f" ({','.join('?' * len(chunk))})", chunk).fetchall()
    by_time: dict[int, list[str]] = {}
    for ident, made in same_time:
        by_time.setdefault(made, []).append(ident)
    older = {ident: [o for o in by_time.get(made, ()) if o < ident]
             for ident, (made, _) in created.items()}
    wanted = sorted({o for others in older.values() for o in others})
    prints: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        ids = wanted[start:start + 500]
        for ident, data in db.execute(
                f"SELECT id, data FROM message WHERE id IN ({','.join('?' * len(ids))})", ids):
            prints[ident] = _fingerprint(data)
    return [ident for ident, others in older.items()
            if any(prints.get(o) == created[ident][1] for o in others)]


def _fork_boundaries(db: sqlite3.Connection, tables: set[str]) -> dict[str, int]:
    """Fork sessions and the last ``seq`` they copied from their parent."""
    if "session_v2" not in tables or not {"fork_session_id", "fork_boundary"} <= _columns(
            db, "session_v2"):
        return {}
    return {child: int(boundary) for child, boundary in db.execute(
        "SELECT id, fork_boundary FROM session_v2 WHERE fork_session_id IS NOT NULL"
        " AND fork_boundary IS NOT NULL")}


def _from_row(data: Any, session: str, project: str) -> Usage | None:
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        doc = json.loads(data) if isinstance(data, (str, bytes)) else None
    except ValueError:
        return None
    try:
        return usage_of(doc, session, project) if isinstance(doc, dict) else None
    except Invalid:
        return None  # out of validate's bounds: a database row has no line to report
