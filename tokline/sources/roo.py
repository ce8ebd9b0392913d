"""Roo Code: ``<editor user dir>/globalStorage/rooveterinaryinc.roo-cline/tasks/<task>/
ui_messages.json`` (rewritten whole), or the tasks under ROO_TASKS_DIR (comma list; Roo's
``roo-cline.customStoragePath`` setting puts them in ``<path>/tasks``) (formats.md §10.3).

This module also reads the VS Code task format for Cline classic and Kilo Code's legacy
extension (tokline/sources/cline.py, kilo.py), which share it with their own rules.

One row per (task, ``ts``) of a ``say:"api_req_started"`` message whose JSON ``text`` has
token numbers (a row without any is a call in flight or one that failed, not zero usage).
``tokensIn`` holds the cache reads and writes since Roo PR #8954 (2025-10-31): from then
the uncached input is ``tokensIn − cacheReads − cacheWrites`` (unless ``tokensIn`` is
smaller than the cache, which only a disjoint count can be); before, ``tokensIn`` is the
uncached input.  ``say:"condense_context"`` carries the summarising call's cost and no
tokens: a cost-only row.  Roo's own ``cost`` is each row's cost (when above 0; tokline
prices the tokens otherwise).

A checkpoint restore deletes the messages after it and writes ``say:"api_req_deleted"``
with the sum of the deleted calls (Roo ``src/core/checkpoints/index.ts``).  What tokline
read of them before is in the ledger already; the file's state remembers the rows read
last time, so an aggregate that appears counts only what tokline had not seen of the
calls that disappeared with it (all of it when the file is new to tokline).

The model is the message's ``modelInfo`` when it has one, else the ``<model>`` tag of the
environment details Roo sends with each request (``api_conversation_history.json``: the
first user message at or after the call, the last one otherwise); the project is the
task's ``workspace`` (``history_item.json``) or the workspace its first request named.
"""

from __future__ import annotations

import bisect
import os
import re
import sys
from collections.abc import Callable, Mapping

from tokline.engine import validate
from tokline.engine.validate import Invalid
from tokline.sources.documents import Usage, count, existing, time_ms

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAME = "roo"
SUFFIXES = (".json",)
EXTENSION = "rooveterinaryinc.roo-cline"
TASK_FILE = "ui_messages.json"
# Roo PR #8954 (commit 416fa572, 2025-10-31T00:00Z): tokensIn includes the cache from then.
INCLUSIVE_SINCE_MS = 1_761_868_800_000

# Editors whose user directory may hold the extensions' globalStorage (formats.md §10.3).
HOSTS = ("Code", "Code - Insiders", "VSCodium", "Cursor", "Windsurf")

# A message's kind of usage: a call, a sum of deleted calls, a subagent batch's sum, a
# context condensation's cost.
API, DELETED, SUBAGENTS, CONDENSE = "a", "d", "s", "c"


def editor_user_dirs(env: Mapping[str, str], platform: str | None = None) -> list[str]:
    """The VS Code-family user directories: each host's under ~/.config ($XDG_CONFIG_HOME)
    on Linux or ~/Library/Application Support on macOS, Remote-SSH's
    ~/.vscode-server/data/User, and a portable install's ($VSCODE_PORTABLE)."""
    home = env.get("HOME") or os.path.expanduser("~")
    if (platform or sys.platform) == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = env.get("XDG_CONFIG_HOME", "")
        if not os.path.isabs(base):
            base = os.path.join(home, ".config")
    dirs = [os.path.join(base, host, "User") for host in HOSTS]
    dirs.append(os.path.join(home, ".vscode-server", "data", "User"))
    portable = env.get("VSCODE_PORTABLE", "").strip()
    if portable:
        dirs.append(os.path.join(os.path.expanduser(portable), "user-data", "User"))
    return dirs


