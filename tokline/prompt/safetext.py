"""Text from logs, stdin or remote answers made safe to print on a terminal.

Every string that tokline did not write itself (a model name, a session id, a cwd, a
source's note or error, a path found on disk) goes through :func:`clean` before it
reaches a terminal, a prompt, tmux or the dashboard.  The rule:

* Control characters are shown as visible escapes, never passed through: C0 (U+0000 to
  U+001F: NUL, BEL, backspace, CR, LF, tab, ESC, …) and DEL as ``\\x1b``-style escapes;
  C1 (U+0080 to U+009F, e.g. the one-byte CSI U+009B) as ``\\x9b``.  A user debugging a
  strange name sees what was there, and no terminal acts on it.
* Bidirectional and invisible format controls are shown as ``\\u202e``-style escapes:
  U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069 (they reorder what follows
  them: "Trojan Source"), U+200B, U+2060 to U+2064, U+FEFF, U+180E (invisible, they make
  two different names look alike), U+2028, U+2029 (line breaks to some terminals and
  editors), U+FFF9 to U+FFFB, and lone surrogates (undecodable bytes of a path, which
  would otherwise end the program when printed).  The joiners U+200C and U+200D stay:
  emoji sequences and several scripts need them, and they move nothing.
* Length is capped: at most ``limit`` characters (``LIMIT`` unless given) of the result,
  the last of them an ellipsis "…" when anything was cut.  Only the first ``limit``
  characters of the input are looked at, so a 50 MB name costs no more than a short one.

A backslash is left as it is (Windows paths stay readable), so ``\\x1b`` in the output
may also have been those four characters in the input.  Each target's own escaping
(zsh ``%``, tmux ``#``) still applies after this.  JSON output is data and is not
cleaned: JSON escapes every control character itself, and a program reading it gets the
exact value.  Stdlib only, no imports at all: the status commands use it.
"""

from __future__ import annotations

__all__ = ["LIMIT", "clean", "is_clean"]

LIMIT = 200  # characters per field: long paths fit, a 50 MB name does not
ELLIPSIS = "…"

_FORMATS = frozenset((0x061C, 0x180E, 0x200B, 0x200E, 0x200F, *range(0x202A, 0x202F),
                      *range(0x2060, 0x2065), *range(0x2066, 0x206A), 0x2028, 0x2029,
                      0xFEFF, *range(0xFFF9, 0xFFFC)))
# What an ASCII text may hold that is escaped: C0 and DEL (the rest needs non-ASCII).
_ASCII_UNSAFE = frozenset(map(chr, (*range(0x20), 0x7F)))


def _escape(code: int) -> str | None:
    """The visible escape of one code point, None when it is shown as it is."""
    if code < 0x20 or 0x7F <= code < 0xA0:
        return f"\\x{code:02x}"
    if code in _FORMATS or 0xD800 <= code < 0xE000:
        return f"\\u{code:04x}"
    return None


class _Table:
    """str.translate's mapping, computed per character (no 2,000-entry table to build
    at import; texts are at most ``limit`` + 1 characters when this runs)."""

    __slots__ = ("keep",)

    def __init__(self, keep: str) -> None:
        self.keep = keep

    def __getitem__(self, code: int) -> str:
        escaped = _escape(code)
        if escaped is None or chr(code) in self.keep:
            raise LookupError(code)
        return escaped


def is_clean(text: str) -> bool:
    """Nothing in ``text`` that :func:`clean` would escape (its length aside)."""
    if text.isascii():
        return _ASCII_UNSAFE.isdisjoint(text)
    return all(_escape(ord(ch)) is None for ch in text)


def clean(text: object, limit: int | None = LIMIT, keep: str = "") -> str:
    """``text`` (str() of anything else) with control and bidi characters escaped and at
    most ``limit`` characters long (None: no cap); characters in ``keep`` pass as they
    are (the status line's own time-left placeholder)."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if limit is not None:
        text = text[:limit + 1]  # every input character is at least one of the output's
    out = text if is_clean(text) else text.translate(_Table(keep))
    if limit is None or len(out) <= limit:
        return out
    return _cut(text, limit, keep)


def _cut(text: str, limit: int, keep: str) -> str:
    """The escaped text cut to ``limit`` characters with an ellipsis, never inside an
    escape."""
    room = max(0, limit - len(ELLIPSIS))
    pieces: list[str] = []
    used = 0
    for ch in text:
        piece = ch if ch in keep else (_escape(ord(ch)) or ch)
        if used + len(piece) > room:
            break
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces) + ELLIPSIS if limit >= len(ELLIPSIS) else ELLIPSIS[:limit]
