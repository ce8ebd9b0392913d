"""Issue 18, no false readings: every shape of the Claude usage answer and of Codex's
buckets, served by stand-ins on 127.0.0.1 (remote_fakes), read into the right windows;
Claude Code's status line's failed-fetch 0 %; the Keychain on macOS through a stand-in
``security``; ``tokline quota`` asking a provider never asked."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from remote_fakes import (
    Fake,
    MemoryKeyring,
    claude_legacy,
    claude_limit,
    claude_login,
    codex_bucket,
    codex_login,
    iso,
    recording_program,
)

from tokline import cli, remote
from tokline.prompt import statefiles
from tokline.remote import claude_usage
from tokline.sources import codex

USAGE = "/api/oauth/usage"
WHAM = "/backend-api/wham/usage"
HOUR = 3600.0
DAY = 86400.0


def claude_windows() -> dict[str, dict[str, Any]]:
    return {w["window"]: w for w in remote.windows() if w["source"] == "claude"}


def status(capsys: pytest.CaptureFixture[str], template: str) -> str:
    capsys.readouterr()
    assert cli.main(["status", "--sync", "--target", "plain", "--format", template]) == 0
    return capsys.readouterr().out.strip()


def quota_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert cli.main(["quota", "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_legacy_keys_only(home: Path, ring: MemoryKeyring,
                          server: tuple[str, type[Fake]]) -> None:
    _, fake = server
    claude_login(home)
    now = time.time()
    fake.routes[USAGE] = (200, {}, claude_legacy(
        11.0, 9.0, now + HOUR, now + 3 * DAY,
        seven_day_sonnet={"utilization": 1.0, "resets_at": iso(now + 3 * DAY)}))
    assert remote.fetch_due(force=True) == ["claude:default"]
    got = claude_windows()
    assert {k: w["used_percent"] for k, w in got.items()} == {"5h": 11.0, "7d": 9.0,
                                                             "7d_sonnet": 1.0}
    assert (got["5h"]["window_s"], got["7d"]["window_s"]) == (5 * HOUR, 7 * DAY)
    assert got["5h"]["resets_at"] == pytest.approx(now + HOUR, abs=1e-3)


def test_limits_list_alone_gives_the_5h_and_7d_windows(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        capsys: pytest.CaptureFixture[str]) -> None:
    """The answer once the legacy keys are gone: only ``limits[]`` (before issue 18 this
    gave no 5h and no 7d window at all)."""
    _, fake = server
    claude_login(home)
    now = time.time()
    fake.routes[USAGE] = (200, {}, {"limits": [
        claude_limit("session", 23, now + HOUR, active=True),
        claude_limit("weekly_all", 41, now + 5 * DAY),
        claude_limit("weekly_scoped", 88, now + 5 * DAY, model="Opus 5")]})
    remote.fetch_due(force=True)
    got = claude_windows()
    assert {k: w["used_percent"] for k, w in got.items()} == {"5h": 23.0, "7d": 41.0,
                                                             "7d_opus_5": 88.0}
    assert got["5h"]["active"] is True and got["7d"]["active"] is False
    assert (got["5h"]["window_s"], got["7d"]["window_s"], got["7d_opus_5"]["window_s"]) == (
        5 * HOUR, 7 * DAY, 7 * DAY)
    # the per-model cap binds: it is what the short line (the default template) shows
    assert status(capsys, "{quota.claude.5h} {quota.claude.7d} | {quota.bind}") == \
        "23% 41% | 7d_opus_5 88%"
    assert status(capsys, "full").endswith(" · 7d_opus_5 88%↑")  # ahead of an even burn


def test_both_shapes_limits_first_legacy_fills_in(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]]) -> None:
    _, fake = server
    claude_login(home)
    now = time.time()
    answer = claude_legacy(11.0, 9.0, now + HOUR, now + 3 * DAY,
                           seven_day_sonnet={"utilization": 1.0, "resets_at": iso(now + DAY)})
    answer["limits"] = [claude_limit("session", 12, now + HOUR, active=True),
                        claude_limit("weekly_scoped", 5, now + 3 * DAY, model="Fable")]
    fake.routes[USAGE] = (200, {}, answer)
    remote.fetch_due(force=True)
    assert {k: w["used_percent"] for k, w in claude_windows().items()} == {
        "5h": 12.0, "7d": 9.0, "7d_sonnet": 1.0, "7d_fable": 5.0}


@pytest.mark.parametrize("limits", [
    None, "x", [None, "x", {"kind": None, "percent": 5}, {"kind": "session", "percent": None},
                {"kind": "weekly_scoped", "percent": 7, "scope": {"model": None}},
                {"kind": "weekly_scoped", "percent": 7, "scope": None}]])
def test_nulls_cost_only_their_own_window(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]], limits: object) -> None:
    _, fake = server
    claude_login(home)
    now = time.time()
    answer = claude_legacy(17.0, None, now + HOUR, None,
                           seven_day_sonnet={"utilization": None, "resets_at": None})
    answer["extra_usage"] = {"is_enabled": True, "monthly_limit": None, "used_credits": None,
                             "utilization": None, "currency": "USD"}
    answer["limits"] = limits
    fake.routes[USAGE] = (200, {}, answer)
    remote.fetch_due(force=True)
    assert {k: w["used_percent"] for k, w in claude_windows().items()} == {"5h": 17.0}
    assert remote.load_state()["claude:default"]["error"] is None


def test_zero_without_reset_is_no_reading(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        capsys: pytest.CaptureFixture[str]) -> None:
    _, fake = server
    claude_login(home)
    now = time.time()
    answer = claude_legacy(0.0, 30.0, None, now + 3 * DAY)
    answer["limits"] = [claude_limit("session", 0, None, active=True),
                        claude_limit("weekly_all", 30, now + 3 * DAY)]
    fake.routes[USAGE] = (200, {}, answer)
    remote.fetch_due(force=True)
    assert set(claude_windows()) == {"7d"}
    assert status(capsys, "[5h {quota.claude.5h}]|{quota.bind}") == "|7d 30%"
    assert [w["window"] for w in quota_json(capsys)["windows"]] == ["7d"]


def _payload(five: float, resets: float | None) -> str:
    return json.dumps({"session_id": "s", "model": {"display_name": "Opus"},
                       "rate_limits": {"five_hour": {"used_percentage": five,
                                                     "resets_at": resets}}})


def test_status_lines_failed_fetch_never_replaces_a_reading(
        home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Claude Code sends 0 % without a reset when its own usage fetch failed."""
    resets = time.time() + 2 * HOUR

    def statusline(payload: str) -> str:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(payload.encode())))
        capsys.readouterr()
        assert cli.main(["statusline"]) == 0
        return capsys.readouterr().out.strip()

    # 3 of the 5 hours gone: 54 % is behind an even burn, no arrow
    assert statusline(_payload(54, resets)).endswith("5h 54% ↻" + _clock(resets))
    assert statusline(_payload(0, None)).endswith("5h 54% ↻" + _clock(resets))
    state = json.loads((Path(statefiles.state_dir()) / "claude-status.json").read_text())
    assert state["rate_limits"]["five_hour"]["used_percentage"] == 54
    assert status(capsys, "{quota.claude.5h}") == "54%"


