"""The compiled scanner, its pure twin and a plain json.loads reference agree on any input."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import twins
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokline.engine import _claude_py

CANDIDATE = re.compile(rb'"usage"[ \t\r]*:[ \t\r]*\{')
# The documented bounds (tokline/engine/validate.py), written out again: a line outside
# them is malformed (this reference used to clamp counts to 2**53; it now rejects them).
TS_MIN = 946_684_800_000  # 2000-01-01T00:00:00Z
LATEST = 1_798_761_600_000  # 2027-01-01T00:00:00Z: the latest valid time these tests pass
COUNT_LIMIT = 10**10
COST_LIMIT = 1e4


class _Bad(Exception):
    pass

HOSTILE = st.sampled_from([
    '"usage":{"input_tokens":99}', 'say \\"hi\\"', "\\", "\\\\", "\u2603 snow", "emoji \U0001f525",
    "tab\there", "\x00nul", "\u2028", "\ud83d", "}", "{", "]", ",", '"', "type", "assistant",
    "\r", "\x7f", "é", "C:\\Users\\dev",
])
TEXT = st.one_of(st.text(max_size=12), HOSTILE, st.lists(HOSTILE, max_size=4).map("".join))
NUMBER = st.one_of(
    st.integers(min_value=0, max_value=10**6), st.integers(min_value=-10, max_value=10),
    st.integers(min_value=2**53 - 2, max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e20, max_value=1e20),
    st.sampled_from([0.5, 1e3, 12.0, -0.0]),
)
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)
JSONISH = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)
STAMP = st.one_of(
    st.sampled_from(["2026-11-23T10:00:00.000Z", "2026-11-23T23:59:59.9999Z",
                     "2026-02-29T00:00:00+05:30", "2026-11-23T10:00:00", "2026-13-01T00:00:00Z",
                     "2026-11-23 10:00:00Z", "not a time", "2026-11-23T10:00:00-08:00"]),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"),
)


def dump(value: Any, compact: bool, ascii_only: bool) -> str:
    seps = (",", ":") if compact else (", ", ": ")
    return json.dumps(value, separators=seps, ensure_ascii=ascii_only)


@st.composite
def members(draw: st.DrawFn, pairs: list[tuple[str, Any]], compact: bool) -> str:
    """An object's text from (key, value) pairs: shuffled, maybe a duplicate key, maybe
    an escaped spelling of a key."""
    items = list(pairs)
    if items and draw(st.booleans()):
        items.append(draw(st.sampled_from(items)))
    order = draw(st.permutations(items))
    parts = []
    ascii_only = draw(st.booleans())
    for key, value in order:
        key_text = dump(key, compact, ascii_only)
        if key == "type" and draw(st.integers(0, 9)) == 0:
            key_text = '"\\u0074ype"'
        raw = value if isinstance(value, _Raw) else dump(value, compact, ascii_only)
        parts.append(f"{key_text}{':' if compact else ': '}{raw}")
    return "{" + ("," if compact else ", ").join(parts) + "}"


class _Raw(str):
    """Already-serialised JSON text for a member value."""


@st.composite
def usage_line(draw: st.DrawFn) -> str:
    compact = draw(st.booleans())
    usage_pairs = [(k, draw(NUMBER)) for k in draw(st.sets(st.sampled_from([
        "input_tokens", "output_tokens", "cache_creation_input_tokens",
        "cache_read_input_tokens"])))]
    if draw(st.booleans()):
        usage_pairs.append(("cache_creation", {
            "ephemeral_5m_input_tokens": draw(NUMBER), "ephemeral_1h_input_tokens": draw(NUMBER)}))
    if draw(st.booleans()):
        usage_pairs.append(("server_tool_use", {"web_search_requests": draw(NUMBER)}))
    if draw(st.booleans()):
        usage_pairs.append(("speed", draw(st.sampled_from(["fast", "standard", "fa\\u0073t"]))))
    if draw(st.integers(0, 5)) == 0:
        usage_pairs.append((draw(TEXT), draw(JSONISH)))
    usage = _Raw(draw(members(usage_pairs, compact)))
    message_pairs: list[tuple[str, Any]] = [("usage", usage)]
    for key in ("id", "model"):
        if draw(st.integers(0, 4)):
            message_pairs.append((key, draw(st.one_of(
                st.sampled_from(["msg_01A", "msg_01B", "claude-opus-4-5", ""]), TEXT, SCALAR))))
    if draw(st.booleans()):
        message_pairs.append(("content", draw(JSONISH)))
    message = _Raw(draw(members(message_pairs, compact)))
    top: list[tuple[str, Any]] = [("message", message)]
    if draw(st.integers(0, 5)):
        top.append(("type", draw(st.sampled_from(["assistant", "assistant", "progress", None, 3]))))
    if draw(st.integers(0, 9)):
        top.append(("timestamp", draw(STAMP)))
    for key, values in (("requestId", ["req_1", "req_2", ""]), ("sessionId", ["s1", "s2"]),
                        ("cwd", ["/home/a", "C:\\x"])):
        if draw(st.booleans()):
            top.append((key, draw(st.one_of(st.sampled_from(values), TEXT, SCALAR))))
    for key in ("isSidechain", "isApiErrorMessage", "costUSD"):
        if draw(st.integers(0, 3)) == 0:
            top.append((key, draw(SCALAR)))
    if draw(st.integers(0, 3)) == 0:
        top.append(("toolUseResult", draw(JSONISH)))
    return draw(members(top, compact))


@st.composite
def any_line(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind <= 5:
        line = draw(usage_line()).encode("utf-8", "surrogatepass")
    elif kind == 6:
        line = dump(draw(JSONISH), True, False).encode("utf-8", "surrogatepass")
    elif kind == 7:  # a damaged usage line
        raw = draw(usage_line()).encode("utf-8", "surrogatepass")
        cut = draw(st.integers(0, len(raw)))
        line = raw[:cut] + draw(st.binary(max_size=3)) + raw[cut + draw(st.integers(0, 2)):]
    elif kind == 8:
        line = b'{"type":"user","message":{"content":"\\"usage\\":{\\"input_tokens\\":5}"}}'
    else:
        line = draw(st.binary(max_size=30))
    return line.replace(b"\n", b" ")


def _tokens(v: Any) -> int:
    """A count: an integral number in [0, 10**10); null or absent is 0; else _Bad."""
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad
    if isinstance(v, float) and not (abs(v) < 1e300 and v == int(v)):  # NaN fails too
        raise _Bad
    if not 0 <= v < COUNT_LIMIT:
        raise _Bad
    return int(v)


def reference(data: bytes, latest: int = LATEST) -> tuple[list[tuple[Any, ...]], int, int]:
    """Straight from the documented rules: split lines, json.loads, read the fields."""
    end = data.rfind(b"\n") + 1
    records: list[tuple[Any, ...]] = []
    malformed = 0
    offset = 0
    for line in data[:end].split(b"\n")[:-1]:
        here = offset
        offset += len(line) + 1
        if not CANDIDATE.search(line):
            continue
        try:
            obj = json.loads(line.decode("utf-8", "replace"), strict=False,
                             parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except (ValueError, RecursionError):
            malformed += 1
            continue
        if not isinstance(obj, dict) or obj.get("type") not in ("assistant", None):
            continue
        msg = obj.get("message")
        if not isinstance(msg, dict) or not isinstance(msg.get("usage"), dict):
            continue
        usage = msg["usage"]
        ts = obj.get("timestamp")
        ms = _claude_py.parse_iso_ms(ts) if isinstance(ts, str) else None
        if ms is None or not TS_MIN <= ms <= latest:
            malformed += 1
            continue
        try:
            rec = _record(here, obj, msg, usage, ms)
        except _Bad:
            malformed += 1
            continue
        if records and rec[2] is not None and rec[3] is not None \
                and records[-1][2:4] == rec[2:4]:
            rec = _claude_py.merge_pair(records[-1], rec)  # type: ignore[arg-type]
            records[-1] = rec
        else:
            records.append(rec)
    return records, end, malformed


def _record(here: int, obj: dict[str, Any], msg: dict[str, Any], usage: dict[str, Any],
            ms: int) -> tuple[Any, ...]:
    """The record of a usage line; _Bad when a count or the cost is out of bounds."""
    def text(v: Any) -> str | None:
        if not isinstance(v, str) or not v:
            return None
        return v.encode("utf-8", "replace").decode("utf-8")

    split = usage.get("cache_creation")
    total = _tokens(usage.get("cache_creation_input_tokens"))  # checked even when split
    if isinstance(split, dict):
        c5, c1 = (_tokens(split.get("ephemeral_5m_input_tokens")),
                  _tokens(split.get("ephemeral_1h_input_tokens")))
        c5 = max(total, c5 + c1) - c1  # the split only says which part is 1-hour
    else:
        c5, c1 = _tokens(usage.get("cache_creation_input_tokens")), 0
    tools = usage.get("server_tool_use")
    cost = obj.get("costUSD")
    if cost is not None:
        if isinstance(cost, bool) or not isinstance(cost, (int, float)):
            raise _Bad
        try:
            cost = float(cost)
        except OverflowError:
            raise _Bad from None
        if not 0 <= cost < COST_LIMIT:
            raise _Bad
    flags = ((obj.get("isSidechain") is True) | (usage.get("speed") == "fast") * 4
             | (obj.get("isApiErrorMessage") is True) * 16)
    rec = (here, ms, text(msg.get("id")), text(obj.get("requestId")),
           text(obj.get("sessionId")), text(msg.get("model")), text(obj.get("cwd")),
           _tokens(usage.get("input_tokens")), _tokens(usage.get("output_tokens")), c5, c1,
           _tokens(usage.get("cache_read_input_tokens")),
           _tokens(tools.get("web_search_requests")) if isinstance(tools, dict) else 0,
           cost, int(flags))
    return rec


def _same(a: Any, b: Any) -> bool:
    """Equality that treats NaN-free floats exactly and compares -0.0 == 0.0."""
    return bool(a == b)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_line(), max_size=12), st.booleans())
def test_twin_matches_reference(lines: list[bytes], complete: bool) -> None:
    data = b"\n".join(lines) + (b"\n" if complete else b"")
    assert _same(_claude_py.scan(data, 0, LATEST), reference(data))


@pytest.mark.parametrize(("compiled", "pure"), twins.pair("claude"))
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_line(), max_size=12), st.booleans(), st.integers(0, 40))
def test_extension_matches_twin(compiled: Any, pure: Any, lines: list[bytes], complete: bool,
                                lead: int) -> None:
    ext = twins.built(compiled)
    data = b"x" * lead + b"\n" + b"\n".join(lines) + (b"\n" if complete else b"")
    assert ext.scan(data, lead + 1) == pure.scan(data, lead + 1)


@pytest.mark.parametrize("scanner", twins.each("claude"))
def test_usage_inside_a_string_is_not_usage(scanner: Any) -> None:
    line = b'{"type":"user","message":{"content":"{\\"usage\\":{\\"input_tokens\\":5}}"}}\n'
    assert scanner.scan(line, 0) == ([], len(line), 0)


@pytest.mark.parametrize("scanner", twins.each("claude"))
def test_incomplete_last_line_is_left_for_later(scanner: Any) -> None:
    first = (b'{"type":"assistant","timestamp":"2026-01-01T00:00:00Z","message":{"id":"m",'
             b'"usage":{"input_tokens":1}},"requestId":"r"}\n')
    partial = first[:40]
    records, end, bad = scanner.scan(first + partial, 0)
    assert len(records) == 1 and end == len(first) and bad == 0


@pytest.mark.parametrize("scanner", twins.each("claude"))
@pytest.mark.parametrize(("total", "split", "want"), [
    (8100, {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, (8100, 0)),
    (8100, {"ephemeral_1h_input_tokens": 100}, (8000, 100)),
    (8100, {"ephemeral_5m_input_tokens": 8000, "ephemeral_1h_input_tokens": 100}, (8000, 100)),
    (None, {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 20}, (30, 20)),
    (8100, None, (8100, 0)),
])
def test_cache_writes_total_cache_creation_input_tokens(scanner: Any, total: int | None,
                                                        split: dict[str, int] | None,
                                                        want: tuple[int, int]) -> None:
    """The split only says which part is 1-hour: a split of zeros (Claude Code writes one
    when the server sends none, as gateways do) must not lose the cache writes."""
    usage: dict[str, Any] = {"input_tokens": 3, "output_tokens": 9}
    if total is not None:
        usage["cache_creation_input_tokens"] = total
    if split is not None:
        usage["cache_creation"] = split
    line = json.dumps({"type": "assistant", "timestamp": "2026-01-01T00:00:00Z",
                       "requestId": "r", "message": {"id": "m", "usage": usage}}).encode() + b"\n"
    records, _, bad = scanner.scan(line, 0)
    assert bad == 0 and (records[0][9], records[0][10]) == want


@pytest.mark.parametrize("scanner", twins.each("claude"))
def test_start_offset_out_of_range(scanner: Any) -> None:
    with pytest.raises(ValueError):
        scanner.scan(b"abc\n", 9)


@pytest.mark.parametrize("scanner", twins.each("claude"))
def test_usage_as_a_value_before_the_usage_key(scanner: Any) -> None:
    """Found by hypothesis: a string value "usage" earlier on the line must not move the
    twin's idea of where the line starts."""
    line = (b'{"message": {"id": "m", "model": "usage", "usage": {"input_tokens": 3}}, '
            b'"timestamp": "2026-11-23T10:00:00Z"}\n')
    data = b'{"other": 1}\n' + line
    records, end, bad = scanner.scan(data, 0)
    assert bad == 0 and len(records) == 1 and records[0][7] == 3 and end == len(data)


