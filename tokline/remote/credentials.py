"""Provider keys: an environment variable, else the OS keyring, else (only when the user
opted in) a private plaintext file.  Never config.toml, the ledger, snapshots or logs.

Keyring entries: service ``tokline``, user ``<provider>:<account>``.  Keyring calls run
with a timeout, since a locked keyring can block forever.  A plaintext file is used only
with ``TOKLINE_PLAINTEXT_SECRETS=1``: ``$XDG_DATA_HOME/tokline/secrets.json``, mode 0600.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from tokline.errors import ToklineError
from tokline.prompt.statefiles import data_dir, write_private

SERVICE = "tokline"
KEYRING_TIMEOUT_S = 5.0
T = TypeVar("T")


class SecretStoreError(ToklineError):
    """No usable place to keep a secret; the message says what the user can do."""


def env_name(provider: str, account: str = "default") -> str:
    """``TOKLINE_OPENROUTER_KEY`` for the default account, ``…_KEY_WORK`` for ``work``."""
    suffix = "" if account == "default" else "_" + account.upper().replace("-", "_")
    return f"TOKLINE_{provider.upper().replace('-', '_')}_KEY{suffix}"


def _plaintext_path() -> str:
    return os.path.join(data_dir(), "secrets.json")


def _plaintext_allowed() -> bool:
    return os.environ.get("TOKLINE_PLAINTEXT_SECRETS", "") in ("1", "true", "yes")


def _with_timeout(call: Callable[[], T]) -> T:
    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(KEYRING_TIMEOUT_S)
    if worker.is_alive():
        raise SecretStoreError("the keyring did not answer within 5 s (is it locked?); unlock "
                               "it, or set TOKLINE_PLAINTEXT_SECRETS=1 to keep keys in a "
                               "private file instead")
    if failure:
        raise failure[0]
    return result[0]  # type: ignore[no-any-return]


def _keyring() -> Any:
    try:
        import keyring  # noqa: PLC0415 - only auth and remote fetches load it
        from keyring.backends import fail  # noqa: PLC0415
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        return None
    return keyring


def _no_store() -> SecretStoreError:
    return SecretStoreError(
        "no usable OS keyring (a headless machine?): install and unlock one (e.g. "
        "gnome-keyring, or keyrings.alt), set the key in an environment variable, or set "
        "TOKLINE_PLAINTEXT_SECRETS=1 to keep keys in a private file")


def _read_plaintext() -> dict[str, str]:
    try:
        with open(_plaintext_path(), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def get(provider: str, account: str = "default") -> tuple[str | None, str]:
    """(secret or None, where it comes from: env, keyring, file or none)."""
    value = os.environ.get(env_name(provider, account))
    if value:
        return value, "env " + env_name(provider, account)
    user = f"{provider}:{account}"
    if _plaintext_allowed():
        found = _read_plaintext().get(user)
        if found:
            return found, "file " + _plaintext_path()
    ring = _keyring()
    if ring is not None:
        secret = _with_timeout(lambda: ring.get_password(SERVICE, user))
        if secret:
            return secret, "keyring"
    return None, "none"


def store(provider: str, account: str, secret: str) -> str:
    user = f"{provider}:{account}"
    if _plaintext_allowed():
        data = _read_plaintext()
        data[user] = secret
        write_private(_plaintext_path(), json.dumps(data).encode())
        return "file " + _plaintext_path()
    ring = _keyring()
    if ring is None:
        raise _no_store()
    _with_timeout(lambda: ring.set_password(SERVICE, user, secret))
    return "keyring"


def delete(provider: str, account: str) -> bool:
    user = f"{provider}:{account}"
    removed = False
    if _plaintext_allowed():
        data = _read_plaintext()
        if data.pop(user, None) is not None:
            write_private(_plaintext_path(), json.dumps(data).encode())
            removed = True
    ring = _keyring()
    if ring is not None:
        try:
            _with_timeout(lambda: ring.delete_password(SERVICE, user))
            removed = True
        except Exception:
            pass
    return removed


def redact(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
