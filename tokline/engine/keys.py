"""Ledger keys: 64-bit integers, because SQLite inserts them about twice as fast as text.

``key64(group, member)`` puts FNV-1a of ``group`` in the high 48 bits and of ``member``
in the low 16, so every key of one group (the responses sharing a message id) lies in
``group_range(group)``.  ``key64`` is the compiled ``tokline.engine._keys_c.key64`` unless
tokline/prompt/native.py chooses the twin ``key64_py`` here; they must agree.
Two responses of one message id collide with chance 2**-16; they then merge by field
maximum, which is what the sidechain rule would have kept anyway.
"""

from __future__ import annotations

from tokline.prompt import native

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1
_LOW = 0xFFFF


def fnv1a(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK64
    return h


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def key64_py(group: str, member: str) -> int:
    high = fnv1a(group.encode("utf-8")) & ~_LOW & _MASK64
    return _signed(high | (fnv1a(member.encode("utf-8")) & _LOW))


def group_range(group: str) -> tuple[int, int]:
    low = key64(group, "") & ~_LOW
    return low, low | _LOW


_compiled = native.compiled("keys")
key64: Callable[[str, str], int] = _compiled.key64 if _compiled is not None else key64_py