ISO_PARTS = st.tuples(
    st.integers(min_value=0, max_value=9999), st.integers(min_value=0, max_value=13),
    st.integers(min_value=0, max_value=32), st.integers(min_value=0, max_value=24),
    st.integers(min_value=0, max_value=60), st.integers(min_value=0, max_value=60),
    st.sampled_from(["", ".", ".5", ".123", ".123456789", ".x"]),
    st.sampled_from(["", "Z", "+05:30", "-03:30", "+24:00", "Z ", "+0530", "z"]))


@pytest.mark.parametrize(("compiled", "pure"), twins.pair("claude"))
@given(st.one_of(ISO_PARTS.map(lambda p: f"{p[0]:04d}-{p[1]:02d}-{p[2]:02d}T{p[3]:02d}:"
                                         f"{p[4]:02d}:{p[5]:02d}{p[6]}{p[7]}"),
                 st.text(max_size=30)))
@settings(max_examples=400)
def test_iso_times_parse_the_same_compiled_and_pure(compiled: Any, pure: Any, text: str) -> None:
    ext = twins.built(compiled)
    assert ext.parse_iso_ms(text) == pure.parse_iso_ms(text)


@pytest.mark.parametrize("scanner", twins.each("claude"))
def test_iso_times_known_values(scanner: Any) -> None:
    assert scanner.parse_iso_ms("2026-11-23T10:00:00.5+05:30") == 1795408200500
    assert scanner.parse_iso_ms("2026-11-23T04:30:00.500Z") == 1795408200500
    assert scanner.parse_iso_ms("2026-11-23 04:30:00Z") is None


