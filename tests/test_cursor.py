"""Cursor: usage events from cursor.com become ledger rows, its plan's quota becomes windows
(formats.md §10.1, remote_apis.md §7b), against a loopback stand-in speaking those shapes;
the login read from a ``state.vscdb`` built here, or given to ``tokline auth login``; the
dashboard's CSV export by its fixture's oracle (formats.md §10.10)."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from remote_fakes import (
    CURSOR_USER,
    CursorEvents,
    Fake,
    MemoryKeyring,
    cursor_event,
    cursor_jwt,
    cursor_state_db,
    cursor_summary,
)

from tokline import cli, remote
from tokline.ledger.store import Ledger
from tokline.prompt.uptodate import ledger_path
from tokline.remote import cursor as provider
from tokline.remote.http import RemoteError
from tokline.sources import cursor as source

FIXTURE = (Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "cursor"
           / "p-dev-harness-runner" / "cursor-cache" / "sample-usage.csv")
EVENTS = "/api/dashboard/get-filtered-usage-events"
SUMMARY = "/api/usage-summary"


def cookie(token: str, user: str = CURSOR_USER) -> str:
    return f"WorkosCursorSessionToken={user}%3A%3A{token}"


def events_now() -> tuple[int, list[dict[str, Any]]]:
    """Events of the last minute and one of two days ago: numbers as strings, two equal
    events (both real), one without token details (its charge is its cost), one with
    nothing (an errored request: no row)."""
    now = int(time.time() * 1000)
    return now, [
        cursor_event(now - 10_000, "claude-4.5-sonnet", (1200, 300, 5000, 20000), 12.5),
        cursor_event(now - 20_000, "auto", (800, 150, 0, 3000), 4.25, as_strings=True),
        cursor_event(now - 30_000, "composer-2.5", (100, 50, 0, 0), 1.0),
        cursor_event(now - 30_000, "composer-2.5", (100, 50, 0, 0), 1.0),
        cursor_event(now - 40_000, "gpt-5", None, None, charged=3),
        cursor_event(now - 50_000, "auto", (10, 5, 0, 0), 0.5, charged=0),
        cursor_event(now - 55_000, "auto", (0, 0, 0, 0), None),
        cursor_event(now - 60_000, "claude-4.5-sonnet", (7, 70, 700, 7000), 0.75,
                     as_strings=True),
        cursor_event(now - 2 * 86_400_000, "gpt-5", (2000, 1000, 0, 500), 2.0),
    ]


def expected(events: list[dict[str, Any]]) -> tuple[int, int, int, int, int, float]:
    """(rows, input, output, cache writes, cache reads, cost) the events must store."""
    rows = inp = out = write = read = 0
    cost = 0.0
    for event in events:
        usage = event.get("tokenUsage") or {}
        counts = [int(usage.get(k, 0)) for k in ("inputTokens", "outputTokens",
                                                 "cacheWriteTokens", "cacheReadTokens")]
        cents = float(usage["totalCents"]) if "totalCents" in usage \
            else float(event.get("chargedCents") or 0)
        if not any(counts) and not cents:
            continue
        rows += 1
        inp, out, write, read = inp + counts[0], out + counts[1], write + counts[2], \
            read + counts[3]
        cost += cents / 100
    return rows, inp, out, write, read, round(cost, 6)


def stored() -> tuple[int, int, int, int, int, float]:
    with Ledger(ledger_path()) as ledger:
        rows = list(ledger.usage(sources=["cursor"]))
    return (len(rows), sum(r.input for r in rows), sum(r.output for r in rows),
            sum(r.cache_5m + r.cache_1h for r in rows), sum(r.cache_read for r in rows),
            round(sum(r.cost_usd or 0 for r in rows), 6))


def secrets_in_files(home: Path, *secrets: str) -> list[str]:
    """Files under ``home`` holding a secret, Cursor's own state database aside."""
    found = []
    for path in home.rglob("*"):
        if path.is_file() and "Cursor" not in path.parts:
            data = path.read_bytes()
            found += [str(path) for s in secrets if s.encode() in data]
    return found


