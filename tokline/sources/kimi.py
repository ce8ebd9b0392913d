"""Kimi: two different CLIs (formats.md §10.7), both append-only JSON lines read from the
last offset.

**Kimi Code** (TypeScript, 2026): ``sessions/wd_<slug>_<hash>/session_<uuid>/agents/
<agent>/wire.jsonl`` under KIMI_CODE_HOME or ~/.kimi-code, one wire per agent (the main
one and each subagent's: all count, none repeats another's usage).  Usage is the
``usage.record`` lines only, one per model call (``usageScope`` ``turn``, or
``session`` for a call outside a turn such as a compaction): the same numbers are also
in ``step.end`` events, which miss the compaction call and would count the rest twice.
``inputOther`` excludes the cache reads and writes; output includes the reasoning.  The
record names a model alias: the model is what ``config.toml``'s ``[models.<alias>]``
names (as of the refresh that reads the line), else the alias without Kimi's own
``kimi-code/`` platform prefix (a model set by KIMI_MODEL_NAME is logged as
``__kimi_env_model__``, which tokline cannot name).  The work dir is ``state.json``'s
``cwd`` (``workDir`` before 2.x), else a ``config.update``'s ``cwd``.

**Kimi CLI** (Python, ``kimi-cli``): ``sessions/<md5(work dir)>/<session>/wire.jsonl``
under KIMI_SHARE_DIR or ~/.kimi, and its subagents' ``subagents/<id>/wire.jsonl``.
Usage is a top-level ``StatusUpdate`` message with ``token_usage`` (one per model step;
the copies mirrored into the parent wire inside ``SubagentEvent`` are not top level;
checked against kimi-cli 1.51.0, its last working release).
The wire names no model: it is the configured default (``config.toml`` ``default_model``
and its ``[models.<alias>]`` ``model``; ``config.json`` ``model`` before that), else
``kimi-for-coding``, as of the refresh that reads the line.  The work directory comes
from ``kimi.json``'s list (its md5 is the directory name).

Forks (Kimi Code's ``kimi fork``, Kimi CLI's ``/fork``) copy wire lines verbatim into
the new session, original times included (Kimi Code then appends a ``forked`` marker to
each copied wire; checked against Kimi Code 2.1.0, tests/test_real_clients_jsonl.py); a
resume replays nothing.  So the key
comes from the line, never from the file, and a copy merges into its original's row:
Kimi Code's (time, model, the four counts), Kimi CLI's ``message_id`` (the provider's
response id; without one, its time and counts).  Neither logs a cost.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping

from tokline.prompt import lightjson
from tokline.sources.documents import (
    Usage,
    count,
    existing,
    first,
    parse_appended,
    split_roots,
    time_ms,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAME = "kimi"
SUFFIXES = (".jsonl",)
SESSION_DEPTH = 1  # sessions/<work dir>: where a new session's directory appears
NEEDLES = (b'"usage.record"', b'"token_usage"', b'"config.update"')
DEFAULT_MODEL = "kimi-for-coding"  # Kimi CLI's, when its config names none (ccusage's too)


def candidate_roots(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    code = split_roots(env, "KIMI_CODE_HOME", os.path.join(home, ".kimi-code"))
    share = split_roots(env, "KIMI_SHARE_DIR", os.path.join(home, ".kimi"))
    return [os.path.join(d, "sessions") for d in dict.fromkeys([*code, *share])]


def roots(env: Mapping[str, str] | None = None) -> list[str]:
    return existing(candidate_roots(env))


def _in_agents(path: str) -> bool:
    """Kimi Code's layout: ``agents/<agent>/<wire>.jsonl``."""
    return os.path.basename(os.path.dirname(os.path.dirname(path))) == "agents"


def wanted(path: str) -> bool:
    return path.endswith(".jsonl") and (os.path.basename(path) == "wire.jsonl"
                                        or _in_agents(path))


class State:
    """The file's session and work directory, found once from its place on disk."""

    __slots__ = ("home", "model", "project", "session")

    def __init__(self, text: str | None, path: str) -> None:
        data: dict[str, Any] = lightjson.loads(text) if text else {}
        if not data:
            data = _place(path)
        self.session: str = data.get("session") or ""
        self.project: str = data.get("project") or ""
        # The config each refresh reads afresh (never kept): Kimi CLI's default model,
        # the models Kimi Code's aliases name.
        self.home = _share_dir(path) if path else ""
        self.model = _configured_model(self.home) if path and not _in_agents(path) \
            else DEFAULT_MODEL

    def dump(self) -> str:
        return lightjson.dumps({"session": self.session, "project": self.project})


def _place(path: str) -> dict[str, str]:
    """Session and work directory of a wire file, from the directories around it."""
    if not path:
        return {}
    if _in_agents(path):  # <work dir>/session_<uuid>/agents/<agent>/wire.jsonl
        session_dir = os.path.dirname(os.path.dirname(os.path.dirname(path)))
        name = os.path.basename(session_dir)
        state = _json(os.path.join(session_dir, "state.json"))
        work = state.get("cwd") or state.get("workDir") if isinstance(state, dict) else None
        return {"session": name.removeprefix("session_"),
                "project": work if isinstance(work, str) else ""}
    session_dir = os.path.dirname(path)
    if os.path.basename(os.path.dirname(session_dir)) == "subagents":
        session_dir = os.path.dirname(os.path.dirname(session_dir))
    group = os.path.basename(os.path.dirname(session_dir))
    return {"session": os.path.basename(session_dir),
            "project": _work_dirs(_share_dir(path)).get(group, "")}