CODEX_NEEDLES = (b'"token_count"', b'"turn_context"', b'"session_meta"',
                 b'"token_usage_record"')
CODEX_PIECES = st.sampled_from([
    b'{"type":"event_msg","payload":{"type":"token_count"}}', b'"turn_context"',
    b'"session_meta"', b'"token_usage_record"', b'"token_count', b'token_count"', b"\n",
    b"\n\n", b"x", b'{"a":1}', b'"', b"\\\"token_count\\\"", b"\xff\xfe", b"\r\n"])


@pytest.mark.parametrize(("compiled", "pure"), twins.pair("codex"))
@given(st.lists(CODEX_PIECES, max_size=30).map(b"".join), st.integers(0, 8))
@settings(max_examples=400)
def test_codex_candidate_lines_compiled_and_pure(compiled: Any, pure: Any, data: bytes,
                                                 lead: int) -> None:
    ext = twins.built(compiled)
    end = data.rfind(b"\n") + 1
    start = min(lead, end)
    if start and data[start - 1:start] != b"\n":
        start = data.rfind(b"\n", 0, start) + 1  # the reader starts at a line boundary
    assert ext.candidate_lines(data, start, end, CODEX_NEEDLES) == \
        pure.candidate_lines(data, start, end, CODEX_NEEDLES)