def extension_tasks(env: Mapping[str, str], variable: str, extension: str,
                    platform: str | None = None) -> list[str]:
    """An extension's ``tasks`` directories: those ``variable`` lists (comma separated),
    else one in each editor's globalStorage."""
    configured = env.get(variable, "").strip()
    if configured:
        return [os.path.expanduser(p.strip()) for p in configured.split(",") if p.strip()]
    return [os.path.join(user, "globalStorage", extension, "tasks")
            for user in editor_user_dirs(env, platform)]


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    return extension_tasks(os.environ if env is None else env, "ROO_TASKS_DIR", EXTENSION)


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def wanted(path: str) -> bool:
    return os.path.basename(path) == TASK_FILE


class Call:
    """One usage-bearing message of a task, in the ledger's terms: ``values`` are uncached
    input, output, cache writes, cache reads and cost (0 when not given)."""

    __slots__ = ("kind", "model", "ts", "values")

    def __init__(self, ts: int, kind: str, values: list[float], model: str | None) -> None:
        self.ts = ts
        self.kind = kind
        self.values = values
        self.model = model


class Rules:
    """How one client's task files are counted.

    ``inclusive(ts, tokens_in, cache)`` tells whether a row's ``tokensIn`` holds its cache
    reads and writes; ``deleted`` is the ``say`` of the deleted calls' sums, ``nested``
    whether such a sum includes the sums it deleted in turn (Cline's do, Roo's do not);
    ``says`` are the other usage-bearing kinds; ``model_tags`` whether requests name the
    model in ``<model>`` tags (Roo and its forks)."""

    __slots__ = ("deleted", "inclusive", "model_tags", "nested", "says")

    def __init__(self, inclusive: Callable[[int, int, int], bool], deleted: str,
                 nested: bool, says: Mapping[str, str], model_tags: bool) -> None:
        self.inclusive = inclusive
        self.deleted = deleted
        self.nested = nested
        self.says = says
        self.model_tags = model_tags


def _roo_inclusive(ts: int, tokens_in: int, cache: int) -> bool:
    return ts >= INCLUSIVE_SINCE_MS and tokens_in >= cache


RULES = Rules(_roo_inclusive, "api_req_deleted", False,
              {"api_req_started": API, "condense_context": CONDENSE}, True)


def parse(path: str, data: bytes) -> tuple[dict[str, Usage], int]:
    found, malformed, _ = parse_task(path, data, None, RULES)
    return found, malformed


def parse_state(path: str, data: bytes, state: str | None
                ) -> tuple[dict[str, Usage], int, str | None]:
    return parse_task(path, data, state, RULES)


def _number(value: object) -> bool:
    return type(value) in (int, float)


def _call(message: Mapping[str, Any], kind: str, rules: Rules) -> Call | None:
    """A message's usage (None: none, or a call still in flight); raises Invalid for
    numbers out of validate's bounds."""
    ts = time_ms(message.get("ts"))
    info = message.get("modelInfo")
    model = None
    if isinstance(info, dict):
        named = info.get("modelId", info.get("id"))
        model = named if isinstance(named, str) and named else None
    if kind == CONDENSE:
        condense = message.get("contextCondense")
        cost = validate.cost(condense.get("cost")) if isinstance(condense, dict) else None
        return Call(ts, kind, [0, 0, 0, 0, cost], model) if cost else None
    text = message.get("text")
    if not isinstance(text, str):
        return None
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        request = json.loads(text)  # ClineApiReqInfo
    except ValueError:
        raise Invalid("usage text is not JSON") from None
    if not isinstance(request, dict):
        return None
    fields = [request.get(k) for k in ("tokensIn", "tokensOut", "cacheWrites", "cacheReads")]
    if not any(_number(v) for v in fields):
        return None  # created when the call starts; numbers come when it ends
    tokens_in, out, write, read = (count(v) for v in fields)
    cost = validate.cost(request["cost"]) if _number(request.get("cost")) else None
    if tokens_in + out + write + read == 0 and not cost:
        return None
    uncached = tokens_in
    if kind != SUBAGENTS and rules.inclusive(ts, tokens_in, read + write):
        uncached = max(0, tokens_in - read - write)
    return Call(ts, kind, [uncached, out, write, read, cost or 0], model)


