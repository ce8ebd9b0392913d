"""Goose (Block): ``sessions.db`` under ``$GOOSE_PATH_ROOT/data/sessions``, else
``~/.local/share/goose/sessions`` (and ``~/.local/share/Block/goose/sessions``; on macOS
``~/Library/Application Support/Block/goose/sessions`` and ``…/goose/sessions``, as
ccusage probes them) (formats.md §10.8).

Goose keeps per session ``accumulated_*`` totals (input, output, total, and in newer
builds cache reads, cache writes and ``accumulated_cost``) beside ``input/output/
total_tokens``, which hold only the latest call (compaction rewrites those; they are not
read).  tokline/sources/totals.py turns the accumulated totals into increases between
reads, dated at the session's ``updated_at`` (which every usage update moves).

Counts: Goose's input includes cache reads and writes (its Anthropic and OpenAI formats
add them in), so the uncached input is input − cache read − cache write where the
cache columns exist (otherwise all of it is input: older builds keep no split);
``total − input − output`` is reasoning billed as output (Gemini's thoughts), as ccusage
counts it.  ``accumulated_cost``, when set, is Goose's own cost and is used.  Subagent
sessions have their own rows with their own totals (Goose sums the tree when it shows a
parent), so every session counts.  A session is known by its id and creation time: Goose
numbers sessions per day, and an id freed by a deletion is given again.

The database is opened read-only (tokline/sources/totals.py ``open_db``) and read from a
day before the newest ``updated_at`` seen (its text format has varied; re-reading a day
of sessions costs little and adds nothing).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Mapping

from tokline.engine.validate import Invalid
from tokline.sources.documents import existing
from tokline.sources.totals import Reading, columns, open_db
from tokline.units import DAY_MS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAME = "goose"
SUFFIXES = (".db", ".db-wal")
RUNNING_TOTALS = True
DB_NAME = "sessions.db"
_OPTIONAL = ("accumulated_cache_read_tokens", "accumulated_cache_write_tokens",
             "accumulated_cost", "created_at", "working_dir", "provider_name",
             "model_config_json")


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    configured = env.get("GOOSE_PATH_ROOT", "").strip()
    if configured:
        return [os.path.join(os.path.expanduser(configured), "data", "sessions")]
    home = env.get("HOME") or os.path.expanduser("~")
    base = env.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(home, ".local", "share")
    found = [os.path.join(base, "goose", "sessions"),
             os.path.join(base, "Block", "goose", "sessions")]
    if sys.platform == "darwin":
        support = os.path.join(home, "Library", "Application Support")
        found += [os.path.join(support, "Block", "goose", "sessions"),
                  os.path.join(support, "goose", "sessions")]
    return list(dict.fromkeys(found))


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    return os.path.basename(path) in (DB_NAME, DB_NAME + "-wal")


def parse(path: str, data: bytes) -> tuple[list[Reading], int]:
    return [], 0  # only the database holds usage


def time_ms(value: object) -> int | None:
    """``updated_at`` as Goose writes it: SQLite's ``YYYY-MM-DD HH:MM:SS`` (UTC), or an
    RFC 3339 text with zone and fraction (older builds, through sqlx)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp() * 1000)


def _model(config: Any, provider: Any) -> str:
    import json  # noqa: PLC0415 - imported by the sources that have files only

    if isinstance(config, str) and config.strip():
        try:
            doc = json.loads(config)
        except ValueError:
            doc = None
        name = doc.get("model_name") if isinstance(doc, dict) else None
        if isinstance(name, str) and name.strip():
            return name.strip()
    return f"{provider}-unknown" if isinstance(provider, str) and provider else "unknown"


def parse_db(path: str, since: int) -> tuple[list[Reading], int]:
    """Sessions updated since a day before ``since`` (ms); their totals, and the newest
    update time seen."""
    found: list[Reading] = []
    newest = since
    db = open_db(path)
    try:
        have = columns(db, "sessions")
        if not {"id", "accumulated_input_tokens", "accumulated_output_tokens"} <= have:
            return [], since
        picked = ", ".join(c if c in have else "NULL" for c in _OPTIONAL)
        where: str = ""
        args: tuple[str, ...] = ()
        if since > 0 and "updated_at" in have:
            cutoff = dt.datetime.fromtimestamp((since - DAY_MS) / 1000, dt.timezone.utc)
            where, args = " WHERE updated_at >= ?", (cutoff.strftime("%Y-%m-%d %H:%M:%S"),)
        total = "accumulated_total_tokens" if "accumulated_total_tokens" in have else "NULL"
        updated = "updated_at" if "updated_at" in have else "NULL"
        for row in db.execute(
                f"SELECT id, {updated}, accumulated_input_tokens, accumulated_output_tokens,"
                f" {total}, {picked} FROM sessions{where}", args):
            ident, when, inp, out, tot, read, write, cost, made, cwd, provider, config = row
            ts = time_ms(when)
            if ts is not None:
                newest = max(newest, ts)
            reading = _reading(str(ident), ts, inp, out, tot, read, write, cost, made, cwd,
                               provider, config)
            if reading is not None:
                found.append(reading)
    finally:
        db.close()
    return found, newest


def _reading(ident: str, ts: int | None, inp: Any, out: Any, tot: Any, read: Any, write: Any,
             cost: Any, made: Any, cwd: Any, provider: Any, config: Any) -> Reading | None:
    if inp is None and out is None and tot is None:
        return None  # no call recorded yet
    try:
        inp, out, tot = (int(v or 0) for v in (inp, out, tot))
        read, write = int(read or 0), int(write or 0)
    except (TypeError, ValueError):
        return None
    reasoning = max(tot - inp - out, 0)
    identity = f"{ident}\x1f{made}" if made is not None else ident
    try:
        return Reading(identity, ident, cwd if isinstance(cwd, str) else "",
                       _model(config, provider), max(inp - read - write, 0), out + reasoning,
                       write, read, cost if isinstance(cost, (int, float)) else None, ts)
    except Invalid:
        return None  # out of validate's bounds: a database row has no line to report