PLAIN_COUNT = st.integers(0, 10**7)
ODD_COUNT = st.one_of(st.integers(-5, 5), st.integers(10**18, 10**20),
                      st.sampled_from([1.0, 2.5, True, None, "7", -0.0]))
COUNT_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens",
              "total_tokens")
PLAIN_STAMP = st.integers(1_700_000_000_000, 1_900_000_000_000).map(
    lambda ms: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z")
MODEL = st.sampled_from(["gpt-5", "gpt-5-codex", "o3"])
ODD_NAME = st.one_of(st.sampled_from(["", None, 5, "g\u00e9", "a\\b", [], {}]), TEXT)
BENDS = ("count", "drop", "last", "info", "repeat late", "payload type", "type", "stamp",
         "limits", "model", "cwd", "repeat", "escape", "control", "truncate", "spaces", "top")


@st.composite
def codex_line(draw: st.DrawFn) -> bytes:
    """A rollout line as Codex writes it (a token_count, turn_context or session_meta),
    then bent in zero to two ways: odd counts, missing keys, odd types and names, bad
    times, repeated keys, escapes, control and non-ASCII bytes, truncation."""
    kind = draw(st.sampled_from(["event_msg"] * 6 + ["turn_context", "session_meta",
                                                      "token_usage_record"]))
    usage = {k: draw(PLAIN_COUNT) for k in COUNT_KEYS}
    if kind == "event_msg":
        info: Any = {"total_token_usage": usage,
                     "last_token_usage": {k: draw(PLAIN_COUNT) for k in COUNT_KEYS},
                     "model_context_window": 272000}
        if draw(st.booleans()):
            info["model"] = draw(MODEL)
        payload: dict[str, Any] = {"type": "token_count", "info": info}
        if draw(st.booleans()):
            payload["rate_limits"] = {"primary": {"used_percent": draw(NUMBER),
                                                  "window_minutes": 300}}
        if draw(st.booleans()):
            payload["model"] = draw(MODEL)
    elif kind == "turn_context":
        payload = {"model": draw(MODEL), "cwd": "/w/" + draw(st.sampled_from("abc"))}
    elif kind == "session_meta":
        payload = {"id": "s-" + draw(st.sampled_from("abc")), "cwd": "/w/s"}
    else:
        payload = {"usage": usage, "response_id": "r" + draw(st.sampled_from("abc")),
                   "model": draw(MODEL)}
    top: dict[str, Any] = {"timestamp": draw(PLAIN_STAMP), "type": kind, "payload": payload}
    bends = sorted(draw(st.lists(st.sampled_from(BENDS), max_size=2)), key=lambda b: b == "top")
    info = payload.get("info")
    for bend in bends:
        part = info.get(draw(st.sampled_from(["total_token_usage", "last_token_usage"]))) \
            if isinstance(info, dict) else None
        if bend == "count" and part is not None:
            part[draw(st.sampled_from(COUNT_KEYS))] = draw(ODD_COUNT)
        elif bend == "drop" and part is not None:
            part.pop(draw(st.sampled_from(COUNT_KEYS)), None)
            if draw(st.booleans()):
                info.pop("total_token_usage", None)
        elif bend == "last" and isinstance(info, dict):
            info.pop("last_token_usage", None)  # older CLIs write only the running total
        elif bend == "info":
            payload["info"] = draw(st.sampled_from([None, [], "i", 0, {}]))
        elif bend == "payload type":
            payload["type"] = draw(st.sampled_from([None, 7, "agent_message", "token_count"]))
        elif bend == "type":
            top["type"] = draw(st.sampled_from([None, 3, "response_item", "turn_context"]))
        elif bend == "stamp":
            top["timestamp"] = draw(st.one_of(STAMP, st.none(), st.just(5)))
        elif bend == "limits":
            payload["rate_limits"] = draw(st.one_of(st.none(), JSONISH))
        elif bend == "model":
            target = info if isinstance(info, dict) and draw(st.booleans()) else payload
            target["model"] = draw(ODD_NAME)
        elif bend == "cwd":
            payload["cwd"] = draw(ODD_NAME)
        elif bend == "repeat late":
            payload["__again__"] = 0  # written out as a key repeated after the first
        elif bend == "top":
            top = draw(st.sampled_from([[top], "token_count", None]))
    text = json.dumps(top, ensure_ascii=draw(st.booleans()), separators=(",", ":"))
    text = text.replace('"__again__":0', draw(st.sampled_from(
        ['"rate_limits":null', '"model":null', '"model":"o3"', '"info":null', '"cwd":"/v"',
         '"type":"agent_message"', '"info":{"total_token_usage":null}'])))
    for bend in bends:
        if bend == "repeat" and text.startswith("{") and '"payload":{' in text:
            # a key given twice (json keeps the last)
            text = text.replace('"payload":{', '"payload":{"type":"x","info":null,', 1) \
                if draw(st.booleans()) else text.replace(
                    '"input_tokens":', '"input_tokens":1,"input_tokens":', 1)
        elif bend == "escape":
            text = text.replace('"cwd"', '"c\\u0077d"').replace('"gpt', '"\\u0067pt')
        elif bend == "control":
            text = text.replace("gpt", "g\tpt")
        elif bend == "spaces":
            text = text.replace(",", " ,\t").replace(":", ": ")
        elif bend == "truncate":
            text = text[:draw(st.integers(0, len(text)))]
    return text.encode("utf-8", "surrogatepass")


@pytest.mark.parametrize(("compiled", "pure"), twins.pair("codex"))
@given(st.lists(codex_line(), max_size=12), st.booleans())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_codex_events_read_as_the_twin_reads_the_lines(compiled: Any, pure: Any,
                                                       lines: list[bytes], crlf: bool) -> None:
    """What the compiled reader parses itself and what it hands back as bytes, processed,
    equals the pure reader's decoding of every candidate line."""
    ext = twins.built(compiled)
    from tokline.sources import codex

    data = (b"\r\n" if crlf else b"\n").join(lines) + b"\n"
    end = len(data)

    def read(items: list[Any]) -> tuple[Any, ...]:
        state = codex.FileState(None, "/x/rollout-2026-01-01-abc.jsonl")
        limits: list[tuple[int, Any]] = []
        events, malformed = codex.parse(items, state, lambda ts, v: limits.append((ts, v)))
        decoded = [(ts, json.loads(v) if isinstance(v, bytes) else v) for ts, v in limits]
        return events, malformed, state.dump(), decoded

    read_compiled = read(ext.codex_events(data, 0, end, CODEX_NEEDLES))
    assert read_compiled == read(pure.candidate_lines(data, 0, end, CODEX_NEEDLES))
    assert ext.candidate_lines(data, 0, end, CODEX_NEEDLES) == \
        pure.candidate_lines(data, 0, end, CODEX_NEEDLES)


def test_codex_events_read_plain_lines_without_the_decoder() -> None:
    ext = twins.built(twins.compiled_module("codex"))
    line = (b'{"timestamp":"2026-01-01T00:00:00Z","type":"event_msg","payload":{"type":'
            b'"token_count","info":{"total_token_usage":{"input_tokens":10,'
            b'"cached_input_tokens":4,"output_tokens":3,"reasoning_output_tokens":1,'
            b'"total_tokens":13},"last_token_usage":null,"model":""},"model":"gpt-5",'
            b'"rate_limits":{"primary":{"used_percent":1.5}}}}\n')
    context = b'{"type":"turn_context","payload":{"model":"gpt-5-codex","cwd":"/w"}}\n'
    items = ext.codex_events(line + context, 0, len(line + context), CODEX_NEEDLES)
    assert items == [(1767225600000, b'{"primary":{"used_percent":1.5}}', True,
                      (10, 4, 3, 1, 13), None, "gpt-5"), ("gpt-5-codex", "/w")]


@pytest.mark.parametrize(("compiled", "pure"), twins.pair("claude"))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(any_line(), max_size=30), st.booleans(), st.sampled_from([4096, 8192, 1 << 20]),
       st.sampled_from(["new", "same", "grown", "rewritten", "shrunk"]), st.integers(0, 40))