@pytest.fixture
def fake_cursor(home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
                monkeypatch: pytest.MonkeyPatch) -> tuple[type[Fake], CursorEvents, str]:
    """Cursor logged in (its state.vscdb), the stand-in answering the pro plan and the
    events of :func:`events_now`; pages of 3 events."""
    base, fake = server
    token = cursor_jwt(time.time() + 3600)
    cursor_state_db(home, token)
    monkeypatch.setattr(provider, "PAGE_SIZE", 3)
    events = CursorEvents(base, cookie(token), events_now()[1])
    fake.routes[SUMMARY] = (200, {}, cursor_summary("pro"))
    fake.routes[EVENTS] = events
    return fake, events, token


# --- the CSV export ------------------------------------------------------------------

def test_csv_fixture_by_its_oracle() -> None:
    """formats.md §10.10: 3 rows; Total = the sum of the four (disjoint) columns."""
    text = FIXTURE.read_text()
    found, malformed = source.parse_csv(text)
    assert malformed == 0 and len(found) == 3
    rows = list(found.values())
    totals = [int(line.split(",")[10]) for line in text.splitlines()[1:]]
    assert [u.input + u.output + u.cache_write + u.cache_read for u in rows] == totals
    assert [(u.cache_write, u.input, u.cache_read, u.output) for u in rows] == [
        (100, 200, 300, 50), (0, 150, 400, 25), (50, 100, 200, 40)]
    assert {u.model for u in rows} == {"composer-2.5"}
    assert all(u.cost_usd is None for u in rows)  # Cost "Included": no figure
    assert rows[0].ts_ms == 1784462400000  # 2026-07-19T12:00:00.000Z


def test_csv_headers_by_name_and_disjoint_columns() -> None:
    v1 = ("Date,Model,Input (w/ Cache Write),Input (w/o Cache Write),Cache Read,Output Tokens,"
          "Total Tokens,Cost,Cost to you\n"
          '"2025-11-13T18:36:05.846Z","claude-4.5-sonnet","28342","775","105891","21282",'
          '"156290","$1.25","$0.00"\n'
          '"2025-11-13","auto","0","822654","11350272","124288","12297214","Included","0"\n')
    v2_team = ("Date,User,Kind,Model,Max Mode,Input (w/ Cache Write),Input (w/o Cache Write),"
               "Cache Read,Output Tokens,Total Tokens,Cost\n"
               "2025-11-14T09:00:00.000Z,a@example.com,On-Demand,gpt-5,No,10,20,30,40,100,0.5\n"
               "2025-11-14T09:00:01.000Z,a@example.com,On-Demand,gpt-5,No,10,20,30,40,99,0.5\n"
               "not a date,a@example.com,Included,gpt-5,No,1,1,1,1,4,0\n")
    rows = list(source.parse_csv(v1)[0].values())
    assert (rows[0].cache_write, rows[0].input, rows[0].cache_read, rows[0].output) == (
        28342, 775, 105891, 21282)  # tokscale's "w/ − w/o" would make 27567 cache writes
    assert rows[0].cost_usd == 1.25 and rows[1].cost_usd is None
    assert rows[1].ts_ms == 1762992000000  # a date alone: midnight UTC
    found, malformed = source.parse_csv(v2_team)
    assert malformed == 2  # a total that is not the sum; a time that is none
    [row] = found.values()
    assert (row.input, row.cache_write, row.cache_read, row.output, row.cost_usd) == (
        20, 10, 30, 40, 0.5)
    assert source.parse_csv("Date,Model\n2025-11-13,auto\n") == ({}, 1)


# --- the login -----------------------------------------------------------------------