def read_calls(messages: list[Any], rules: Rules) -> tuple[list[Call], int]:
    """The usage-bearing messages of a task, and how many were malformed."""
    calls: list[Call] = []
    malformed = 0
    for message in messages:
        if not isinstance(message, dict) or message.get("type") != "say":
            continue
        say = message.get("say")
        kind = DELETED if say == rules.deleted else rules.says.get(say) \
            if isinstance(say, str) else None
        if kind is None:
            continue
        try:
            call = _call(message, kind, rules)
        except Invalid:
            malformed += 1
            continue
        if call is not None:
            calls.append(call)
    return calls, malformed


def _load_state(state: str | None) -> tuple[dict[str, list[Any]], dict[str, list[float]]]:
    """(what the rows of the last read covered, by ts: values and kind; what each deleted
    calls' sum was counted as)."""
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        doc = json.loads(state) if state else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("seen"), dict) or \
            not isinstance(doc.get("kept"), dict):
        return {}, {}
    return doc["seen"], doc["kept"]


def counted(calls: list[Call], state: str | None, nested: bool
            ) -> tuple[list[tuple[Call, list[float]]], str]:
    """Each call with the values it adds to the ledger, and the state for the next read.

    A sum of deleted calls that is new since the last read takes the place of the calls
    that disappeared since then (those before it, each taken by the first new sum after
    it): it adds only what they did not.  Sums read before keep what they added then."""
    import json  # noqa: PLC0415 - imported by the sources that have files only

    seen, kept = _load_state(state)
    present = {str(c.ts) for c in calls}
    fresh = sorted((c for c in calls if c.kind == DELETED and str(c.ts) not in kept),
                   key=lambda c: c.ts)
    taken: dict[int, list[float]] = {c.ts: [0, 0, 0, 0, 0] for c in fresh}
    starts = [c.ts for c in fresh]
    for ts_text, entry in seen.items():
        if ts_text in present or not isinstance(entry, list) or len(entry) != 6:
            continue
        if entry[5] == DELETED and not nested:
            continue  # Roo's sums leave out the sums they delete
        try:
            ts = int(ts_text)
        except ValueError:
            continue
        at = bisect.bisect_right(starts, ts)
        if at < len(starts):
            into = taken[starts[at]]
            for i in range(5):
                into[i] += entry[i] if _number(entry[i]) else 0
    out: list[tuple[Call, list[float]]] = []
    new_seen: dict[str, list[Any]] = {}
    new_kept: dict[str, list[float]] = {}
    for call in calls:
        values = call.values
        if call.kind == DELETED:
            prior = kept.get(str(call.ts))
            if isinstance(prior, list) and len(prior) == 5 and all(map(_number, prior)):
                values = prior
            else:
                less = taken.get(call.ts, [0, 0, 0, 0, 0])
                values = [int(max(0, v - t)) for v, t in zip(call.values[:4], less,
                                                             strict=False)]
                # a cost left over from float sums is no cost (1e-9 USD)
                values.append(max(0.0, round(call.values[4] - less[4], 9)))
            new_kept[str(call.ts)] = values
        new_seen[str(call.ts)] = [*call.values, call.kind]
        out.append((call, values))
    return out, json.dumps({"seen": new_seen, "kept": new_kept}, separators=(",", ":"))