def _clock(epoch: float) -> str:
    from tokline.prompt.fields import clock

    return clock(epoch)


def test_a_window_past_its_reset_reads_reset_until_a_new_reading(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        capsys: pytest.CaptureFixture[str]) -> None:
    _, fake = server
    claude_login(home)
    now = time.time()
    fake.routes[USAGE] = (200, {}, claude_legacy(80.0, 30.0, now - 600, now + 3 * DAY))
    remote.fetch_due(force=True)
    assert status(capsys, "{quota.claude.5h}|[{quota.claude.5h.reset}]|{quota.bind}") \
        == "0%||7d 30%"
    [five] = [w for w in quota_json(capsys)["windows"] if w["window"] == "5h"]
    assert (five["used_percent"], five["resets_at"], five["reset_passed"]) == (0.0, None, True)
    assert five["pace_percent"] is None and five["runout_at"] is None
    capsys.readouterr()
    assert cli.main(["quota"]) == 0
    assert "reset since, next reset unknown" in capsys.readouterr().out
    fake.routes[USAGE] = (200, {}, claude_legacy(4.0, 31.0, now + 5 * HOUR - 60,
                                                 now + 3 * DAY))
    remote.fetch_due(force=True)
    assert status(capsys, "{quota.claude.5h}") == "4%"