@pytest.mark.parametrize("encoding", [None, "utf-8", "utf-16-le"])
@pytest.mark.parametrize("wal", [False, True], ids=["rollback", "wal"])
def test_state_db_token_is_read_without_touching_the_file(
        home: Path, encoding: str | None, wal: bool) -> None:
    token = cursor_jwt(time.time() + 3600)
    path = cursor_state_db(home, token, encoding, wal)
    before = (path.read_bytes(), path.stat().st_mtime_ns, sorted(path.parent.iterdir()))
    assert provider.app_token(str(path)) == token
    assert provider.has_credentials()
    # no -wal/-shm left in Cursor's directory (a plain read-only open of a WAL database
    # makes both), the file itself as it was
    assert (path.read_bytes(), path.stat().st_mtime_ns, sorted(path.parent.iterdir())) == before


def test_a_live_wal_is_read_not_bypassed(home: Path) -> None:
    """While Cursor runs, its newest login may be in the -wal only: never immutable then."""
    path = cursor_state_db(home, cursor_jwt(time.time() + 60), wal=True)
    newer = cursor_jwt(time.time() + 7200)
    writer = sqlite3.connect(path)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("INSERT INTO ItemTable VALUES ('cursorAuth/accessToken', ?)", (newer,))
        writer.commit()
        assert Path(str(path) + "-wal").stat().st_size > 0
        assert provider.app_token(str(path)) == newer
    finally:
        writer.close()


def test_no_login_and_other_files(home: Path) -> None:
    assert not provider.has_credentials()  # no Cursor: not configured, nothing asked
    path = cursor_state_db(home, None)
    assert provider.app_token(str(path)) is None
    path.write_bytes(b"not a database at all" * 10)
    assert provider.app_token(str(path)) is None


def test_pasted_session_tokens() -> None:
    token = cursor_jwt(time.time() + 3600)
    assert provider.session(token) == (CURSOR_USER, token)
    for pasted in (f"{CURSOR_USER}%3A%3A{token}", f"{CURSOR_USER}::{token}",
                   cookie(token), f"other=1; {cookie(token)}; __cf=2"):
        assert provider.session(pasted) == (CURSOR_USER, token), pasted
        assert provider.check_key(pasted) is None
    assert provider.session("hello") is None and "not a Cursor session token" in str(
        provider.check_key("hello"))
    old = cursor_jwt(time.time() - 10)
    assert "expired on" in str(provider.check_key(old))
    assert "within a minute" in str(provider.check_key(cursor_jwt(time.time() + 30)))
    assert old not in str(provider.check_key(old))


# --- paging ----------------------------------------------------------------------------

def test_reconcile_takes_out_proven_repeats_only() -> None:
    a, b, c, d = ({"n": i} for i in range(4))
    assert provider.reconcile([[a, b, c], [c, d]], 4) == [a, b, c, d]
    # equal rows the total counts twice stay two
    assert provider.reconcile([[a, b, c], [c, d]], 5) == [a, b, c, c, d]
    assert provider.reconcile([[a, b, b], [b, b, c]], 4) == [a, b, b, c]
    with pytest.raises(RemoteError, match="do not add up"):
        provider.reconcile([[a, b, c], [d, a]], 4)
    with pytest.raises(RemoteError, match="read of 9"):
        provider.reconcile([[a, b, c]], 9)
    assert provider.reconcile([[a], [a]], None) == [a, a]  # no total: nothing to prove


def test_equal_events_keep_their_places() -> None:
    one = cursor_event(1_780_000_000_000, "auto", (1, 2, 3, 4), 1.0)
    found, malformed = source.events_usage([one, dict(one), dict(one)])
    assert len(found) == 3 and malformed == 0
    assert [k.rsplit("\x1f", 1)[1] for k in found] == ["0", "1", "2"]
    bad = cursor_event(1_780_000_000_000, "auto", (-1, 2, 3, 4), 1.0)
    assert source.events_usage([bad, {"timestamp": "soon"}, "x"])[1] == 2
    # tokens without their list price: priced from the table (not the plan's charge, 0
    # for included use); no tokens: the charge is the cost
    [priced] = source.events_usage([cursor_event(1_780_000_000_000, "gpt-5", (9, 9, 0, 0),
                                                 None, charged=0)])[0].values()
    [charged] = source.events_usage([cursor_event(1_780_000_000_000, "gpt-5", None, None,
                                                  charged="7")])[0].values()
    assert priced.cost_usd is None and (charged.output, charged.cost_usd) == (0, 0.07)