class Task:
    """What a task directory says about its calls besides ui_messages.json: its project,
    and the model of each request (the other files read once a call needs them)."""

    __slots__ = ("_metadata_read", "_tags_read", "directory", "model_tags", "model_usage",
                 "project", "tags", "tags_at")

    def __init__(self, directory: str, model_tags: bool) -> None:
        self.directory = directory
        self.model_tags = model_tags
        self.project = ""
        self.tags: list[str] = []  # <model> tags in request order
        self.tags_at: list[tuple[int, str]] = []  # (time of the request, model), in order
        self.model_usage: list[tuple[int, str]] = []  # Cline: (time, model) of each change
        self._tags_read = self._metadata_read = False
        history = _read_json(os.path.join(directory, "history_item.json"))
        if isinstance(history, dict) and isinstance(history.get("workspace"), str):
            self.project = history["workspace"]
        if not self.project:
            self._read_history(model_tags)

    def _read_metadata(self) -> None:
        self._metadata_read = True
        metadata = _read_json(os.path.join(self.directory, "task_metadata.json"))
        usage = metadata.get("model_usage") if isinstance(metadata, dict) else None
        for entry in usage if isinstance(usage, list) else ():
            if isinstance(entry, dict) and type(entry.get("ts")) is int and \
                    isinstance(entry.get("model_id"), str) and entry["model_id"]:
                self.model_usage.append((entry["ts"], entry["model_id"]))
        self.model_usage.sort()

    def _read_history(self, model_tags: bool) -> None:
        """The requests' ``<model>`` tags (when ``model_tags``) and the project, found in
        api_conversation_history.json's raw bytes (a long task's history is megabytes: no
        need to decode it; the project is named in its first request)."""
        self._tags_read = self._tags_read or model_tags
        try:
            with open(os.path.join(self.directory, "api_conversation_history.json"),
                      "rb") as fh:
                raw = fh.read() if model_tags else fh.read(1 << 20)
        except OSError:
            return
        if not self.project:
            found = _WORKSPACE.search(raw)
            if found:
                self.project = _unescape(found.group(1)) or ""
        if not model_tags:
            return
        stamps = [(m.start(), int(m.group(1))) for m in _TS.finditer(raw)]
        places = [at for at, _ in stamps]
        for m in _MODEL.finditer(raw):
            model = _unescape(m.group(1))
            if not model:
                continue
            self.tags.append(model)
            at = bisect.bisect_right(places, m.end())  # the message's own ts follows it
            if at < len(stamps):
                self.tags_at.append((stamps[at][1], model))
        self.tags_at.sort()  # a condensed history may have moved its messages around

    def model(self, call: Call) -> str:
        if call.model:
            return call.model
        if self.model_tags and not self._tags_read:
            self._read_history(True)
        if self.tags_at:
            # Roo says api_req_started, then adds the request's user message (with the
            # tag): the call's request is the first one at or after it.
            at = bisect.bisect_left(self.tags_at, (call.ts, ""))
            if at < len(self.tags_at):
                return self.tags_at[at][1]
        if self.tags:
            return self.tags[-1]
        if not self._metadata_read:
            self._read_metadata()
        if self.model_usage:
            at = bisect.bisect_right(self.model_usage, (call.ts, "\uffff"))
            return self.model_usage[max(0, at - 1)][1]
        return "unknown"


# In api_conversation_history.json's raw bytes (JSON-escaped text, "\n" as backslash-n).
_MODEL = re.compile(rb"<model>((?:[^<\\\"]|\\.){1,300})</model>")
_TS = re.compile(rb'"ts"\s*:\s*(\d{10,16})')
_WORKSPACE = re.compile(
    rb"# Current (?:Working|Workspace) Directory \(((?:[^\\\"]|\\.){1,4096}?)\) Files")


def _unescape(raw: bytes) -> str | None:
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        text = json.loads(b'"' + raw + b'"')
    except ValueError:
        return None
    return text.strip() if isinstance(text, str) else None


def _read_json(path: str) -> Any:
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read(4 << 20))
    except (OSError, ValueError):
        return None


def parse_task(path: str, data: bytes, state: str | None, rules: Rules
               ) -> tuple[dict[str, Usage], int, str | None]:
    """Usage per ``task\\x1fts`` of one ui_messages.json, its malformed messages, and
    the state to keep for the next read."""
    import json  # noqa: PLC0415 - imported by the sources that have files only

    try:
        messages = json.loads(data)
    except ValueError:
        return {}, 1, state  # caught mid-write: the next change reads it again
    if not isinstance(messages, list):
        return {}, 0, state
    calls, malformed = read_calls(messages, rules)
    directory = os.path.dirname(path)
    task_id = os.path.basename(directory)
    task = Task(directory, rules.model_tags)
    found: dict[str, Usage] = {}
    adds, kept = counted(calls, state, rules.nested)
    for call, values in adds:
        inp, out, write, read, cost = values
        if not (inp or out or write or read or cost):
            continue
        try:
            found[f"{task_id}\x1f{call.ts}"] = Usage(
                call.ts, task_id, task.project, task.model(call), int(inp), int(out),
                int(write), int(read), cost or None)
        except Invalid:
            malformed += 1
    return found, malformed, kept