@pytest.mark.parametrize(("rate_limit", "expected"), [
    ({"primary_window": codex_bucket(22, 18000, 2e9), "secondary_window": codex_bucket(
        43, 604800, 2e9)}, {"5h": (22, 18000), "7d": (43, 604800)}),
    # a plan without a 5-hour limit: the weekly window in the first slot
    ({"primary_window": codex_bucket(43, 604800, 2e9), "secondary_window": None},
     {"7d": (43, 604800)}),
    ({"primary_window": codex_bucket(10, 86400, 2e9), "secondary_window": codex_bucket(
        50, 2592000, 2e9)}, {"1d": (10, 86400), "30d": (50, 2592000)}),
    ({"primary_window": codex_bucket(15, 18000.0, 2e9), "secondary_window": codex_bucket(
        5, 5400, 2e9)}, {"5h": (15, 18000), "90m": (5, 5400)}),
    # no length given: the slot's name, never "5h"
    ({"primary_window": codex_bucket(12, None, 2e9), "secondary_window": codex_bucket(
        60, 604800, 2e9)}, {"primary": (12, None), "7d": (60, 604800)}),
    ({"primary_window": None, "secondary_window": None}, {}),
], ids=["5h+7d", "weekly-in-primary", "day+month", "float-seconds", "no-length", "none"])
def test_codex_buckets_are_named_by_their_length(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        capsys: pytest.CaptureFixture[str], rate_limit: dict[str, Any],
        expected: dict[str, tuple[float, float | None]]) -> None:
    _, fake = server
    codex_login(home)
    fake.routes[WHAM] = (200, {}, {"plan_type": "pro", "rate_limit": {
        "allowed": True, "limit_reached": False, **rate_limit}})
    assert remote.fetch_due(force=True) == ["codex:default"]
    got = {w["window"]: (w["used_percent"], w.get("window_s")) for w in remote.windows()}
    assert got == expected
    five = f"{expected['5h'][0]:.0f}%" if "5h" in expected else ""
    assert status(capsys, "[{quota.codex.5h}]|[{quota.5h}]") == f"{five}|{five}"


def test_codex_additional_limits_and_rollout_shapes(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]]) -> None:
    _, fake = server
    codex_login(home)
    fake.routes[WHAM] = (200, {}, {"plan_type": "pro", "rate_limit": {
        "primary_window": codex_bucket(43, 604800, 2e9), "secondary_window": None},
        "additional_rate_limits": [{"limit_name": "GPT-5.3-Codex-Spark", "rate_limit": {
            "primary_window": codex_bucket(30, 18000, 2e9),
            "secondary_window": codex_bucket(100, 604800, 2e9)}}]})
    remote.fetch_due(force=True)
    assert sorted(w["window"] for w in remote.windows()) == [
        "5h GPT-5.3-Codex-Spark", "7d", "7d GPT-5.3-Codex-Spark"]
    # rollouts: by window_minutes, whatever the slot; the flat keys of the API's headers
    assert [w["window"] for w in codex.classify(
        {"primary": {"used_percent": 7, "window_minutes": 10080, "resets_at": 2e9},
         "secondary": None}, 0)] == ["7d"]
    assert codex.classify({"primary_used_percent": 30, "primary_window_minutes": 300,
                           "primary_reset_after_seconds": 60}, 1_000_000) == [
        {"window": "5h", "used_percent": 30.0, "resets_at": 1060.0, "window_s": 18000.0}]
    assert codex.classify({"primary": {"used_percent": 5, "resets_at": 2e9}}, 0)[0][
        "window"] == "primary"


# --- the Keychain (macOS) -----------------------------------------------------------------

