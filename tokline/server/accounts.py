"""Accounts of the team server: passwords, invites, API tokens, web sessions, device codes.

Secrets are stored only as hashes.  Passwords: scrypt (memory-hard: n=2**14, r=8, p=1,
16 MiB per hash, from the standard library), with a random salt, compared in constant
time.  Invite links, API tokens, session cookies and device codes are 32 random bytes, so
a SHA-256 of each is what the database keeps (a stolen table opens nothing); the
plaintext is shown once.  Device codes follow GitHub's device flow: a long code the CLI
polls with, a short one the person types, an expiry and a polling interval that grows
when the CLI polls too fast (``slow_down``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from tokline.server.db import api_tokens, device_codes, invites, users, web_sessions

SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 << 20, "dklen": 32}
INVITE_TTL_MS = 7 * 86_400_000
SESSION_TTL_MS = 14 * 86_400_000
DEVICE_TTL_MS = 15 * 60_000
DEVICE_INTERVAL_S = 5
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
USER_CODE_CHARS = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels (no words), no look-alike digits
VISIBILITY = ("private", "team", "public")
MIN_PASSWORD = 10


class AccountError(ValueError):
    """A refused account action; the message is shown to the person."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    is_admin: bool
    visibility: str
    show_projects: bool


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def digest(secret: str) -> str:
    # surrogatepass: whatever a client sent (JSON may carry a lone "\ud800") hashes to
    # something that matches nothing, instead of failing
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${key.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored:
        hashlib.scrypt(b"x", salt=b"0" * 16, **SCRYPT)  # the same time as a real check
        return False
    try:
        kind, n, r, p, salt, key = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n),
                             r=int(r), p=int(p), maxmem=SCRYPT["maxmem"], dklen=len(key) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), key)


def valid_name(name: str) -> bool:
    return 1 <= len(name) <= 32 and set(name) <= NAME_CHARS and name[0] not in "-_."


def check_name(name: str) -> str:
    if not valid_name(name):
        raise AccountError("a user name is 1-32 characters of a-z, 0-9, '-', '_' and '.'")
    return name


def label_text(text: str, limit: int = 128) -> str:
    """A label a client sent (a host name), as stored: printable characters only (no NUL
    or lone surrogate, which PostgreSQL would refuse), bounded."""
    return "".join(ch for ch in text if ch.isprintable())[:limit] or "a device"


def _user(row: Any) -> User:
    return User(row.id, row.name, bool(row.is_admin), row.visibility, bool(row.show_projects))


def by_name(conn: Connection, name: str) -> User | None:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    return _user(row) if row is not None else None


def add_user(conn: Connection, name: str, admin: bool = False) -> tuple[User, str]:
    """A new account without a password, and its one-time invite token."""
    check_name(name)
    if by_name(conn, name) is not None:
        raise AccountError(f"user {name} exists already")
    conn.execute(insert(users).values(name=name, is_admin=admin, visibility="team",
                                      show_projects=False, created_ms=now_ms()))
    user = by_name(conn, name)
    assert user is not None
    return user, new_invite(conn, user)


def new_invite(conn: Connection, user: User) -> str:
    token = secrets.token_urlsafe(32)
    conn.execute(insert(invites).values(token_hash=digest(token), user_id=user.id,
                                        expires_ms=now_ms() + INVITE_TTL_MS))
    return token


def take_invite(conn: Connection, token: str, password: str) -> User:
    """Set the password of the invite's account; the invite is then spent."""
    row = conn.execute(select(invites).where(invites.c.token_hash == digest(token))).first()
    if row is None or row.used_ms is not None or row.expires_ms < now_ms():
        raise AccountError("this invite link is not valid (used or expired); ask for a new one")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"choose a password of at least {MIN_PASSWORD} characters")
    taken = conn.execute(update(invites).where(invites.c.token_hash == row.token_hash,
                                               invites.c.used_ms.is_(None))
                         .values(used_ms=now_ms()))
    if not taken.rowcount:  # the same link sent twice at once: the first one sets it
        raise AccountError("this invite link is not valid (used or expired); ask for a new one")
    conn.execute(update(users).where(users.c.id == row.user_id)
                 .values(password_hash=hash_password(password)))
    found = conn.execute(select(users).where(users.c.id == row.user_id)).first()
    return _user(found)


def invite_valid(conn: Connection, token: str) -> bool:
    row = conn.execute(select(invites).where(invites.c.token_hash == digest(token))).first()
    return row is not None and row.used_ms is None and row.expires_ms >= now_ms()


def invite_name(conn: Connection, token: str) -> str | None:
    """The name of the account a valid invite is for (the page greets the person by it,
    and a password manager saves the new password under it); None when not valid."""
    row = conn.execute(select(users.c.name).join(invites, invites.c.user_id == users.c.id)
                       .where(invites.c.token_hash == digest(token),
                              invites.c.used_ms.is_(None),
                              invites.c.expires_ms >= now_ms())).first()
    return row.name if row is not None else None


def login(conn: Connection, name: str, password: str) -> User | None:
    if not valid_name(name):  # no such account can exist; the same time as a check
        check_password(password, None)
        return None
    row = conn.execute(select(users).where(users.c.name == name)).first()
    if not check_password(password, row.password_hash if row is not None else None):
        return None
    return _user(row)


def new_token(conn: Connection, user: User, label: str) -> str:
    """An API token for scripts, CI runners and ``tokline login``; shown once."""
    token = "tkl_" + secrets.token_urlsafe(32)
    conn.execute(insert(api_tokens).values(user_id=user.id, token_hash=digest(token),
                                           label=label_text(label), created_ms=now_ms()))
    return token


