"""Copilot (device flow + premium requests), the Anthropic and OpenAI admin cost reports,
several accounts per provider and configured base URLs, against a fake server on
127.0.0.1 that answers in each API's real shapes (remote_apis.md §2, §3, §5, §9)."""

from __future__ import annotations

import functools
import io
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from remote_fakes import Answer, Fake, MemoryKeyring, Request

from tokline import cli, config, remote
from tokline.errors import ConfigError
from tokline.remote import device_flow

GITHUB_TOKEN = "gho_16C7e42F292c6912E7710c838347Ae178B4a"
ANTHROPIC_KEY = "sk-ant-admin01-secret-abcdef0123456789"
OPENAI_KEY = "sk-admin-secret-0123456789abcdef"
DEVICE_CODE = "3584d83530557fdd1f46af8289938c8ef79f9dc5"

CODE_ANSWER = {"device_code": DEVICE_CODE, "user_code": "WDJB-MJHT",
               "verification_uri": "https://github.com/login/device", "expires_in": 900,
               "interval": 5}
PENDING = {"error": "authorization_pending", "error_description": "pending"}
SLOW = {"error": "slow_down", "error_description": "too fast", "interval": 10}
TOKEN = {"access_token": GITHUB_TOKEN, "token_type": "bearer", "scope": "read:user"}

