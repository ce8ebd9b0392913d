"""Kilo Code: the legacy extension's (≤ 5.x, a Roo Code fork) task files,
``<editor user dir>/globalStorage/kilocode.kilo-code/tasks/<task>/ui_messages.json`` (or
under KILO_TASKS_DIR), and since 7.x the Kilo CLI's (an OpenCode fork, which the
extension runs) SQLite database ``$XDG_DATA_HOME/kilo/kilo.db`` (``kilo-<channel>.db``
for other channels; KILO_DB names another file, absolute or relative to that directory,
whose directory is then read) (formats.md §10.3).

Task files are counted as Roo's (tokline/sources/roo.py) except for ``tokensIn``: when
Kilo took up Roo's change to include the cache in it is not known, so it is taken to
include the cache whenever it is at least the cache reads and writes together.  The
database is OpenCode's (tokline/sources/opencode.py reads both): one row per assistant
message, fork copies skipped, read-only from the newest update seen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tokline.sources import opencode, roo
from tokline.sources.documents import Usage, existing

NAME = "kilo"
SUFFIXES = (".json", ".db", ".db-wal")
EXTENSION = "kilocode.kilo-code"

RULES = roo.Rules(lambda ts, tokens_in, cache: tokens_in >= cache, "api_req_deleted", False,
                  {"api_req_started": roo.API, "condense_context": roo.CONDENSE}, True)
parse_db = opencode.parse_db


def data_dirs(env: Mapping[str, str]) -> list[str]:
    """Where the database is: KILO_DB's directory, else $XDG_DATA_HOME/kilo."""
    data = os.path.join(opencode.data_home(env), "kilo")
    named = env.get("KILO_DB", "").strip()
    if named:
        return [os.path.dirname(os.path.join(data, os.path.expanduser(named)))]
    return [data]


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    return [*data_dirs(env), *roo.extension_tasks(env, "KILO_TASKS_DIR", EXTENSION)]


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    """Task files, and databases (any name: KILO_DB may give it one) outside task dirs."""
    name = os.path.basename(path)
    if name.endswith((".db", ".db-wal")):
        return (os.sep + "tasks" + os.sep) not in path
    return name == roo.TASK_FILE


def parse(path: str, data: bytes) -> tuple[dict[str, Usage], int]:
    found, malformed, _ = roo.parse_task(path, data, None, RULES)
    return found, malformed


def parse_state(path: str, data: bytes, state: str | None
                ) -> tuple[dict[str, Usage], int, str | None]:
    return roo.parse_task(path, data, state, RULES)
