"""JSON for the prompt's paths without ``import json``, which pulls in ``re`` and ``enum``
(about 8 ms, most of a status line's budget).

``loads`` drives CPython's C scanner (``_json.make_scanner``, what json.loads uses
underneath) and falls back to json.loads where that accelerator is missing.  ``dumps``
covers what tokline writes on these paths: dicts, lists, strings, numbers, booleans, None.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _Context:
    strict = False  # control characters inside strings pass (what tokline's own files hold)
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        raise ValueError(f"not JSON: {name}")


class _StrictContext(_Context):
    strict = True  # as json.loads: a raw control character inside a string is an error


_scan: Any
_scan_strict: Any
_quote: Any
try:
    from _json import encode_basestring_ascii as _quote
    from _json import make_scanner as _make_scanner

    _scan = _make_scanner(_Context())  # type: ignore[arg-type]
    _scan_strict = _make_scanner(_StrictContext())  # type: ignore[arg-type]
except ImportError:  # another Python: the standard module is fine there
    _scan = _scan_strict = _quote = None

_BLANKS = " \t\n\r"


def loads(text: str, strict: bool = False) -> Any:
    """Parse one JSON document; ValueError when it is not one.  ``strict``: control
    characters inside strings are errors, as with json.loads."""
    if _scan is None:
        import json  # noqa: PLC0415

        return json.loads(text, strict=strict)
    start = len(text) - len(text.lstrip(_BLANKS))
    try:
        value, end = (_scan_strict if strict else _scan)(text, start)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    if text[end:].strip(_BLANKS):
        raise ValueError("extra data after the JSON document")
    return value


def _string(text: str) -> str:
    if _quote is not None:
        return str(_quote(text))
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch < " " or "\ud800" <= ch <= "\udfff":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def dumps(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return "null"
        return repr(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_string(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