# The plan resets on the first of next month: a fixed date would pass and the window with it.
_TODAY = datetime.now(timezone.utc).date()
RESET = datetime(_TODAY.year + _TODAY.month // 12, _TODAY.month % 12 + 1, 1, tzinfo=timezone.utc)
PAID_PLAN = {
    "login": "octocat", "copilot_plan": "individual",
    "quota_reset_date": RESET.date().isoformat(),
    "quota_reset_date_utc": RESET.strftime("%Y-%m-%dT00:00:00.000Z"),
    "quota_snapshots": {
        "chat": {"entitlement": 0, "remaining": 0, "percent_remaining": 100.0,
                 "unlimited": True, "quota_id": "chat"},
        "completions": {"entitlement": 0, "remaining": 0, "percent_remaining": 100.0,
                        "unlimited": True, "quota_id": "completions"},
        "premium_interactions": {"entitlement": 300, "remaining": 198, "quota_remaining": 198.6,
                                 "percent_remaining": 66.2, "credits_used": 101,
                                 "unlimited": False, "overage_count": 0,
                                 "overage_permitted": False,
                                 "quota_id": "premium_interactions"}}}
ORG_PLACEHOLDER = {
    "login": "octocat", "copilot_plan": "business",
    "quota_snapshots": {"premium_interactions": {
        "entitlement": 0, "remaining": 0, "percent_remaining": 100.0, "unlimited": False,
        "overage_count": 0, "token_based_billing": True, "quota_id": "premium_interactions"}}}
FREE_PLAN = {"login": "octocat", "copilot_plan": "free",
             "limited_user_reset_date": "2026-12-05",
             "monthly_quotas": {"chat": 50, "completions": 2000},
             "limited_user_quotas": {"chat": 20, "completions": 1500}}


def tokens_in_files(home: Path, *secrets_: str) -> list[str]:
    found = []
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {s[:8]}…" for s in secrets_ if s.encode() in data]
    return found


def device_login(monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[float]]:
    slept: list[float] = []
    monkeypatch.setattr(device_flow, "login",
                        functools.partial(device_flow.login, sleep=slept.append))
    return cli.main(["auth", "login", "copilot"]), slept


def test_device_flow_pending_slow_down_success_then_premium_quota(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, fake = server
    fake.routes["/login/device/code"] = (200, {}, CODE_ANSWER)
    fake.routes["/login/oauth/access_token"] = [(200, {}, PENDING), (200, {}, PENDING),
                                                (200, {}, SLOW), (200, {}, TOKEN)]
    fake.routes["/copilot_internal/user"] = (200, {}, PAID_PLAN)
    code, slept = device_login(monkeypatch)
    assert code == 0
    out = capsys.readouterr().out
    assert "WDJB-MJHT" in out and "https://github.com/login/device" in out
    assert GITHUB_TOKEN not in out
    assert slept == [5, 5, 5, 10]  # slow_down raises the interval for good
    asked = fake.requests[0]
    assert asked.method == "POST" and asked.headers["accept"] == "application/json"
    assert asked.form == {"client_id": [device_flow.CLIENT_ID], "scope": ["read:user"]}
    polls = [r for r in fake.requests if r.path == "/login/oauth/access_token"]
    assert len(polls) == 4 and all(r.form["device_code"] == [DEVICE_CODE] for r in polls)
    assert polls[0].form["grant_type"] == [device_flow.GRANT]
    assert ring.store[("tokline", "copilot:default")] == GITHUB_TOKEN

    assert cli.main(["quota", "--refresh", "--json"]) == 0
    [premium] = [w for w in json.loads(capsys.readouterr().out)["windows"]
                 if w["source"] == "copilot"]
    assert premium["used_percent"] == pytest.approx(33.8)
    assert premium["remaining"] == 198.6 and premium["entitlement"] == 300
    assert premium["resets_at"] == RESET.timestamp()
    assert fake.seen_auth[-1] == f"token {GITHUB_TOKEN}"
    assert fake.requests[-1].headers["x-github-api-version"] == "2025-04-01"
    assert cli.main(["quota"]) == 0
    assert "34% used, 199 of 300 left" in capsys.readouterr().out
    assert not tokens_in_files(home, GITHUB_TOKEN)


@pytest.mark.parametrize(("answer", "message"), [
    ({"error": "expired_token", "error_description": "expired"}, "the code expired"),
    ({"error": "access_denied", "error_description": "denied"}, "cancelled"),
    ({"error": "device_flow_disabled", "error_description": "Device flow is disabled"},
     "Device flow is disabled"),
])
def test_device_flow_ends_without_a_token(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        answer: dict[str, str], message: str) -> None:
    _, fake = server
    fake.routes["/login/device/code"] = (200, {}, CODE_ANSWER)
    fake.routes["/login/oauth/access_token"] = [(200, {}, PENDING), (200, {}, answer)]
    code, slept = device_login(monkeypatch)
    assert code == 1 and slept == [5, 5]
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not ring.store


def test_device_code_expiry_stops_polling(server: tuple[str, type[Fake]]) -> None:
    base, fake = server
    fake.routes["/login/device/code"] = (200, {}, {**CODE_ANSWER, "expires_in": 12})
    fake.routes["/login/oauth/access_token"] = (200, {}, PENDING)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(device_flow.DeviceFlowError, match="expired"):
        device_flow.login(base, lambda code, url: None, sleep=sleep, clock=lambda: now[0])
    assert fake.hits["/login/oauth/access_token"] == 3  # at 5, 10 and 15 s; none after


def test_copilot_token_from_stdin_org_placeholder_free_plan_and_401(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, fake = server
    monkeypatch.setattr("sys.stdin", io.StringIO(GITHUB_TOKEN + "\n"))
    assert cli.main(["auth", "login", "copilot", "--with-token"]) == 0
    assert not any(r.path.startswith("/login") for r in fake.requests)
    fake.routes["/copilot_internal/user"] = (200, {}, ORG_PLACEHOLDER)
    remote.fetch_due(force=True)
    [seat] = remote.windows()
    assert seat["used_percent"] is None and "organization" in seat["note"]
    capsys.readouterr()
    assert cli.main(["status", "--sync", "--format", "[{quota.copilot.premium}]|"]) == 0
    assert capsys.readouterr().out.strip() == "|"  # not "0%": nothing is known
    assert cli.main(["quota"]) == 0
    assert "managed by your organization" in capsys.readouterr().out

    fake.routes["/copilot_internal/user"] = (200, {}, FREE_PLAN)
    remote.fetch_due(force=True)
    by_window = {w["window"]: w for w in remote.windows()}
    assert by_window["chat"]["used_percent"] == 60.0
    assert by_window["completions"]["used_percent"] == 25.0
    assert by_window["chat"]["resets_at"] == datetime(
        2026, 12, 5, tzinfo=timezone.utc).timestamp()

    fake.routes["/copilot_internal/user"] = (
        401, {}, {"message": "Bad credentials", "documentation_url":
                  "https://docs.github.com/rest", "status": "401"})
    remote.fetch_due(force=True)
    entry = remote.load_state()["copilot:default"]
    assert "not authorized (401)" in entry["error"] and "auth login copilot" in entry["error"]
    assert {w["window"] for w in entry["windows"]} == {"chat", "completions"}  # kept
    assert all(w["stale"] for w in remote.windows())
    capsys.readouterr()
    assert cli.main(["status", "--sync", "--format", "{quota.copilot.chat}"]) == 0
    assert capsys.readouterr().out.strip() == "60%*"  # the last good value, marked stale
    assert not tokens_in_files(home, GITHUB_TOKEN)


def month_start() -> datetime:
    return datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def today_start() -> datetime:
    return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def anthropic_pages(request: Request) -> Answer:
    day = today_start()
    first = {"starting_at": month_start().strftime("%Y-%m-%dT%H:%M:%SZ"),
             "ending_at": "x", "results": [
                 {"amount": "123.78912", "currency": "USD", "cost_type": "tokens",
                  "model": "claude-opus-5", "token_type": "uncached_input_tokens",
                  "description": "Claude Opus 5 Usage - Input Tokens"},
                 {"amount": "50", "currency": "USD", "cost_type": "web_search", "model": None,
                  "description": "Web Search Usage"}]}
    empty = {"starting_at": "2000-01-01T00:00:00Z", "ending_at": "x", "results": []}
    last = {"starting_at": day.strftime("%Y-%m-%dT%H:%M:%SZ"), "ending_at": "x", "results": [
        {"amount": "1000", "currency": "USD", "cost_type": "tokens", "model": "claude-opus-5"}]}
    if request.query.get("page") == ["page_2"]:
        return 200, {}, {"data": [last], "has_more": False, "next_page": None}
    return 200, {}, {"data": [first, empty], "has_more": True, "next_page": "page_2"}


def login_key(monkeypatch: pytest.MonkeyPatch, provider: str, key: str,
              account: str = "default") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(key + "\n"))
    return cli.main(["auth", "login", provider, "--account", account])


def test_anthropic_admin_month_to_date_over_pages(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, fake = server
    fake.routes["/v1/organizations/cost_report"] = anthropic_pages
    assert login_key(monkeypatch, "anthropic-admin", ANTHROPIC_KEY) == 0
    assert remote.fetch_due(force=True) == ["anthropic-admin:default"]
    first, second = fake.requests
    assert first.headers["x-api-key"] == ANTHROPIC_KEY
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert first.query["starting_at"] == [month_start().strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert first.query["group_by[]"] == ["description"] and first.query["limit"] == ["31"]
    assert "page" not in first.query and second.query["page"] == ["page_2"]
    [month] = remote.windows()
    # cents as decimal strings: 123.78912 + 50 + 1000 cents
    assert month["spent_usd"] == pytest.approx(11.7378912)
    assert month["today_usd"] == pytest.approx(10.0 if today_start() > month_start()
                                               else 11.7378912)
    assert month["models_usd"] == {"claude-opus-5": pytest.approx(11.2378912),
                                   "web_search": pytest.approx(0.5)}
    capsys.readouterr()
    assert cli.main(["status", "--sync", "--format",
                     "{quota.anthropic-admin.month} ({quota.anthropic-admin.month.reset})"]) == 0
    text = capsys.readouterr().out.strip()
    assert text.startswith("$11.74 (") and text != "$11.74 ()"

    fake.routes["/v1/organizations/cost_report"] = (
        401, {}, {"type": "error", "error": {"type": "authentication_error",
                                             "message": "invalid x-api-key"}})
    remote.fetch_due(force=True)
    error = remote.load_state()["anthropic-admin:default"]["error"]
    assert "not authorized (401)" in error and "auth login anthropic-admin" in error
    assert not tokens_in_files(home, ANTHROPIC_KEY)


def test_admin_report_rate_limit_is_honoured(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, fake = server
    fake.routes["/v1/organizations/cost_report"] = (
        429, {"retry-after": "600"}, {"type": "error", "error": {"type": "rate_limit_error",
                                                                "message": "slow"}})
    login_key(monkeypatch, "anthropic-admin", ANTHROPIC_KEY)
    now = time.time()
    for step in range(100):
        remote.fetch_due(now=now + step * 5)  # 100 refreshes over 500 s
    assert len(fake.requests) == 1
    remote.fetch_due(now=now + 601)
    assert len(fake.requests) == 2


def openai_pages(request: Request) -> Answer:
    day = int(today_start().timestamp())
    start = int(month_start().timestamp())
    page1 = [{"object": "bucket", "start_time": start, "end_time": start + 86400, "results": [
        {"object": "organization.costs.result", "amount": {"value": 0.06, "currency": "usd"},
         "line_item": "Text tokens", "project_id": None, "quantity": None}]}]
    page2 = [{"object": "bucket", "start_time": day, "end_time": day + 86400, "results": [
        {"object": "organization.costs.result", "amount": {"value": "2.25", "currency": "usd"},
         "line_item": "Text tokens"},
        {"object": "organization.costs.result", "amount": {"value": 1, "currency": "usd"},
         "line_item": "Web search"}]}]
    if request.query.get("page"):
        return 200, {}, {"object": "page", "data": page2, "has_more": False, "next_page": None}
    return 200, {}, {"object": "page", "data": page1, "has_more": True,
                     "next_page": "page_AAAAAGdGxdEiJdKOAAAAAGcqsYA="}


def test_openai_admin_costs_number_or_string_amounts(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, fake = server
    fake.routes["/v1/organization/costs"] = openai_pages
    assert login_key(monkeypatch, "openai-admin", "sk-proj-not-an-admin-key") == 0
    assert "start with sk-admin-" in capsys.readouterr().err
    assert login_key(monkeypatch, "openai-admin", OPENAI_KEY) == 0
    remote.fetch_due(force=True)
    first = fake.requests[0]
    assert first.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert first.query["start_time"] == [str(int(month_start().timestamp()))]
    assert first.query["bucket_width"] == ["1d"] and int(first.query["limit"][0]) <= 31
    assert fake.requests[1].query["page"] == ["page_AAAAAGdGxdEiJdKOAAAAAGcqsYA="]
    [month] = remote.windows()
    assert month["spent_usd"] == pytest.approx(3.31)
    assert month["line_items_usd"] == {"Text tokens": pytest.approx(2.31),
                                       "Web search": pytest.approx(1.0)}
    capsys.readouterr()
    assert cli.main(["quota"]) == 0
    assert "openai-admin    month        $3.31 spent" in capsys.readouterr().out

    fake.routes["/v1/organization/costs"] = (403, {}, {"error": {
        "message": "You have insufficient permissions for this operation. Missing scopes: "
                   "api.usage.read", "type": "invalid_request_error", "code": None}})
    remote.fetch_due(force=True)
    assert "not authorized (403)" in remote.load_state()["openai-admin:default"]["error"]
    assert not tokens_in_files(home, OPENAI_KEY)


def test_looping_pages_are_an_error_not_a_hang(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, fake = server
    fake.routes["/v1/organization/costs"] = (200, {}, {"object": "page", "data": [],
                                                       "has_more": True, "next_page": "same"})
    login_key(monkeypatch, "openai-admin", OPENAI_KEY)
    remote.fetch_due(force=True)
    assert "pages loop" in remote.load_state()["openai-admin:default"]["error"]
    assert len(fake.requests) == 2


OPENROUTER_KEY = {"data": {"label": "x", "limit": 100, "limit_remaining": 74.5, "usage": 25.5}}
OPENROUTER_WORK = {"data": {"label": "y", "limit": None, "limit_remaining": None,
                            "usage": 3.0}}


def test_several_accounts_per_provider(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, fake = server

    def key(request: Request) -> Answer:
        personal = request.headers["authorization"] == "Bearer sk-or-v1-personal"
        return 200, {}, OPENROUTER_KEY if personal else OPENROUTER_WORK

    fake.routes["/api/v1/key"] = key
    fake.routes["/api/v1/credits"] = (403, {}, {"error": {"code": 403, "message": "no"}})
    login_key(monkeypatch, "openrouter", "sk-or-v1-personal")
    login_key(monkeypatch, "openrouter", "sk-or-v1-work", account="work")
    assert ring.store[("tokline", "openrouter:work")] == "sk-or-v1-work"
    assert sorted(remote.fetch_due(force=True)) == ["openrouter:default", "openrouter:work"]
    by_source = {w["source"]: w for w in remote.windows()}
    assert by_source["openrouter"]["used_percent"] == 25.5
    # an uncapped key has spend but no percentage
    assert by_source["openrouter@work"]["used_percent"] is None
    assert by_source["openrouter@work"]["spent_usd"] == 3.0
    capsys.readouterr()
    assert cli.main(["status", "--sync", "--format",
                     "{quota.openrouter.credits} {quota.openrouter.credits.left} "
                     "{quota.openrouter@work.credits}"]) == 0
    assert capsys.readouterr().out.strip() == "26% $74.50 $3.00"
    assert cli.main(["auth", "status"]) == 0
    status = capsys.readouterr().out
    assert "openrouter (work) keyring" in status and "sk-or-v1" not in status
    assert cli.main(["auth", "logout", "openrouter", "--account", "work"]) == 0
    assert ("tokline", "openrouter:work") not in ring.store
    remote.fetch_due(force=True)
    assert [w["source"] for w in remote.windows()] == ["openrouter"]
    with pytest.raises(SystemExit) as bad:
        cli.main(["auth", "login", "openrouter", "--account", "../x"])
    assert bad.value.code == 2


def test_env_key_per_account(home: Path, ring: MemoryKeyring,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    from tokline.remote import credentials as secrets

    monkeypatch.setenv("TOKLINE_OPENROUTER_KEY", "k-default")
    monkeypatch.setenv("TOKLINE_OPENROUTER_KEY_WORK", "k-work")
    assert secrets.get("openrouter")[0] == "k-default"
    assert secrets.get("openrouter", "work") == ("k-work", "env TOKLINE_OPENROUTER_KEY_WORK")
    assert secrets.get("openrouter", "other") == (None, "none")


def test_base_url_and_ttl_from_config(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    base, fake = server
    fake.routes["/v1/organization/costs"] = openai_pages
    monkeypatch.delenv("TOKLINE_OPENAI_ADMIN_BASE_URL")
    config_file = home / ".config" / "tokline" / "config.toml"
    config_file.parent.mkdir(parents=True)
    config_file.write_text(f'[remote.openai-admin]\nbase_url = "{base}/"\nttl_seconds = 900\n'
                           '[remote.claude]\nenabled = false\n')
    login_key(monkeypatch, "openai-admin", OPENAI_KEY)
    now = time.time()
    assert remote.fetch_due(now=now) == ["openai-admin:default"]
    assert remote.fetch_due(now=now + 600) == []  # the configured TTL, not the default
    assert remote.fetch_due(now=now + 901) == ["openai-admin:default"]
    monkeypatch.setenv("TOKLINE_OPENAI_ADMIN_BASE_URL", "http://127.0.0.1:9/nowhere")
    assert remote.base_url("openai-admin", config.load()).endswith("/nowhere")  # env wins
    # a disabled provider is not asked even with a login present
    (home / ".claude").mkdir()
    (home / ".claude" / ".credentials.json").write_text(json.dumps(
        {"claudeAiOauth": {"accessToken": "sk-ant-oat01-x", "scopes": ["user:profile"]}}))
    assert ("claude", "default") not in remote.configured(config.load())


@pytest.mark.parametrize(("text", "message"), [
    ('[remote.nosuch]\nbase_url = "http://x"\n', "config remote.nosuch: unknown provider"),
    ('[remote.openrouter]\nbase_url = "ftp://x"\n', "remote.openrouter.base_url: expected an"),
    ('[remote.claude]\nttl_seconds = 60\n', "remote.claude.ttl_seconds: at least 300"),
    ('[remote.codex]\nlogin_url = "http://x"\n', "remote.codex.login_url: unknown setting"),
    ('[remote.copilot]\nenabled = "no"\n', "remote.copilot.enabled: expected bool"),
])
def test_bad_remote_config_is_one_line(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")) as caught:
        config.load(path)
    assert "\n" not in str(caught.value)


def test_every_provider_has_a_minimum_ttl_it_honours() -> None:
    assert set(config.REMOTE_MIN_TTL_S) == set(remote.PROVIDERS)
    for name, module in remote.PROVIDERS.items():
        assert config.REMOTE_MIN_TTL_S[name] <= module.TTL_S