# --- fetching ----------------------------------------------------------------------------

def test_events_become_rows_once_and_the_plan_becomes_quota(
        home: Path, fake_cursor: tuple[type[Fake], CursorEvents, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    fake, events, token = fake_cursor
    db = home / ".config" / "Cursor" / "User" / "globalStorage" / "state.vscdb"
    before = (db.read_bytes(), db.stat().st_mtime_ns, sorted(db.parent.iterdir()))
    events.repeat = {2: 1, 3: 2}  # rows repeated at two page boundaries
    assert remote.fetch_due(force=True) == ["cursor:default"]
    assert remote.load_state()["cursor:default"]["error"] is None
    assert stored() == expected(events.events)
    asked = [r for r in fake.requests if r.path == EVENTS]
    body = json.loads(asked[0].body)
    assert body["pageSize"] == 3 and isinstance(body["startDate"], str)
    assert int(body["endDate"]) - int(body["startDate"]) == provider.SLICE_MS
    assert int(body["startDate"]) == pytest.approx(
        time.time() * 1000 - provider.HISTORY_MS, abs=60_000)
    assert all(r.headers["cookie"] == cookie(token) for r in fake.requests)
    assert asked[0].headers["origin"] == events.origin
    assert asked[0].headers["content-type"] == "application/json"

    with Ledger(ledger_path()) as ledger:
        [(key, end)] = ledger.db.execute(
            "SELECT key, value FROM meta WHERE key LIKE 'cursor_events:%'").fetchall()
    assert CURSOR_USER not in key  # the user id hashed
    assert int(body["startDate"]) + provider.HISTORY_MS <= int(end) <= time.time() * 1000

    # fetched again (every page, the same repeats): nothing more
    first = len(fake.requests)
    assert remote.fetch_due(force=True) == ["cursor:default"]
    assert stored() == expected(events.events)
    again = [json.loads(r.body) for r in fake.requests[first:] if r.path == EVENTS]
    # from a day before the last fetch's end: the events of the last day again, one slice
    assert int(again[0]["startDate"]) == int(end) - provider.LAG_MS
    assert {b["startDate"] for b in again} == {again[0]["startDate"]}
    # a new event; the pages overlap differently this time: it alone is added
    now = int(time.time() * 1000)
    events.events.append(cursor_event(now - 1000, "auto", (5, 6, 7, 8), 0.25))
    events.repeat = {2: 2}
    remote.fetch_due(force=True)
    assert stored() == expected(events.events)

    got = {w["window"]: w for w in remote.windows()}
    assert {k: w["used_percent"] for k, w in got.items()} == {
        "plan": 30.0, "on_demand": 5.0, "team_on_demand": 4.0}
    plan = got["plan"]
    assert (plan["spent_usd"], plan["limit_usd"], plan["remaining_usd"]) == (15.0, 50.0, 35.0)
    assert plan["plan"] == "pro" and plan["kind"] == "official"
    assert plan["resets_at"] == pytest.approx(4070908800.0)  # billingCycleEnd
    capsys.readouterr()
    today_cost = sum(float((e.get("tokenUsage") or {}).get("totalCents")
                           or e.get("chargedCents") or 0)
                     for e in events.events if int(e["timestamp"]) > now - 3_600_000) / 100
    assert cli.main(["status", "--sync", "--format",
                     "{quota.cursor.plan} {quota.cursor.on_demand} "
                     "{quota.cursor.on_demand.spent} {quota.cursor.plan.left} "
                     "{source.cursor.today}"]) == 0
    assert capsys.readouterr().out.strip() == f"30% 5% $5.00 $35.00 ${today_cost:.2f}"
    assert cli.main(["quota"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("cursor ")]
    assert any("plan" in line and "30% used, $15.00 spent, $35.00 left" in line
               for line in lines)
    assert cli.main(["daily", "--source", "cursor", "--json", "--offline"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(r["cache_read_tokens"] for r in report["rows"]) == expected(events.events)[4]
    # Cursor's state database untouched; its token nowhere tokline writes
    assert (db.read_bytes(), db.stat().st_mtime_ns, sorted(db.parent.iterdir())) == before
    assert not secrets_in_files(home, token, token.split(".")[1])


@pytest.mark.parametrize(("kind", "want"), [
    ("pro", {"plan": (30.0, 15.0), "on_demand": (5.0, 5.0), "team_on_demand": (4.0, 20.0)}),
    ("enterprise", {"plan": (0.7, 0.71), "on_demand": (None, 0.0),
                    "team_on_demand": (0.0, 0.0)}),
    ("team", {"plan": (25.0, 2500.0)}),
    ("unlimited", {"plan": (70.0, 20.0), "on_demand": (None, 12.34)}),
])
def test_usage_summary_shapes(kind: str, want: dict[str, tuple[float | None, float]]) -> None:
    """Plan % per formats.md §10.1 (totalPercentUsed, the mean of auto and api, then
    used/limit of the plan, overall, pooled); money in cents shown in dollars; on-demand
    without a limit is spend, not a percentage."""
    windows = provider.summary_windows(cursor_summary(kind))
    assert {w["window"]: (w["used_percent"], w["spent_usd"]) for w in windows} == want
    for window in windows:
        assert window["resets_at"] == pytest.approx(4070908800.0)
        assert window["window_s"] == pytest.approx(4070908800.0 - 1782864000.0)
    unlimited = {w["window"]: w for w in provider.summary_windows(cursor_summary("unlimited"))}
    assert "limit_usd" not in unlimited["on_demand"]


def test_request_count_plan_and_unlimited_on_demand_render(
        home: Path, fake_cursor: tuple[type[Fake], CursorEvents, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    fake, _, _ = fake_cursor
    fake.routes[SUMMARY] = (200, {}, {
        "billingCycleStart": "2026-07-01T00:00:00.000Z",
        "billingCycleEnd": "2099-01-01T00:00:00.000Z", "membershipType": "free_trial",
        "individualUsage": {"onDemand": {"enabled": True, "used": "1234", "limit": None}}})
    fake.routes["/api/usage"] = (200, {}, {
        "gpt-4": {"numRequests": 37, "numRequestsTotal": 37, "maxRequestUsage": 500},
        "startOfMonth": "2098-12-01T00:00:00.000Z"})
    remote.fetch_due(force=True)
    [legacy] = [r for r in fake.requests if r.path == "/api/usage"]
    assert legacy.query == {"user": [CURSOR_USER]}
    got = {w["window"]: w for w in remote.windows()}
    assert got["plan"]["used_percent"] == 7.4 and got["plan"]["remaining"] == 463
    capsys.readouterr()
    assert cli.main(["status", "--sync", "--format",
                     "{quota.cursor.plan} {quota.cursor.plan.left} {quota.cursor.on_demand}"]) == 0
    assert capsys.readouterr().out.strip() == "7% 463 $12.34"  # spend, never "0%"


def test_expired_app_login_is_not_sent_and_says_so_in_one_line(
        home: Path, fake_cursor: tuple[type[Fake], CursorEvents, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    fake, _, _ = fake_cursor
    old = cursor_jwt(time.time() - 3600)
    cursor_state_db(home, old)
    assert remote.fetch_due(force=True) == ["cursor:default"]
    assert fake.requests == []  # never sent
    error = remote.load_state()["cursor:default"]["error"]
    assert "expired on" in error and "open Cursor" in error and "\n" not in error
    assert old not in error
    capsys.readouterr()
    assert cli.main(["quota"]) == 0
    out = capsys.readouterr()
    assert "cursor          error: cursor: Cursor's login in" in out.out
    assert "Traceback" not in out.out + out.err and old not in out.out + out.err
    assert cli.main(["auth", "status"]) == 0
    status = capsys.readouterr().out
    assert "reads " in status and "state.vscdb (read-only)" in status and "expired" in status


@pytest.mark.parametrize(("path", "status"), [(SUMMARY, 401), (EVENTS, 403)])
def test_refused_session_keeps_the_last_numbers(
        home: Path, fake_cursor: tuple[type[Fake], CursorEvents, str], path: str,
        status: int) -> None:
    fake, _, token = fake_cursor
    remote.fetch_due(force=True)
    rows = stored()
    fake.routes[path] = (status, {}, {"error": "Unauthorized"})
    remote.fetch_due(force=True)
    error = remote.load_state()["cursor:default"]["error"]
    assert error == (f"cursor: not authorized ({status}); open Cursor to renew its login, "
                     "or run `tokline auth login cursor`")
    assert {w["window"]: w["used_percent"] for w in remote.windows()}["plan"] == 30.0
    assert all(w["stale"] for w in remote.windows())
    assert stored() == rows
    assert not secrets_in_files(home, token)


def test_rate_limited_then_hung_never_holds_the_prompt(
        home: Path, fake_cursor: tuple[type[Fake], CursorEvents, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    fake, _, _ = fake_cursor
    fake.routes[SUMMARY] = (429, {"Retry-After": "120"}, {"error": "rate limited"})
    now = time.time()
    for step in range(100):
        remote.fetch_due(now=now + step)
    assert fake.hits[SUMMARY] == 1
    entry = remote.load_state()["cursor:default"]
    assert entry["backoff_until"] - entry["error_at"] == pytest.approx(120)

    fake.routes[SUMMARY] = (200, {}, cursor_summary("pro"))
    fake.routes[EVENTS] = (200, {}, "hang")
    assert cli.main(["scan", "-q"]) == 0
    started = time.perf_counter()
    remote.fetch_due(force=True, now=now + 121)  # once the back-off is over
    assert time.perf_counter() - started < 7
    entry = remote.load_state()["cursor:default"]
    assert "no answer within 5 s" in entry["error"]
    # the second failure in a row: twice the first wait
    assert entry["backoff_until"] - entry["error_at"] == 2 * provider.BACKOFF_BASE_S
    capsys.readouterr()
    started = time.perf_counter()
    assert cli.main(["status"]) == 0  # from the snapshot, never the network
    assert time.perf_counter() - started < 0.5


def test_events_that_change_while_read_store_nothing(
        home: Path, fake_cursor: tuple[type[Fake], CursorEvents, str]) -> None:
    _, events, _ = fake_cursor
    events.grow = cursor_event(int(time.time() * 1000) - 500, "auto", (1, 1, 1, 1), 0.1)
    events.count_as_string = True
    remote.fetch_due(force=True)
    assert "changed while read" in remote.load_state()["cursor:default"]["error"]
    assert stored()[0] == 0  # the week holding every event: not stored
    events.repeat = {2: 1}
    remote.fetch_due(now=time.time() + provider.BACKOFF_BASE_S + 1)  # reads it whole
    assert remote.load_state()["cursor:default"]["error"] is None
    assert stored() == expected(events.events)


def test_session_token_in_the_keyring_wins_and_secrets_stay_out(
        home: Path, ring: MemoryKeyring, fake_cursor: tuple[type[Fake], CursorEvents, str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fake, events, app_token = fake_cursor
    given = cursor_jwt(time.time() + 86400, sub="google-oauth2|user_01GIVEN")
    for bad, message in (("garbage", "not a Cursor session token"),
                         (cursor_jwt(time.time() - 5), "expired on")):
        monkeypatch.setattr("sys.stdin", io.StringIO(bad + "\n"))
        assert cli.main(["auth", "login", "cursor"]) == 1
        err = capsys.readouterr().err
        assert message in err and bad not in err and len(err.strip().splitlines()) == 1
    assert not ring.store
    monkeypatch.setattr("sys.stdin", io.StringIO(cookie(given, "user_01GIVEN") + "\n"))
    assert cli.main(["auth", "login", "cursor"]) == 0
    assert "stored in the keyring" in capsys.readouterr().out
    events.cookie = cookie(given, "user_01GIVEN")
    remote.fetch_due(force=True)
    assert {r.headers["cookie"] for r in fake.requests} == {cookie(given, "user_01GIVEN")}
    assert stored() == expected(events.events)
    assert cli.main(["auth", "status"]) == 0
    assert any(line.startswith("cursor ") and "keyring; last fetch" in line
               for line in capsys.readouterr().out.splitlines())
    assert not secrets_in_files(home, given, app_token, given.split(".")[1])

    fake.routes[SUMMARY] = (401, {}, {"error": "expired"})
    remote.fetch_due(force=True)
    assert remote.load_state()["cursor:default"]["error"] == (
        "cursor: not authorized (401); run `tokline auth login cursor` with a new session "
        "token")
    assert cli.main(["auth", "logout", "cursor"]) == 0
    capsys.readouterr()
    assert cli.main(["auth", "status"]) == 0  # back to Cursor's own login
    assert "state.vscdb (read-only)" in capsys.readouterr().out


def test_doctor_and_source_option_know_cursor(home: Path, ring: MemoryKeyring,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["doctor"])
    assert "cursor: no local logs: fetched from cursor.com" in capsys.readouterr().out
    assert cli.main(["daily", "--source", "cursor", "--offline"]) == 0
    assert cli.main(["auth", "status"]) == 0
    assert "cursor          not configured: no login in " in capsys.readouterr().out


# --- tokline scan --cursor-csv, and a rebuild keeping Cursor's rows ---------------------

def _cursor_rows(path: str) -> list[tuple[Any, ...]]:
    with Ledger(path) as ledger:
        return ledger.db.execute(
            "SELECT u.ts_ms, c.model, u.input, u.output, u.cache_5m, u.cache_read"
            " FROM usage u JOIN contexts c ON c.id = u.ctx WHERE c.source = 'cursor'"
            " ORDER BY u.ts_ms, u.input").fetchall()


def test_scan_adds_an_export_once_and_a_rebuild_keeps_it(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["scan", "--cursor-csv", str(FIXTURE)]) == 0
    assert "3 Cursor usage rows, 3 new" in capsys.readouterr().out
    rows = _cursor_rows(ledger_path())
    assert [r[2:] for r in rows] == [(200, 50, 100, 300), (150, 25, 0, 400), (100, 40, 50, 200)]
    assert cli.main(["scan", "--cursor-csv", str(FIXTURE)]) == 0  # the same rows again
    assert "3 Cursor usage rows, 0 new" in capsys.readouterr().out
    assert _cursor_rows(ledger_path()) == rows
    # no log on disk gives these again, and the web API only its last 90 days
    assert cli.main(["scan", "--rebuild", "-q"]) == 0
    assert _cursor_rows(ledger_path()) == rows


def test_scan_refuses_what_is_not_an_export(home: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    other = home / "notes.csv"
    other.write_text("Date,Model\n2025-11-13,auto\n")
    assert cli.main(["scan", "--cursor-csv", str(other)]) == 1
    err = capsys.readouterr().err
    assert "is not a Cursor usage export" in err and "Traceback" not in err
    assert cli.main(["scan", "--cursor-csv", str(home / "missing\x1b[31m.csv")]) == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and "\x1b" not in err
    assert not Path(ledger_path()).exists() or _cursor_rows(ledger_path()) == []
