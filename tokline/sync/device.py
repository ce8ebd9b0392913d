"""This ledger's device: a stable random id and a name, and how ids are written.

The id is a random positive 63-bit integer, made once and kept in ``device-id`` beside the
ledger, so ``tokline scan --rebuild`` (a new ledger file) keeps it.  It is also the default
of ``usage.device`` (tokline/ledger/schema.py): every row this ledger's own scan records
is this device's.  In segments and on screen an id is 16 hex digits.
"""

from __future__ import annotations

import os

# Imported on the refresh path (the ledger's schema makes new ledgers with the id): only
# ``os`` at module level; making an id or a name imports what it needs then.
ID_FILE = "device-id"
HEX_DIGITS = frozenset("0123456789abcdef")
NAME_LIMIT = 64  # characters of a device's name


def id_file(ledger_path: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(ledger_path)), ID_FILE)


def local_id(ledger_path: str) -> int:
    """The device id of the ledger at ``ledger_path``, made on first use."""
    path = id_file(ledger_path)
    try:
        with open(path, encoding="ascii") as fh:
            return parse_hex(fh.read().strip())
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    import secrets  # noqa: PLC0415 - once per ledger

    made = secrets.randbits(63) or 1
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(to_hex(made) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # the first writer wins when two processes race
    except FileExistsError:
        os.unlink(tmp)
        with open(path, encoding="ascii") as fh:
            return parse_hex(fh.read().strip())
    os.unlink(tmp)
    return made


def to_hex(device: int) -> str:
    return f"{device:016x}"


def parse_hex(text: str) -> int:
    """A device id from its 16 hex digits; ValueError for anything else (or zero)."""
    if len(text) != 16 or not HEX_DIGITS.issuperset(text):
        raise ValueError(f"not a device id: {text[:40]!r}")
    value = int(text, 16)
    if not 0 < value < 1 << 63:
        raise ValueError(f"device id out of range: {text}")
    return value


def default_name() -> str:
    import socket  # noqa: PLC0415 - only when no name is configured

    return clean_name(socket.gethostname()) or "this-device"


def clean_name(name: str) -> str:
    """A device name as it is stored and shown: printable, no separators, bounded."""
    kept = "".join(ch for ch in name if ch.isprintable() and ch not in "/\\\x1f")
    return kept.strip()[:NAME_LIMIT]