def _share_dir(path: str) -> str:
    """The directory holding ``sessions/`` (Kimi CLI's share dir) above a wire file."""
    head = path
    while True:
        parent = os.path.dirname(head)
        if parent == head:
            return ""
        if os.path.basename(head) == "sessions":
            return parent
        head = parent


_cache: dict[str, tuple[tuple[int, int], Any]] = {}


def _json(path: str) -> Any:
    """A small JSON file's content (None when absent or unreadable), read again only
    when its size or time changed."""
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
        hit = _cache.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        with open(path, "rb") as fh:
            value = lightjson.loads(fh.read(1 << 20).decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None
    _cache[path] = (stamp, value)
    return value


def _work_dirs(share: str) -> dict[str, str]:
    """Kimi CLI's session directory names (md5 of the work dir, ``<kaos>_`` before it
    off the local machine) to the work dirs ``kimi.json`` lists."""
    meta = _json(os.path.join(share, "kimi.json")) if share else None
    found: dict[str, str] = {}
    for entry in (meta.get("work_dirs") or []) if isinstance(meta, dict) else []:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            digest = hashlib.md5(entry["path"].encode("utf-8"), usedforsecurity=False)
            kaos = entry.get("kaos")
            prefix = f"{kaos}_" if isinstance(kaos, str) and kaos and kaos != "local" else ""
            found[prefix + digest.hexdigest()] = entry["path"]
    return found


def _config(home: str) -> dict[str, Any]:
    """``config.toml`` of a Kimi home (either CLI's), parsed again only when it changed;
    empty when absent or not TOML."""
    path = os.path.join(home, "config.toml")
    try:
        st = os.stat(path)
    except OSError:
        return {}
    stamp = (st.st_mtime_ns, st.st_size)
    hit = _cache.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]  # type: ignore[no-any-return]
    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415 - only with a Kimi config to read
    else:
        import tomli as tomllib  # noqa: PLC0415
    try:
        with open(path, "rb") as fh:
            config: dict[str, Any] = tomllib.load(fh)
    except (OSError, ValueError):
        config = {}
    _cache[path] = (stamp, config)
    return config


def _aliased(home: str, alias: str) -> str:
    """The model a ``[models.<alias>]`` entry of the config names; else the alias, without
    Kimi Code's ``kimi-code/`` (its own platform) before it."""
    models = _config(home).get("models") if home else None
    entry = models.get(alias) if isinstance(models, dict) else None
    named = entry.get("model") if isinstance(entry, dict) else None
    return named if isinstance(named, str) and named else alias.removeprefix("kimi-code/")


def _configured_model(share: str) -> str:
    """Kimi CLI's default model: ``config.toml``'s, else the older ``config.json``'s."""
    if not share:
        return DEFAULT_MODEL
    alias = _config(share).get("default_model")
    if isinstance(alias, str) and alias:
        return _aliased(share, alias)
    if not os.path.exists(os.path.join(share, "config.toml")):
        old = _json(os.path.join(share, "config.json"))
        model = old.get("model") if isinstance(old, dict) else None
        if isinstance(model, str) and model:
            return model
    return DEFAULT_MODEL


def take(record: Mapping[str, Any], state: State, found: dict[str, Usage]) -> None:
    kind = record.get("type")
    if kind == "config.update":  # Kimi Code: the work dir, if state.json did not say
        if not state.project and isinstance(record.get("cwd"), str):
            state.project = record["cwd"]
        return
    if kind == "usage.record":  # Kimi Code
        usage = record.get("usage")
        if not isinstance(usage, dict):
            return
        tokens = (count(usage.get("inputOther")), count(usage.get("output")),
                  count(usage.get("inputCacheRead")), count(usage.get("inputCacheCreation")))
        if not any(tokens):
            return
        ts = time_ms(record.get("time"))
        alias = record.get("model")
        model = _aliased(state.home, alias) if isinstance(alias, str) and alias \
            else DEFAULT_MODEL
        key = f"code\x1f{ts}\x1f{model}\x1f" + ",".join(map(str, tokens))
    else:  # Kimi CLI
        message = record.get("message")
        if not isinstance(message, dict) or message.get("type") != "StatusUpdate":
            return
        payload = message.get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("token_usage"), dict):
            return
        usage = payload["token_usage"]
        tokens = (count(usage.get("input_other")), count(usage.get("output")),
                  count(usage.get("input_cache_read")), count(usage.get("input_cache_creation")))
        if not any(tokens):
            return
        stamp = record.get("timestamp")
        ts = time_ms(_seconds_ms(stamp))
        model = state.model
        ident = payload.get("message_id")
        key = f"cli\x1fmessage\x1f{ident}" if isinstance(ident, str) and ident else \
            f"cli\x1f{stamp!r}\x1f" + ",".join(map(str, tokens))
    inp, out, read, write = tokens
    first(found, key, Usage(ts, state.session, state.project, model, inp, out, write, read))


def _seconds_ms(value: object) -> object:
    """Epoch seconds (a JSON number) as whole milliseconds; anything else as it is, for
    time_ms to refuse."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and -1e15 < value < 1e15:  # finite, and no float too large to round
        return round(value * 1000)
    return value


def parse(path: str, data: bytes) -> tuple[dict[str, Usage], int]:
    """Usage per call of one wire file, and its malformed lines."""
    return parse_appended(take, NEEDLES, State(None, path), data)