@pytest.fixture
def keychain(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """macOS, Claude Code's login in the Keychain only, and a stand-in ``security``
    first on PATH that records each call; ``security.answer`` holds the secret it gives
    and ``security.status`` its exit status for a read of the secret (``-w``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "security.answer").write_text(json.dumps({"claudeAiOauth": {
        "accessToken": "sk-ant-oat01-from-keychain", "scopes": ["user:profile"],
        "subscriptionType": "pro"}}))
    (bin_dir / "security.status").write_text("0")
    calls = recording_program(bin_dir, "security", (
        f'case "$*" in *" -w") code=$(cat "{bin_dir}/security.status")\n'
        f'  [ "$code" = 0 ] && cat "{bin_dir}/security.answer"; exit "$code";; esac\n'
        "exit 0"))
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(claude_usage, "_macos", lambda: True)
    return calls


def _reads(calls: Path) -> list[str]:
    return [c for c in calls.read_text().splitlines() if c.endswith(" -w")] \
        if calls.exists() else []


def test_keychain_login_is_read_at_most_once_per_cache_time(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        keychain: Path) -> None:
    _, fake = server
    now = time.time()
    fake.routes[USAGE] = (200, {}, claude_legacy(11.0, 9.0, now + HOUR, now + 3 * DAY))
    for step in range(20):  # 20 refreshes over 190 s: one read, one request
        remote.fetch_due(now=now + step * 10)
    assert _reads(keychain) == ["find-generic-password -s Claude Code-credentials -w"]
    assert fake.seen_auth == ["Bearer sk-ant-oat01-from-keychain"]
    assert claude_windows()["5h"]["used_percent"] == 11.0
    remote.fetch_due(now=now + 301)  # the cache time has passed
    assert len(_reads(keychain)) == 2 and len(fake.seen_auth) == 2
    for path in home.rglob("*"):
        if path.is_file():
            assert b"from-keychain" not in path.read_bytes(), path


def test_a_refused_keychain_is_not_asked_again_and_again(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]], keychain: Path) -> None:
    _, fake = server
    (keychain.parent / "security.status").write_text("128")  # the user said no
    now = time.time()
    for step in range(50):  # 50 refreshes over more than 16 hours
        remote.fetch_due(now=now + step * 1200)
    assert len(_reads(keychain)) == 1 and fake.requests == []
    assert "Keychain did not give" in remote.load_state()["claude:default"]["error"]
    remote.fetch_due(now=now + 86401)
    assert len(_reads(keychain)) == 2


def test_keychain_item_per_config_dir_and_none_off_macos(
        home: Path, ring: MemoryKeyring, keychain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", "/Users/test/.claude-work")
    # Claude Code's own naming: the first 8 hex digits of the directory's SHA-256
    assert claude_usage.keychain_services() == ["Claude Code-credentials-03abf0ee"]
    assert ("claude", "default") in remote.configured()  # an attribute lookup, no -w
    assert _reads(keychain) == []
    monkeypatch.setattr(claude_usage, "_macos", lambda: sys.platform == "darwin")
    keychain.unlink()
    if sys.platform != "darwin":
        assert ("claude", "default") not in remote.configured()
        assert not keychain.exists()  # never run off macOS


# --- tokline quota with a provider never asked ------------------------------------------

def test_quota_asks_a_provider_set_up_but_never_asked(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        capsys: pytest.CaptureFixture[str]) -> None:
    _, fake = server
    capsys.readouterr()
    assert cli.main(["quota"]) == 0  # nothing set up: nothing asked
    assert "No quota known yet" in capsys.readouterr().out and fake.requests == []
    claude_login(home)
    now = time.time()
    fake.routes[USAGE] = (200, {}, claude_legacy(23.0, 41.0, now + HOUR, now + 3 * DAY))
    assert cli.main(["quota"]) == 0
    out = capsys.readouterr().out
    assert "No quota known yet" not in out and "23% used" in out and "41% used" in out
    assert cli.main(["quota"]) == 0  # asked once; then the background refresh asks
    assert len(fake.requests) == 1
    state_file = Path(statefiles.state_dir()) / remote.STATE
    state = json.loads(state_file.read_text())
    state["claude:default"]["fetched_at"] -= 1000  # due again: still not asked here
    state_file.write_text(json.dumps(state))
    assert cli.main(["quota"]) == 0
    assert len(fake.requests) == 1 and "23% used" in capsys.readouterr().out
