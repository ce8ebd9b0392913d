"""Remote quota sources against a fake server on 127.0.0.1, and keys in a real keyring backend."""

from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path

import keyring
import keyring.backend
import pytest
from keyring.backends import fail
from remote_fakes import Fake, MemoryKeyring, SlowKeyring

from tokline import cli, remote
from tokline.prompt import statefiles
from tokline.remote import credentials as secrets

SECRET = "sk-or-v1-test-secret-0123456789"


def login(monkeypatch: pytest.MonkeyPatch, key: str = SECRET) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(key + "\n"))
    return cli.main(["auth", "login", "openrouter"])


KEY_OK = {"data": {"label": "sk-or-v1-au7...890", "limit": 100, "limit_remaining": 74.5,
                   "usage": 25.5, "limit_reset": "monthly"}}
CREDITS_OK = {"data": {"total_credits": 100.5, "total_usage": 25.75}}


def test_login_fetch_and_quota(home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    _, fake = server
    fake.routes.update({"/api/v1/key": (200, {}, KEY_OK), "/api/v1/credits": (200, {}, CREDITS_OK)})
    assert login(monkeypatch) == 0
    assert "stored in the keyring" in capsys.readouterr().out
    assert ring.store[("tokline", "openrouter:default")] == SECRET
    assert statefiles.remote_due()
    assert cli.main(["quota", "--refresh", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    [window] = [w for w in out["windows"] if w["source"] == "openrouter"]
    assert window["used_percent"] == 25.5 and window["remaining_usd"] == 74.5
    assert window["balance_usd"] == pytest.approx(74.75)
    assert fake.seen_auth[0] == f"Bearer {SECRET}"
    assert cli.main(["auth", "status"]) == 0
    status = capsys.readouterr().out
    assert re.search(r"^openrouter +keyring; last fetch", status, re.M) and SECRET not in status
    # the key never lands in a file tokline wrote
    for path in home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_credits_refused_falls_back_to_key(home: Path, ring: MemoryKeyring,
                                           server: tuple[str, type[Fake]],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, fake = server
    fake.routes.update({"/api/v1/key": (200, {}, KEY_OK),
                        "/api/v1/credits": (403, {}, {"error": {"code": 403}})})
    login(monkeypatch)
    assert remote.fetch_due(force=True) == ["openrouter:default"]
    [window] = remote.windows()
    assert window["used_percent"] == 25.5 and "balance_usd" not in window
    assert remote.load_state()["openrouter:default"]["error"] is None


def test_unauthorized_keeps_the_last_numbers(home: Path, ring: MemoryKeyring,
                                             server: tuple[str, type[Fake]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _, fake = server
    fake.routes.update({"/api/v1/key": (200, {}, KEY_OK), "/api/v1/credits": (200, {}, CREDITS_OK)})
    login(monkeypatch)
    remote.fetch_due(force=True)
    fake.routes["/api/v1/key"] = (401, {}, {"error": {"code": 401, "message": "bad key"}})
    remote.fetch_due(force=True)
    entry = remote.load_state()["openrouter:default"]
    assert "tokline auth login openrouter" in entry["error"] and SECRET not in entry["error"]
    [window] = remote.windows()
    assert window["used_percent"] == 25.5 and window["stale"] is True


def test_rate_limited_provider_is_not_stormed(home: Path, ring: MemoryKeyring,
                                              server: tuple[str, type[Fake]],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _, fake = server
    fake.routes["/api/v1/key"] = (429, {"Retry-After": "120"}, {"error": {"code": 429}})
    login(monkeypatch)
    for _ in range(100):
        remote.fetch_due()
    assert fake.hits.get("/api/v1/key") == 1
    entry = remote.load_state()["openrouter:default"]
    assert entry["backoff_until"] - entry["error_at"] == pytest.approx(120)
    remote.fetch_due(now=time.time() + 121)
    assert fake.hits["/api/v1/key"] == 2


def test_server_errors_back_off_exponentially(home: Path, ring: MemoryKeyring,
                                              server: tuple[str, type[Fake]],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _, fake = server
    fake.routes["/api/v1/key"] = (503, {}, {"error": {"code": 503}})
    login(monkeypatch)
    now = time.time()
    waits = []
    for _ in range(3):
        remote.fetch_due(now=now)
        entry = remote.load_state()["openrouter:default"]
        waits.append(entry["backoff_until"] - now)
        now = entry["backoff_until"]
    assert waits == [30, 60, 120] and fake.hits["/api/v1/key"] == 3


def test_malformed_answer(home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    _, fake = server
    fake.routes["/api/v1/key"] = (200, {}, b"<html>not json")
    login(monkeypatch)
    remote.fetch_due(force=True)
    assert "not JSON" in remote.load_state()["openrouter:default"]["error"]


def test_hung_provider_times_out_and_status_stays_fast(home: Path, ring: MemoryKeyring,
                                                      server: tuple[str, type[Fake]],
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _, fake = server
    fake.routes["/api/v1/key"] = (200, {}, "hang")
    login(monkeypatch)
    assert cli.main(["scan", "-q"]) == 0
    started = time.perf_counter()
    remote.fetch_due(force=True)
    assert time.perf_counter() - started < 7
    assert "no answer within 5 s" in remote.load_state()["openrouter:default"]["error"]
    capsys.readouterr()
    started = time.perf_counter()
    assert cli.main(["status"]) == 0  # answered from the snapshot, never from the network
    assert time.perf_counter() - started < 0.5
    assert capsys.readouterr().out.startswith("$")


def test_codex_plan_usage_reads_codex_login_read_only(home: Path, ring: MemoryKeyring,
                                                     server: tuple[str, type[Fake]]) -> None:
    _, fake = server
    auth = home / ".codex" / "auth.json"
    auth.parent.mkdir()
    auth.write_text(json.dumps({"OPENAI_API_KEY": None, "tokens": {
        "access_token": "codex-access-token", "refresh_token": "r", "account_id": "acct"}}))
    before = (auth.read_bytes(), auth.stat().st_mtime_ns)
    fake.routes["/backend-api/wham/usage"] = (200, {}, {
        "plan_type": "pro", "rate_limit": {
            "primary_window": {"used_percent": 43, "limit_window_seconds": 604800,
                               "reset_at": 1767407914},
            "secondary_window": None}})
    assert remote.fetch_due(force=True) == ["codex:default"]
    [window] = remote.windows()
    assert (window["source"], window["window"], window["used_percent"]) == ("codex", "7d", 43.0)
    fake.routes["/backend-api/wham/usage"] = (401, {}, {"detail": "expired"})
    remote.fetch_due(force=True)
    assert "run `codex`" in remote.load_state()["codex:default"]["error"]
    assert remote.windows()[0]["used_percent"] == 43.0
    assert (auth.read_bytes(), auth.stat().st_mtime_ns) == before


def test_no_keyring_is_a_clear_message_and_plaintext_needs_opt_in(
        home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert login(monkeypatch) == 1
        err = capsys.readouterr().err
        assert "no usable OS keyring" in err and "TOKLINE_PLAINTEXT_SECRETS" in err
        monkeypatch.setenv("TOKLINE_PLAINTEXT_SECRETS", "1")
        assert login(monkeypatch) == 0
        path = Path(statefiles.data_dir()) / "secrets.json"
        assert path.stat().st_mode & 0o077 == 0
        assert secrets.get("openrouter") == (SECRET, f"file {path}")
        config = Path(statefiles.config_path())
        assert not config.exists() or SECRET not in config.read_text()
    finally:
        keyring.set_keyring(previous)


def test_env_var_overrides_and_locked_keyring_times_out(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(SlowKeyring())
    monkeypatch.setattr(secrets, "KEYRING_TIMEOUT_S", 0.3)
    try:
        monkeypatch.setenv("TOKLINE_OPENROUTER_KEY", "from-env")
        assert secrets.get("openrouter") == ("from-env", "env TOKLINE_OPENROUTER_KEY")
        monkeypatch.delenv("TOKLINE_OPENROUTER_KEY")
        with pytest.raises(secrets.SecretStoreError, match="did not answer"):
            secrets.get("openrouter")
    finally:
        keyring.set_keyring(previous)
        os.environ.pop("TOKLINE_OPENROUTER_KEY", None)


CLAUDE_USAGE = {
    "five_hour": {"utilization": 11.0, "resets_at": "2026-07-03T00:30:00.282668+00:00"},
    "seven_day": {"utilization": 9.0, "resets_at": "2026-07-08T09:00:00.282694+00:00"},
    "seven_day_oauth_apps": None, "seven_day_opus": None,
    "seven_day_sonnet": {"utilization": 1.0, "resets_at": "2026-07-08T14:59:59.600981+00:00"},
    "iguana_necktie": None,
    "extra_usage": {"is_enabled": True, "monthly_limit": 10000, "used_credits": 500,
                    "utilization": 5.0, "currency": "USD"},
    "limits": [
        {"kind": "session", "group": "session", "percent": 11,
         "resets_at": "2026-07-03T00:30:00.282668+00:00", "scope": None, "is_active": True},
        {"kind": "weekly_scoped", "group": "weekly", "percent": 5,
         "resets_at": "2026-07-08T09:00:00.283070+00:00",
         "scope": {"model": {"id": None, "display_name": "Fable"}, "surface": None},
         "is_active": False}]}


def claude_login(home: Path, scopes: list[str]) -> Path:
    creds = home / ".claude" / ".credentials.json"
    creds.parent.mkdir(exist_ok=True)
    creds.write_text(json.dumps({"claudeAiOauth": {
        "accessToken": "sk-ant-oat01-claude-secret", "refreshToken": "sk-ant-ort01-x",
        "expiresAt": 1767396165210, "scopes": scopes, "subscriptionType": "max"}}))
    return creds


def test_claude_oauth_usage_windows_and_read_only_login(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]]) -> None:
    _, fake = server
    creds = claude_login(home, ["user:inference", "user:profile"])
    before = (creds.read_bytes(), creds.stat().st_mtime_ns)
    fake.routes["/api/oauth/usage"] = (200, {}, CLAUDE_USAGE)
    assert remote.fetch_due(force=True) == ["claude:default"]
    got = {w["window"]: w for w in remote.windows()}
    assert {k: w["used_percent"] for k, w in got.items()} == {
        "5h": 11.0, "7d": 9.0, "7d_sonnet": 1.0, "7d_fable": 5.0, "extra": 5.0}
    assert got["5h"]["resets_at"] == pytest.approx(1783038600.282668)
    assert (got["extra"]["used_usd"], got["extra"]["limit_usd"]) == (5.0, 100.0)
    assert got["7d"]["plan"] == "max" and got["7d"]["kind"] == "official"
    assert fake.seen_auth == ["Bearer sk-ant-oat01-claude-secret"]
    # Claude's TTL is five minutes: a prompt-driven refresh a minute later does not ask.
    assert remote.fetch_due(now=time.time() + 60) == []
    fake.routes["/api/oauth/usage"] = (401, {}, {"type": "error", "error": {
        "type": "authentication_error", "message": "OAuth token has expired."}})
    remote.fetch_due(force=True)
    assert "run `claude`" in remote.load_state()["claude:default"]["error"]
    assert {w["window"]: w["used_percent"] for w in remote.windows()}["5h"] == 11.0
    assert (creds.read_bytes(), creds.stat().st_mtime_ns) == before
    for path in (home / ".local").rglob("*"):
        if path.is_file():
            assert b"sk-ant-oat01" not in path.read_bytes()


def test_claude_retry_after_zero_backs_off_for_minutes(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]]) -> None:
    _, fake = server
    claude_login(home, [])
    fake.routes["/api/oauth/usage"] = (429, {"retry-after": "0"}, {
        "error": {"message": "Rate limited. Please try again later.", "type": "rate_limit_error"}})
    now = time.time()
    for step in range(100):
        remote.fetch_due(force=False, now=now + step * 2)
    assert fake.hits["/api/oauth/usage"] == 1
    entry = remote.load_state()["claude:default"]
    assert entry["backoff_until"] - entry["error_at"] >= 300
    remote.fetch_due(now=now + 301)
    assert fake.hits["/api/oauth/usage"] == 2
    entry = remote.load_state()["claude:default"]
    assert entry["backoff_until"] - entry["error_at"] >= 600


def test_claude_setup_token_without_profile_scope_is_not_sent(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]]) -> None:
    _, fake = server
    claude_login(home, ["user:inference"])
    remote.fetch_due(force=True)
    assert "user:profile" in remote.load_state()["claude:default"]["error"]
    assert fake.hits == {}


def test_fetched_official_window_beats_the_local_estimate() -> None:
    estimate = {"source": "claude", "window": "5h", "used_percent": 70.0, "kind": "estimate",
                "as_of": 2000.0}
    official = {"source": "claude", "window": "5h", "used_percent": 11.0, "kind": "official",
                "as_of": 1000.0}
    assert remote.merge([estimate], [official]) == [official]