def test_a_file_scanned_in_c_is_the_file_scanned_in_python(
        compiled: Any, pure: Any, tmp_path: Any, lines: list[bytes], complete: bool,
        window: int, history: str, pad: int) -> None:
    """scan_path (open, head checksum, windows, scan, in C) and tokline/engine/filescan.py
    doing the same around scan_deferred: the same file state, records and malformed
    count, whatever the file's history (new, unchanged head, appended to, rewritten,
    truncated) and however many windows (lines longer than one included)."""
    import functools
    import os

    from tokline.engine import filescan

    ext = twins.built(compiled)
    path = tmp_path / "s.jsonl"
    data = b"x" * pad * 300 + b"\n" + b"\n".join(lines) + (b"\n" if complete else b"")
    first = data[:len(data) // 2]
    path.write_bytes(first if history != "new" else data)
    python = filescan.ClaudeReader(ext.scan, ext.scan_deferred)
    in_c = filescan.ClaudeReader(ext.scan, ext.scan_deferred,
                                 functools.partial(ext.scan_path, window=window))
    old_window = filescan.WINDOW_BYTES
    filescan.WINDOW_BYTES = window
    try:
        known = None
        if history != "new":
            known = filescan.scan_file(str(path), "claude", os.stat(path), None, python).state
            if history == "grown":
                path.write_bytes(data)
            elif history == "rewritten":
                path.write_bytes(b"y" + data[1:])
            elif history == "shrunk":
                path.write_bytes(first[:len(first) // 2])
        st_now = os.stat(path)
        got = [filescan.scan_file(str(path), "claude", st_now, known, reader)
               for reader in (python, in_c)]
    finally:
        filescan.WINDOW_BYTES = old_window
    assert got[0].state == got[1].state
    assert (got[0].rescanned, got[0].scanned_bytes) == (got[1].rescanned, got[1].scanned_bytes)
    assert got[0].records == got[1].records


def test_a_file_that_cannot_be_opened_fails_alike(tmp_path: Any) -> None:
    import os

    from tokline.engine import filescan

    ext = twins.built(twins.compiled_module("claude"))
    errors = []
    st_any = os.stat(tmp_path)
    for whole in (None, ext.scan_path):
        reader = filescan.ClaudeReader(ext.scan, ext.scan_deferred, whole)
        with pytest.raises(OSError) as caught:
            filescan.scan_file(str(tmp_path / "gone.jsonl"), "claude", st_any, None, reader)
        errors.append((type(caught.value), caught.value.errno, caught.value.strerror))
    assert errors[0] == errors[1]


CODEX_PRIOR = st.sampled_from([
    None, '{"session":"s","root":"r","model":"o3","cwd":"/w","prev":[10,4,3,1,13],'
    '"records":false}', '{"session":"s","root":"r","model":null,"cwd":"","prev":null,'
    '"records":true}', '{"prev":[9000000,10,10,0,9000010]}'])


@pytest.mark.parametrize(("compiled", "pure"), twins.pair("codex"))
@given(st.lists(codex_line(), max_size=14), st.booleans(), CODEX_PRIOR,
       st.sampled_from([1, 2, 8]))
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_codex_state_machine_in_c_is_parse(compiled: Any, pure: Any, lines: list[bytes],
                                           crlf: bool, prior: str | None, kept: int) -> None:
    """read_events (the per-line state machine in C, the lines it cannot read handed to
    codex.py's reader) gives parse's events, malformed count, file state and newest rate
    limits, from any state a file's earlier lines left."""
    import os

    from tokline.engine import validate
    from tokline.sources import codex

    ext = twins.built(compiled)
    data = (b"\r\n" if crlf else b"\n").join(lines) + b"\n"
    path = "/x/rollout-2026-01-01-abc.jsonl"
    saved = os.environ.get(validate.LATEST_ENV), codex.LIMITS_KEPT
    os.environ[validate.LATEST_ENV] = str(LATEST)
    codex.LIMITS_KEPT = kept
    try:
        got = []
        for in_c in (False, True):
            state = codex.FileState(prior, path)
            limits: list[tuple[int, Any]] = []

            def on_limits(ts: int, value: Any, into: list[tuple[int, Any]] = limits) -> None:
                into.append((ts, value))

            if in_c:
                events, malformed = ext.read_events(data, 0, len(data), CODEX_NEEDLES, state,
                                                    on_limits, LATEST, codex._parse_line, kept)
            else:
                events, malformed = codex.parse(
                    pure.candidate_lines(data, 0, len(data), CODEX_NEEDLES), state, on_limits)
            got.append((events, malformed, state.dump(),
                        [(ts, json.loads(v) if isinstance(v, bytes) else v) for ts, v in limits]))
    finally:
        codex.LIMITS_KEPT = saved[1]
        if saved[0] is None:
            del os.environ[validate.LATEST_ENV]
        else:
            os.environ[validate.LATEST_ENV] = saved[0]
    assert got[0] == got[1]