def token_owner(conn: Connection, token: str) -> tuple[User, int | None] | None:
    """(the token's user, the id of the token if its last use should be noted now)."""
    row = conn.execute(select(api_tokens.c.id.label("token_id"), api_tokens.c.last_used_ms,
                              users).join(users, users.c.id == api_tokens.c.user_id)
                       .where(api_tokens.c.token_hash == digest(token))).first()
    if row is None:
        return None
    stale = row.last_used_ms is None or now_ms() - row.last_used_ms > 60_000
    return _user(row), row.token_id if stale else None  # not a write per call


def note_token_use(conn: Connection, token_id: int) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id)
                 .values(last_used_ms=now_ms()))


def user_of_token(conn: Connection, token: str) -> User | None:
    """The token's user, noting its use (``conn`` in a transaction that may write)."""
    found = token_owner(conn, token)
    if found is None:
        return None
    if found[1] is not None:
        note_token_use(conn, found[1])
    return found[0]


def new_session(conn: Connection, user: User) -> tuple[str, str]:
    """(cookie value, CSRF token) of a new web session."""
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    conn.execute(delete(web_sessions).where(web_sessions.c.expires_ms < now_ms()))
    conn.execute(insert(web_sessions).values(id_hash=digest(sid), user_id=user.id, csrf=csrf,
                                             expires_ms=now_ms() + SESSION_TTL_MS))
    return sid, csrf


def session(conn: Connection, sid: str) -> tuple[User, str] | None:
    row = conn.execute(select(web_sessions.c.csrf, web_sessions.c.expires_ms, users)
                       .join(users, users.c.id == web_sessions.c.user_id)
                       .where(web_sessions.c.id_hash == digest(sid))).first()
    if row is None or row.expires_ms < now_ms():
        return None
    return User(row.id, row.name, bool(row.is_admin), row.visibility,
                bool(row.show_projects)), row.csrf


def end_session(conn: Connection, sid: str) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == digest(sid)))


def set_visibility(conn: Connection, user: User, visibility: str, show_projects: bool) -> None:
    if visibility not in VISIBILITY:
        raise AccountError("visibility is private, team or public")
    conn.execute(update(users).where(users.c.id == user.id)
                 .values(visibility=visibility, show_projects=show_projects))


# --- device codes (the CLI's login) -------------------------------------------------------

def new_device_code(conn: Connection, label: str) -> dict[str, Any]:
    device = secrets.token_urlsafe(32)
    for _ in range(10):
        code = "".join(secrets.choice(USER_CODE_CHARS) for _ in range(8))
        taken = conn.execute(select(device_codes.c.user_code)
                             .where(device_codes.c.user_code == code)).first()
        if taken is None:
            break
    conn.execute(delete(device_codes).where(device_codes.c.expires_ms < now_ms()))
    conn.execute(insert(device_codes).values(
        device_hash=digest(device), user_code=code, status="pending", label=label_text(label),
        expires_ms=now_ms() + DEVICE_TTL_MS, interval_s=DEVICE_INTERVAL_S))
    return {"device_code": device, "user_code": f"{code[:4]}-{code[4:]}",
            "expires_in": DEVICE_TTL_MS // 1000, "interval": DEVICE_INTERVAL_S}


def normal_user_code(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isascii() and ch.isalnum())


def approve_device(conn: Connection, user: User, user_code: str, allow: bool) -> bool:
    """The signed-in person approves (or denies) the code shown by their CLI."""
    done = conn.execute(update(device_codes).where(
        device_codes.c.user_code == normal_user_code(user_code),
        device_codes.c.status == "pending", device_codes.c.expires_ms >= now_ms())
        .values(status="approved" if allow else "denied", user_id=user.id))
    return bool(done.rowcount)


def poll_device(conn: Connection, device_code: str) -> dict[str, Any]:
    """The CLI's poll: an error code as in RFC 8628, or the new API token (once)."""
    row = conn.execute(select(device_codes).where(
        device_codes.c.device_hash == digest(device_code))).first()
    now = now_ms()
    if row is None or row.status == "used":
        return {"error": "invalid_grant"}
    if row.expires_ms < now:
        return {"error": "expired_token"}
    if row.last_poll_ms is not None and now - row.last_poll_ms < row.interval_s * 1000:
        conn.execute(update(device_codes).where(device_codes.c.device_hash == row.device_hash)
                     .values(interval_s=row.interval_s + 5, last_poll_ms=now))
        return {"error": "slow_down", "interval": row.interval_s + 5}
    conn.execute(update(device_codes).where(device_codes.c.device_hash == row.device_hash)
                 .values(last_poll_ms=now))
    if row.status == "denied":
        return {"error": "access_denied"}
    if row.status != "approved":
        return {"error": "authorization_pending"}
    claimed = conn.execute(update(device_codes).where(
        device_codes.c.device_hash == row.device_hash, device_codes.c.status == "approved")
        .values(status="used"))
    if not claimed.rowcount:  # two polls at once: one gets the token
        return {"error": "invalid_grant"}
    owner = conn.execute(select(users).where(users.c.id == row.user_id)).first()
    if owner is None:  # the account went away meanwhile
        return {"error": "access_denied"}
    token = new_token(conn, _user(owner), f"device login: {row.label}")
    return {"access_token": token, "token_type": "bearer", "user": owner.name}
