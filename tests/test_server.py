"""Issue 17: the team server, for real — ``tokline server`` in its own process on a free
port of 127.0.0.1, on a throwaway PostgreSQL cluster (tests/pg.py) and on the embedded
SQLite default (no ``--database``: a file under the server's XDG data directory).

People and machines as they would be: accounts made with ``tokline server add-user`` and
``token``, invites taken and forms sent as a browser does (cookies, CSRF tokens), and
each person's machines with their own HOME, XDG directories and generated corpus, signed
in with ``tokline login`` and exchanging with ``tokline sync``.  What the server shows
is checked against what each machine counts alone (``tokline daily --json``): tokens
exactly, cost within 0.1 %.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import gzip
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import GENCORPUS
from pg import Cluster, free_port
from server_merge import wait_merged

pytest.importorskip("starlette", reason="the server extra is not installed "
                    "(pip install 'tokline[server]')")

from sqlalchemy import create_engine, text

from tokline.sync import segments as fmt
from tokline.sync.device import to_hex

MACHINES = {"alice-laptop": 1, "alice-desktop": 2, "bob-laptop": 3, "carol-laptop": 4}
PASSWORD = "correct horse battery staple"
COST_TOLERANCE = 1e-3


# --- HTTP, as a script and as a browser -------------------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: dict[str, str]
    set_cookies: list[str] = field(default_factory=list)  # the Set-Cookie headers, whole

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def call(port: int, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 60) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        data = answer.read()
        cookies = {}
        whole = []
        for name, value in answer.getheaders():
            if name.lower() == "set-cookie":
                whole.append(value)
                key, _, rest = value.partition("=")
                cookies[key.strip()] = rest.split(";", 1)[0].strip('"')
        return Answer(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data,
                      cookies, whole)
    finally:
        conn.close()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Browser:
    """A cookie jar and forms, as a browser sends them (no JavaScript is needed)."""
    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    forwarded_for: str | None = None  # a client address of its own (via the proxy header)

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.forwarded_for:
            headers["x-forwarded-for"] = self.forwarded_for
        return headers

    def _keep(self, answer: Answer) -> Answer:
        for key, value in answer.cookies.items():
            if value:
                self.cookies[key] = value
            else:
                self.cookies.pop(key, None)
        return answer

    def get(self, path: str) -> Answer:
        return self._keep(call(self.port, "GET", path, headers=self._headers()))

    def post(self, path: str, form: dict[str, str], raw: bytes | None = None) -> Answer:
        body = raw if raw is not None else urllib.parse.urlencode(form).encode()
        return self._keep(call(self.port, "POST", path, body=body, headers=self._headers(
            {"content-type": "application/x-www-form-urlencoded"})))

    def csrf(self, path: str) -> str:
        page = self.get(path)
        found = CSRF_FIELD.search(page.text)
        assert found, f"no CSRF field on {path} ({page.status})"
        return found.group(1)

    def sign_in(self, name: str, password: str = PASSWORD) -> Answer:
        token = self.csrf("/login")
        return self.post("/login", {"csrf": token, "name": name, "password": password,
                                    "next": "/"})


# --- machines ---------------------------------------------------------------------------

def machine_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKLINE_", "XDG_"))}
    for var in ("CLAUDE_CONFIG_DIR", "CODEX_HOME"):
        env.pop(var, None)
    env.update(HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "config"),
               XDG_DATA_HOME=str(root / "data"), XDG_STATE_HOME=str(root / "state"),
               XDG_CACHE_HOME=str(root / "cache"), TZ="UTC", TOKLINE_PLAINTEXT_SECRETS="1")
    for var in ("TOKLINE_PURE", "TOKLINE_STRICT_BUILD"):
        if var in os.environ:
            env[var] = os.environ[var]
    env.update(extra)
    return env


def tokline(root: Path, *args: str, ok: bool = True, timeout: float = 120,
            **extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "tokline", *args], env=machine_env(root, **extra),
                          capture_output=True, text=True, timeout=timeout, check=False)
    if ok:
        assert done.returncode == 0, f"tokline {' '.join(args)}: {done.stderr}"
    return done


def daily_totals(root: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(tokline(root, "daily", "--json").stdout)["totals"]
    return found


def assert_same_totals(shown: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    assert shown["total_tokens"] == expected["total_tokens"], what
    assert shown["requests"] == expected["requests"], what
    assert shown["cost_usd"] == pytest.approx(expected["cost_usd"], rel=COST_TOLERANCE), what


@dataclass(frozen=True)
class Corpus:
    home: Path
    alone: dict[str, Any]  # what the machine counts by itself (tokline daily --json)


@pytest.fixture(scope="session")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Corpus]:
    """One generated corpus per machine, read-only (each leg has its own XDG dirs), and
    its totals as the machine counts them alone."""
    base = tmp_path_factory.mktemp("server-corpora")
    end = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) \
        - dt.timedelta(minutes=10)

    def make(item: tuple[str, int]) -> tuple[str, Corpus]:
        name, seed = item
        root = base / name
        subprocess.run([sys.executable, str(GENCORPUS), "--out", str(root / "home"),
                        "--size", "1M", "--seed", str(seed), "--end", end.isoformat()],
                       check=True, capture_output=True, timeout=300)
        return name, Corpus(root / "home", daily_totals(root))

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return dict(pool.map(make, MACHINES.items()))


# --- the server -------------------------------------------------------------------------

@dataclass
class Site:
    backend: str
    root: Path
    database: str | None  # None: the SQLite default
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    browsers: dict[str, Browser] = field(default_factory=dict)
    machines: dict[str, Path] = field(default_factory=dict)
    alone: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)  # stored as their SHA-256 only

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def env(self) -> dict[str, str]:
        return machine_env(self.root)

    def admin(self, *args: str) -> str:
        extra = ["--database", self.database] if self.database else []
        done = subprocess.run([sys.executable, "-m", "tokline", "server", *args, *extra,
                               "--port", str(self.port)], env=self.env(),
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def start(self, log: Path | None = None) -> subprocess.Popen[bytes]:
        extra = ["--database", self.database] if self.database else []
        with open(log or self.log, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "tokline", "server", *extra,
                                     "--port", str(self.port)], env=self.env(),
                                    stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (log or self.log).read_text()
            try:
                if call(self.port, "GET", "/healthz", timeout=5).status == 200:
                    return proc
            except OSError:
                pass
            time.sleep(0.1)
        proc.kill()
        raise AssertionError("the server did not come up: " + (log or self.log).read_text())

    def url(self) -> str:
        if self.database:
            return self.database.replace("postgresql://", "postgresql+psycopg://", 1)
        return f"sqlite:///{self.root / 'data' / 'tokline' / 'server.sqlite3'}"

    def sql(self, query: str, **params: Any) -> list[Any]:
        engine = create_engine(self.url())
        try:
            with engine.begin() as conn:
                result = conn.execute(text(query), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def put(self, token: str, name: str, data: bytes,
            headers: dict[str, str] | None = None) -> Answer:
        answer = call(self.port, "PUT", f"/api/v1/sync/segments/{name}", body=data,
                      headers={**bearer(token), "content-type": "application/gzip",
                               **(headers or {})})
        self.settle()
        return answer

    def settle(self) -> None:
        """Wait until the merger has merged every pushed segment (a push is answered
        once stored; its rows reach the sums a moment later)."""
        wait_merged(self.base)

    def state(self, user: str) -> tuple[list[Any], list[Any], list[Any]]:
        """(usage, daily, segment names) of ``user``, as stored and merged."""
        self.settle()
        usage = self.sql("SELECT u.key, u.ts_ms, u.model, u.input, u.output, u.cache_read,"
                         " u.cost_calc FROM usage u JOIN users p ON p.id = u.user_id"
                         " WHERE p.name = :n ORDER BY u.key", n=user)
        daily = self.sql("SELECT d.day, d.model, d.source, d.device, d.input, d.output,"
                         " d.cache_5m, d.cache_1h, d.cache_read, d.requests,"
                         " round(CAST(d.cost_usd AS NUMERIC), 6) FROM daily d"
                         " JOIN users p ON p.id = d.user_id WHERE p.name = :n"
                         " ORDER BY d.day, d.model, d.source, d.device", n=user)
        names = self.sql("SELECT s.name FROM segments s JOIN users p ON p.id = s.user_id"
                         " WHERE p.name = :n ORDER BY s.name", n=user)
        return usage, daily, names


def take_invite(site: Site, link: str, forwarded_for: str) -> Browser:
    """The invite link as a person follows it: the page, then the form with a password."""
    path = urllib.parse.urlsplit(link).path
    browser = Browser(site.port, forwarded_for=forwarded_for)
    token = browser.csrf(path)
    answer = browser.post(path, {"csrf": token, "password": PASSWORD, "again": PASSWORD})
    assert answer.status == 303, answer.text
    assert "tl_session" in browser.cookies
    return browser


def set_visibility(browser: Browser, visibility: str) -> None:
    token = browser.csrf("/settings")
    answer = browser.post("/settings", {"csrf": token, "visibility": visibility})
    assert answer.status == 200, answer.text


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         corpora: dict[str, Corpus]) -> Iterator[Site]:
    """A running server with alice (team; two machines), bob (public) and carol
    (private), each machine synced: alice's laptop twice, so it has her desktop's rows."""
    root = tmp_path_factory.mktemp(f"server-{request.param}")
    database = None
    if request.param == "postgresql":
        cluster: Cluster = request.getfixturevalue("postgres")
        database = cluster.new_database("server")
    site = Site(request.param, root, database, port=free_port())
    site.proc = site.start()
    try:
        def account(item: tuple[int, str]) -> tuple[str, str, Browser, str]:
            number, name = item
            link = site.admin("add-user", name, *(["--admin"] if name == "alice" else []))
            assert link.startswith(f"{site.base}/invite/")
            # each person from an address of their own: the sign-in limit is per address
            browser = take_invite(site, link, f"10.0.0.{number + 1}")
            return name, link, browser, site.admin("token", name, "--label", "tests")

        # parallel where nothing orders them: each `tokline server` call costs seconds
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for name, link, browser, token in pool.map(
                    account, enumerate(("alice", "bob", "carol", "rate"))):
                site.browsers[name], site.tokens[name] = browser, token
                site.secrets += [link.rsplit("/", 1)[1], token, browser.cookies["tl_session"]]
        set_visibility(site.browsers["bob"], "public")
        set_visibility(site.browsers["carol"], "private")
        for name, corpus in corpora.items():
            machine = root / name
            machine.mkdir()
            (machine / "home").symlink_to(corpus.home)
            (machine / "config" / "tokline").mkdir(parents=True)
            (machine / "config" / "tokline" / "config.toml").write_text(
                f'[sync]\ndevice = "{name}"\n')
            site.machines[name] = machine
            site.alone[name] = corpus.alone

        def sync(name: str) -> None:
            person = name.split("-")[0]
            extra = {} if name == "alice-laptop" else {"TOKLINE_SERVER_TOKEN":
                                                       site.tokens[person]}
            tokline(site.machines[name], "sync", "--target", site.base, **extra)

        def alice() -> None:
            # her laptop signs in with `tokline login --token`, the others by environment;
            # the laptop syncs again after the desktop, so it has the desktop's rows
            login = tokline(site.machines["alice-laptop"], "login", site.base, "--token",
                            site.tokens["alice"])
            assert "signed in" in login.stdout and "as alice" in login.stdout
            for name in ("alice-laptop", "alice-desktop", "alice-laptop"):
                sync(name)

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            for done in [pool.submit(alice), pool.submit(sync, "bob-laptop"),
                         pool.submit(sync, "carol-laptop")]:
                done.result()
        site.settle()
        yield site
    finally:
        assert site.proc is not None
        site.proc.send_signal(signal.SIGTERM)
        try:
            code = site.proc.wait(30)
        except subprocess.TimeoutExpired:
            site.proc.kill()
            raise
        log = site.log.read_text()
        assert code == 0, log[-2000:]
        assert "Traceback" not in log, log[-4000:]


def machine_segment(site: Site, person: str) -> tuple[str, bytes]:
    """One segment ``person`` pushed, as stored."""
    name = call(site.port, "GET", "/api/v1/sync/segments",
                headers=bearer(site.tokens[person])).json()["names"][0]
    data = call(site.port, "GET", f"/api/v1/sync/segments/{name}",
                headers=bearer(site.tokens[person]))
    assert data.status == 200
    return name, data.body


# --- what the server shows ---------------------------------------------------------------

def test_healthz_and_the_database(site: Site) -> None:
    answer = call(site.port, "GET", "/healthz")
    assert answer.status == 200
    assert answer.json() == {"ok": True, "database": site.backend, "merge_backlog": 0}
    if site.database is None:  # the embedded default: under the XDG data directory
        assert (site.root / "data" / "tokline" / "server.sqlite3").is_file()


def test_the_api_shows_each_persons_exact_totals(site: Site) -> None:
    alice = {k: site.alone["alice-laptop"][k] + site.alone["alice-desktop"][k]
             for k in ("total_tokens", "requests", "cost_usd")}
    board = call(site.port, "GET", "/api/v1/leaderboard?period=all&metric=tokens",
                 headers=bearer(site.tokens["alice"])).json()
    rows = {r["user"]: r for r in board["rows"]}
    assert board["period"] == "all"
    assert set(rows) == {"alice", "bob"}  # carol is private
    assert_same_totals(rows["alice"], alice, "alice on the leaderboard")
    assert_same_totals(rows["bob"], site.alone["bob-laptop"], "bob on the leaderboard")
    assert [r["rank"] for r in board["rows"]] == [1, 2]
    assert board["rows"][0]["total_tokens"] >= board["rows"][1]["total_tokens"]
    for person, expected in (("alice", alice), ("bob", site.alone["bob-laptop"])):
        profile = call(site.port, "GET", f"/api/v1/users/{person}",
                       headers=bearer(site.tokens["alice"])).json()
        assert_same_totals(profile, expected, f"profile of {person}")
        assert sum(d["total_tokens"] for d in profile["days"]) == expected["total_tokens"]
    carol = call(site.port, "GET", "/api/v1/users/carol", headers=bearer(site.tokens["carol"]))
    assert_same_totals(carol.json(), site.alone["carol-laptop"], "carol, to herself")
    devices = call(site.port, "GET", "/api/v1/users/alice",
                   headers=bearer(site.tokens["alice"])).json()["devices"]
    assert sorted(d["device"] for d in devices) == ["alice-desktop", "alice-laptop"]
    for device in devices:
        assert device["total_tokens"] == site.alone[device["device"]]["total_tokens"]


def test_the_pages_show_each_persons_exact_totals(site: Site) -> None:
    alice_tokens = (site.alone["alice-laptop"]["total_tokens"]
                    + site.alone["alice-desktop"]["total_tokens"])
    alice_cost = site.alone["alice-laptop"]["cost_usd"] + site.alone["alice-desktop"]["cost_usd"]
    page = site.browsers["bob"].get("/?period=all&metric=tokens")
    assert page.status == 200
    shown = dict(re.findall(r'<tr data-user="([^"]+)">.*?data-tokens="(\d+)"', page.text,
                            re.S))
    assert shown == {"alice": str(alice_tokens),
                     "bob": str(site.alone["bob-laptop"]["total_tokens"])}
    costs = dict(re.findall(r'<tr data-user="([^"]+)">.*?data-cost="([\d.]+)"', page.text,
                            re.S))
    assert float(costs["alice"]) == pytest.approx(alice_cost, rel=COST_TOLERANCE)
    for person, tokens, cost in (
            ("alice", alice_tokens, alice_cost),
            ("bob", site.alone["bob-laptop"]["total_tokens"],
             site.alone["bob-laptop"]["cost_usd"])):
        profile = site.browsers["bob"].get(f"/u/{person}")
        assert profile.status == 200
        assert f'data-tokens="{tokens}"' in profile.text
        found = re.search(r'id="cost" data-cost="([\d.]+)"', profile.text)
        assert found and float(found.group(1)) == pytest.approx(cost, rel=COST_TOLERANCE)
    team = site.browsers["alice"].get("/team")
    assert team.status == 200 and "/u/bob" in team.text and "/u/carol" not in team.text


def test_pull_gives_each_machine_the_persons_other_rows(site: Site) -> None:
    both = site.alone["alice-laptop"]["total_tokens"] + site.alone["alice-desktop"]["total_tokens"]
    for name in ("alice-laptop", "alice-desktop"):
        if name == "alice-desktop":  # it pushed before the laptop's second sync: pull now
            tokline(site.machines[name], "sync", "--target", site.base,
                    TOKLINE_SERVER_TOKEN=site.tokens["alice"])
        totals = daily_totals(site.machines[name])
        assert totals["total_tokens"] == both, name
        assert set(totals["devices"]) == {"alice-laptop", "alice-desktop"}
    # another person's rows never come down
    bob = daily_totals(site.machines["bob-laptop"])
    assert bob["total_tokens"] == site.alone["bob-laptop"]["total_tokens"]
    assert set(bob["devices"]) == {"bob-laptop"}


def test_login_keeps_the_token_and_sets_the_target_and_logout_forgets_it(site: Site) -> None:
    laptop = site.machines["alice-laptop"]
    secrets_file = laptop / "data" / "tokline" / "secrets.json"
    assert site.tokens["alice"] in secrets_file.read_text()
    assert f'target = "{site.base}"' in (laptop / "config" / "tokline" / "config.toml").read_text()
    # a sync with no --target and no token in the environment uses both
    assert tokline(laptop, "sync").returncode == 0
    assert "signed out" in tokline(laptop, "logout", site.base).stdout
    assert site.tokens["alice"] not in secrets_file.read_text()
    refused = tokline(laptop, "sync", ok=False)
    assert refused.returncode != 0 and "tokline login" in refused.stderr
    tokline(laptop, "login", site.base, "--token", site.tokens["alice"])
    bad = tokline(laptop, "login", site.base, "--token", "tkl_not-a-token", ok=False)
    assert bad.returncode != 0 and "does not accept this token" in bad.stderr


# --- pushes: idempotent, append-only, validated -----------------------------------------

def test_the_same_segment_twice_changes_nothing(site: Site) -> None:
    name, data = machine_segment(site, "bob")
    before = site.state("bob")
    answer = site.put(site.tokens["bob"], name, data)
    assert answer.status == 200 and answer.json()["status"] == "unchanged"
    assert site.state("bob") == before


def test_twenty_concurrent_pushes_of_the_same_data_change_nothing(site: Site) -> None:
    """The same rows under a new name, twenty times at once: one push stores it, none
    fails, and the person's rows and daily sums stay exactly as they were."""
    _name, data = machine_segment(site, "alice")
    segment = fmt.decode(data)
    fresh = fmt.file_name(segment.device, 90_000_000 + 1)
    again = fmt.encode(segment.device, segment.name, 90_000_001, segment.created_ms,
                       [tuple(r) for r in segment.rows], segment.quota)
    usage, daily, names = site.state("alice")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: site.put(site.tokens["alice"], fresh, again),
                                range(20)))
    statuses = sorted(a.status for a in answers)
    assert statuses == [200] * 19 + [201], [a.text for a in answers]
    after = site.state("alice")  # every row was there already
    assert after[0] == usage and after[1] == daily
    assert after[2] == sorted([*names, (fresh,)])
    # and twenty at once of one new segment (of the scratch account): stored once, every
    # row once
    rows = [tuple(r._replace(key=r.key ^ 0x5A5A5A5A, session="concurrent"))
            for r in segment.rows[:50]]
    other = fmt.encode(segment.device, segment.name, 90_000_002, segment.created_ms, rows)
    other_name = fmt.file_name(segment.device, 90_000_002)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: site.put(site.tokens["rate"], other_name, other,
                                                   {"x-forwarded-for": "10.8.8.8"}),
                                range(20)))
    assert sorted(a.status for a in answers) == [200] * 19 + [201]
    count = site.sql("SELECT count(*) FROM usage WHERE session = 'concurrent'")[0][0]
    assert count == len(rows)


def test_a_segment_left_unmerged_is_merged_by_a_running_server(site: Site) -> None:
    """A segment another server process stored and never merged (it was killed right
    after answering the push): the running server's merger finds it at its next look
    (as a starting one does at once), and its rows reach the rows and sums once."""
    from tokline.server import accounts, ingest
    from tokline.server.db import engine_for, writer

    device = DEVICE + 11
    rows = [_row(key=0x7E57_0000 + i, session="left-unmerged", input=1000 + i, output=7,
                 device=to_hex(device)) for i in range(30)]
    data = raw_segment(rows, {"device": to_hex(device), "name": "killed"})
    name = fmt.file_name(device, 1)
    engine = engine_for(site.database or site.url())
    try:
        with writer(engine).begin() as conn:
            who = accounts.by_name(conn, "rate")
            assert who is not None
            assert ingest.accept(conn, who, name, data, ingest.check(name, data)) == \
                {"status": "stored", "rows": 30}
    finally:
        engine.dispose()
    site.settle()  # the merger looks every 5 s for what no push of its own announced
    got = site.sql("SELECT count(*), sum(input) FROM usage WHERE session = 'left-unmerged'")
    assert tuple(got[0]) == (30, sum(1000 + i for i in range(30)))
    day_sum = site.sql("SELECT sum(d.input) FROM daily d JOIN users p ON p.id = d.user_id"
                       " WHERE p.name = 'rate' AND d.device = :d", d=device)
    assert day_sum[0][0] == sum(1000 + i for i in range(30))
    merges = [json.loads(line) for line in site.log.read_text().splitlines()
              if line.startswith('{"event": "merge"')]
    assert any(m["rows"] == 30 and m["segments"] == 1 for m in merges)


def test_a_segment_of_that_name_with_other_content_is_refused(site: Site) -> None:
    name, data = machine_segment(site, "bob")
    segment = fmt.decode(data)
    rows = [tuple(r) for r in segment.rows]
    rows[0] = (*rows[0][:6], rows[0][6] + 1, *rows[0][7:])
    other = fmt.encode(segment.device, segment.name, segment.seq, segment.created_ms, rows)
    before = site.state("bob")
    answer = site.put(site.tokens["bob"], name, other)
    assert answer.status == 409
    assert "append-only" in answer.json()["error"]
    assert site.state("bob") == before


DEVICE = 0x1234_5678_9ABC_DEF0
NOW_MS = int(time.time() * 1000)
GOOD_ROW = [7, NOW_MS - 3_600_000, "claude", "s-1", "p", "claude-sonnet-4-5-20250929", 10,
            20, 0, 0, 5, 0, None, 0, to_hex(DEVICE)]


def raw_segment(rows: list[Any], header: dict[str, Any] | None = None, *,
                trailer: dict[str, Any] | None = None, gz: bool = True,
                lines: list[bytes] | None = None) -> bytes:
    """A segment made by hand, with a right checksum unless told otherwise."""
    head = {"format": "tokline-sync", "version": 1, "device": to_hex(DEVICE),
            "name": "hostile", "seq": 1, "created_ms": NOW_MS, "columns": list(fmt.COLUMNS),
            "quota": [], **(header or {})}
    body = lines if lines is not None else [
        json.dumps(head).encode(), *(json.dumps(r).encode() for r in rows)]
    plain = b"".join(line + b"\n" for line in body)
    end = {"end": len(body) - 1, "sha256": hashlib.sha256(plain).hexdigest(), **(trailer or {})}
    plain += json.dumps(end).encode() + b"\n"
    return gzip.compress(plain) if gz else plain


def _row(**change: Any) -> list[Any]:
    names = list(fmt.COLUMNS)
    row = list(GOOD_ROW)
    for key, value in change.items():
        row[names.index(key)] = value
    return row


SEGMENT = fmt.file_name(DEVICE, 1)
HOSTILE: dict[str, tuple[str, bytes]] = {
    "not gzip": (SEGMENT, b"hello, this is not a segment"),
    "plain JSON lines": (SEGMENT, raw_segment([GOOD_ROW], gz=False)),
    "cut short": (SEGMENT, raw_segment([GOOD_ROW])[:-9]),
    "checksum": (SEGMENT, raw_segment([GOOD_ROW], trailer={"sha256": "0" * 64})),
    "row count": (SEGMENT, raw_segment([GOOD_ROW], trailer={"end": 5})),
    "another device": (fmt.file_name(DEVICE + 1, 1), raw_segment([GOOD_ROW])),
    "another seq": (fmt.file_name(DEVICE, 2), raw_segment([GOOD_ROW])),
    "newer format": (SEGMENT, raw_segment([GOOD_ROW], {"version": 99})),
    "other columns": (SEGMENT, raw_segment([GOOD_ROW], {"columns": ["key"]})),
    "header not JSON": (SEGMENT, raw_segment([], lines=[b"{nope"])),
    "future time": (SEGMENT, raw_segment([_row(ts_ms=NOW_MS + 30 * 86_400_000)])),
    "ancient time": (SEGMENT, raw_segment([_row(ts_ms=5)])),
    "negative tokens": (SEGMENT, raw_segment([_row(input=-1)])),
    "huge tokens": (SEGMENT, raw_segment([_row(output=10**12)])),
    "fractional tokens": (SEGMENT, raw_segment([_row(output=1.5)])),
    "tokens as text": (SEGMENT, raw_segment([_row(output="12")])),
    "boolean tokens": (SEGMENT, raw_segment([_row(output=True)])),
    "NaN cost": (SEGMENT, raw_segment([], lines=[
        json.dumps({"format": "tokline-sync", "version": 1, "device": to_hex(DEVICE),
                    "name": "x", "seq": 1, "created_ms": NOW_MS,
                    "columns": list(fmt.COLUMNS), "quota": []}).encode(),
        json.dumps(GOOD_ROW).replace("null", "NaN").encode()])),
    "negative cost": (SEGMENT, raw_segment([_row(cost_usd=-2.0)])),
    "key past 64 bits": (SEGMENT, raw_segment([_row(key=1 << 64)])),
    "flags past 16 bits": (SEGMENT, raw_segment([_row(flags=1 << 20)])),
    "lone surrogate": (SEGMENT, raw_segment([], lines=[
        json.dumps({"format": "tokline-sync", "version": 1, "device": to_hex(DEVICE),
                    "name": "x", "seq": 1, "created_ms": NOW_MS,
                    "columns": list(fmt.COLUMNS), "quota": []}).encode(),
        json.dumps(GOOD_ROW).replace('"s-1"', '"\\ud800"').encode()])),
    "NUL in a model": (SEGMENT, raw_segment([_row(model="a\x00b")])),
    "long project": (SEGMENT, raw_segment([_row(project="p" * 1025)])),
    "long source": (SEGMENT, raw_segment([_row(source="s" * 33)])),
    "row of the wrong length": (SEGMENT, raw_segment([GOOD_ROW[:-1]])),
    "row not a list": (SEGMENT, raw_segment([{"key": 1}])),
    "deep nesting": (SEGMENT, raw_segment([], lines=[
        json.dumps({"format": "tokline-sync", "version": 1, "device": to_hex(DEVICE),
                    "name": "x", "seq": 1, "created_ms": NOW_MS,
                    "columns": list(fmt.COLUMNS), "quota": []}).encode(),
        b"[" * 100_000 + b"]" * 100_000])),
    "bad row device": (SEGMENT, raw_segment([_row(device="0" * 16)])),
    "gzip bomb": (SEGMENT, gzip.compress(b"\n" * (300 << 20), compresslevel=9)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_bad_segment_is_refused_whole_with_a_reason(site: Site, case: str) -> None:
    name, data = HOSTILE[case]
    # a good row first: a refusal stores nothing of what came before the bad part
    before = site.state("rate")
    answer = site.put(site.tokens["rate"], name, data, {"x-forwarded-for": "10.9.9.9"})
    assert 400 <= answer.status < 500, (answer.status, answer.text)
    reason = answer.json()["error"]
    assert reason and "\n" not in reason and len(reason) < 400
    assert site.state("rate") == before
    assert not site.sql("SELECT 1 FROM devices WHERE device IN (:a, :b)", a=DEVICE,
                        b=DEVICE + 1)


def test_a_good_segment_with_odd_but_valid_fields_is_stored(site: Site) -> None:
    """What the checks let through stores and shows without harm: a device name with
    controls and markup, text in any script, the largest counts and key."""
    device = DEVICE + 7
    rows = [_row(key=(1 << 63) - 1, model="<script>alert(1)</script>", project="项目 ☃",
                 session="'; DROP TABLE usage; --", output=10**10 - 1, device=to_hex(device)),
            _row(key=-(1 << 63), cost_usd=0.5, device=to_hex(device))]
    data = raw_segment(rows, {"device": to_hex(device), "name": "a\x1b[31mb<i>" + "n" * 200})
    answer = site.put(site.tokens["rate"], fmt.file_name(device, 1), data,
                      {"x-forwarded-for": "10.9.9.8"})
    assert answer.status == 201, answer.text
    stored = site.sql("SELECT name FROM devices WHERE device = :d", d=device)
    assert len(stored[0][0]) <= 64 and "\x1b" not in stored[0][0]
    profile = call(site.port, "GET", "/api/v1/users/rate", headers=bearer(site.tokens["rate"]))
    assert profile.json()["total_tokens"] >= 10**10
    page = site.browsers["rate"].get("/u/rate")
    assert page.status == 200 and "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)" in page.text


# --- visibility ---------------------------------------------------------------------------

def test_a_private_person_is_not_there_for_anyone_else(site: Site) -> None:
    # carol pushes a model of her own: no one else sees even its name
    device = DEVICE + 99
    data = raw_segment([_row(model="carol-secret-model", device=to_hex(device))],
                       {"device": to_hex(device)})
    assert site.put(site.tokens["carol"], fmt.file_name(device, 1), data).status == 201
    for who in ("alice", "bob", None):
        headers = bearer(site.tokens[who]) if who else {}
        board = call(site.port, "GET", "/api/v1/leaderboard?period=all", headers=headers)
        assert "carol" not in {r["user"] for r in board.json()["rows"]}
        assert call(site.port, "GET", "/api/v1/users/carol", headers=headers).status == 404
        by_model = call(site.port, "GET", "/api/v1/leaderboard?period=all"
                        "&model=carol-secret-model", headers=headers).json()
        assert by_model["rows"] == []
        if who:
            team = call(site.port, "GET", "/api/v1/team", headers=headers).json()
            assert "carol" not in json.dumps(team) and "carol-secret-model" not in json.dumps(team)
            browser = site.browsers[who]
            for path in ("/?period=all", "/team", "/u/carol"):
                page = browser.get(path)
                assert "carol" not in page.text, path
        else:
            for path in ("/?period=all", "/u/carol"):
                assert "carol" not in call(site.port, "GET", path).text
    # she sees herself
    mine = call(site.port, "GET", "/api/v1/leaderboard?period=all",
                headers=bearer(site.tokens["carol"])).json()
    assert "carol" in {r["user"] for r in mine["rows"]}
    assert "carol-secret-model" in site.browsers["carol"].get("/?period=all").text


def test_team_is_for_signed_in_people_public_for_everyone(site: Site) -> None:
    anonymous = call(site.port, "GET", "/api/v1/leaderboard?period=all").json()
    assert {r["user"] for r in anonymous["rows"]} == {"bob"}
    assert call(site.port, "GET", "/api/v1/users/alice").status == 404
    assert call(site.port, "GET", "/api/v1/users/bob").status == 200
    assert call(site.port, "GET", "/api/v1/team").status == 401
    assert call(site.port, "GET", "/team").status == 303  # to the sign-in page
    page = call(site.port, "GET", "/?period=all").text
    assert "/u/bob" in page and "/u/alice" not in page
    assert call(site.port, "GET", "/u/alice").status == 404
    # projects only when the person shows them (or to themselves)
    assert "projects" not in call(site.port, "GET", "/api/v1/users/alice",
                                  headers=bearer(site.tokens["bob"])).json()
    assert "projects" in call(site.port, "GET", "/api/v1/users/alice",
                              headers=bearer(site.tokens["alice"])).json()


def test_no_one_reads_another_persons_segments(site: Site) -> None:
    name, _ = machine_segment(site, "carol")
    assert call(site.port, "GET", f"/api/v1/sync/segments/{name}",
                headers=bearer(site.tokens["bob"])).status == 404
    listed = call(site.port, "GET", "/api/v1/sync/segments",
                  headers=bearer(site.tokens["bob"])).json()["names"]
    assert name not in listed
    assert call(site.port, "GET", f"/api/v1/sync/segments/{name}").status == 401
    assert call(site.port, "GET", f"/api/v1/sync/segments/{name}",
                headers=bearer("tkl_forged")).status == 401
    # a session cookie is not an API credential (a page cannot be made to push)
    cookie = {"cookie": f"tl_session={site.browsers['carol'].cookies['tl_session']}"}
    assert call(site.port, "GET", "/api/v1/sync/segments", headers=cookie).status == 401


# --- accounts and secrets -----------------------------------------------------------------

def test_a_tokens_last_use_is_noted(site: Site) -> None:
    query = ("SELECT t.last_used_ms FROM api_tokens t JOIN users u ON u.id = t.user_id"
             " WHERE u.name = :n AND t.label = 'tests'")
    site.sql("UPDATE api_tokens SET last_used_ms = NULL")
    assert call(site.port, "GET", "/api/v1/me", headers=bearer(site.tokens["bob"])).status == 200
    used = site.sql(query, n="bob")[0][0]
    assert used is not None and abs(used - time.time() * 1000) < 60_000
    assert site.sql(query, n="carol") == [(None,)]


def test_every_form_needs_its_csrf_token(site: Site) -> None:
    victim = site.browsers["alice"]
    forms = {"/settings": {"visibility": "public"}, "/logout": {},
             "/device": {"code": "BCDF-GHJK", "action": "approve"},
             "/login": {"name": "alice", "password": PASSWORD}}
    invite = site.admin("add-user", f"csrf-{site.backend}")
    forms[urllib.parse.urlsplit(invite).path] = {"password": PASSWORD, "again": PASSWORD}
    for path, form in forms.items():
        for token in (None, "forged", victim.cookies.get("tl_csrf", "x") + "x"):
            sent = dict(form, **({"csrf": token} if token else {}))
            answer = victim.post(path, sent)
            assert answer.status == 403, (path, token, answer.status)
    # nothing happened: still team, still signed in, the invite still open
    assert call(site.port, "GET", "/api/v1/users/alice").status == 404
    assert victim.get("/settings").status == 200
    assert site.sql("SELECT used_ms FROM invites i JOIN users u ON u.id = i.user_id"
                    " WHERE u.name = :n", n=f"csrf-{site.backend}") == [(None,)]
    # a session's token does not open another session's forms
    token = site.browsers["bob"].csrf("/settings")
    assert victim.post("/settings", {"csrf": token, "visibility": "public"}).status == 403


def test_sessions_invites_and_their_cookies(site: Site) -> None:
    browser = Browser(site.port, forwarded_for="10.7.7.1")
    signed = browser.sign_in("bob")
    assert signed.status == 303 and signed.headers["location"] == "/"
    session = next(c for c in signed.set_cookies if c.startswith("tl_session="))
    flags = {part.strip().lower() for part in session.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/"} <= flags
    assert "secure" not in flags  # plain http on loopback; set behind https
    old = browser.cookies["tl_session"]
    assert browser.get("/settings").status == 200
    # signing out ends the session on the server: the old cookie opens nothing
    token = browser.csrf("/settings")
    assert browser.post("/logout", {"csrf": token}).status == 303
    replay = Browser(site.port, cookies={"tl_session": old})
    assert replay.get("/settings").status == 303
    assert call(site.port, "GET", "/api/v1/team", headers={"cookie": f"tl_session={old}"}
                ).status == 401
    # an invite link works once
    link = site.admin("add-user", f"once-{site.backend}")
    take_invite(site, link, "10.7.7.2")
    again = Browser(site.port, forwarded_for="10.7.7.3")
    path = urllib.parse.urlsplit(link).path
    page = again.get(path)
    assert page.status == 404 and "not valid" in page.text and 'name="password"' not in page.text
    # the form sent anyway (its CSRF cookie is set): refused, no session
    answer = again.post(path, {"csrf": again.cookies["tl_csrf"], "password": "x" * 12,
                               "again": "x" * 12})
    assert answer.status == 400 and "tl_session" not in again.cookies


def test_sign_in_is_rate_limited(site: Site) -> None:
    browser = Browser(site.port, forwarded_for="10.7.7.7")
    statuses = []
    for _ in range(14):
        token = browser.csrf("/login")
        statuses.append(browser.post("/login", {"csrf": token, "name": "alice",
                                                "password": "wrong password"}).status)
    assert statuses[:10] == [401] * 10
    assert statuses[-1] == 429
    # the right password does not get through either, until the limit lets it
    token = browser.csrf("/login")
    assert browser.post("/login", {"csrf": token, "name": "alice",
                                   "password": PASSWORD}).status == 429
    # another address is not held back
    assert Browser(site.port, forwarded_for="10.7.7.8").sign_in("alice").status == 303


def test_pushes_are_rate_limited(site: Site) -> None:
    """A burst of 120 pushes, then 10 a second, per person and address: sent faster
    than that (in parallel, whatever the machine's load), the rest get 429."""
    name = fmt.file_name(DEVICE, 5)

    def push(_: int) -> Answer:
        return site.put(site.tokens["rate"], name, b"x", {"x-forwarded-for": "10.6.6.6"})

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(push, range(300)))
    elapsed = time.monotonic() - started
    statuses = [a.status for a in answers]
    assert set(statuses) == {400, 429}
    assert 120 <= statuses.count(400) <= 120 + 10 * elapsed + 1
    limited = next(a for a in answers if a.status == 429)
    assert int(limited.headers["retry-after"]) >= 1 and "slow down" in limited.json()["error"]
    # per person: another's pushes from that address go on
    assert site.put(site.tokens["bob"], name, b"x",
                    {"x-forwarded-for": "10.6.6.6"}).status == 400


def test_request_bodies_are_bounded(site: Site) -> None:
    big_form = b"csrf=x&name=" + b"a" * (1 << 20)
    assert Browser(site.port).post("/login", {}, raw=big_form).status == 413
    declared = call(site.port, "PUT", f"/api/v1/sync/segments/{SEGMENT}", body=b"x",
                    headers={**bearer(site.tokens["rate"]), "content-length": str(1 << 30)})
    assert declared.status == 413
    # chunked, with no length said: stopped once past the limit
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=60)
    try:
        conn.putrequest("PUT", f"/api/v1/sync/segments/{SEGMENT}")
        for key, value in {**bearer(site.tokens["rate"]), "transfer-encoding": "chunked",
                           "x-forwarded-for": "10.5.5.5"}.items():
            conn.putheader(key, value)
        conn.endheaders()
        chunk = b"z" * (1 << 20)
        status = None
        try:
            for _ in range(40):
                conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            conn.send(b"0\r\n\r\n")
        except OSError:
            pass  # the server may close the connection once it has answered
        status = conn.getresponse().status
    finally:
        conn.close()
    assert status == 413
    assert call(site.port, "POST", "/api/v1/device/code", body=b"{" * (64 << 10),
                headers={"content-type": "application/json"}).status == 413


GARBAGE = [
    ("GET", "/api/v1/leaderboard?period=year", None),
    ("GET", "/api/v1/leaderboard?metric=%00", None),
    ("GET", "/api/v1/leaderboard?model=" + "m" * 5000, None),
    ("GET", "/?period=%ff%fe", None),
    ("GET", "/api/v1/users/%00%ff", None),
    ("GET", "/api/v1/users/a%00b", None),
    ("GET", "/u/a%00b", None),
    ("GET", "/api/v1/leaderboard?model=%00", None),
    ("GET", "/?model=a%00", None),
    ("POST", "/api/v1/device/code", b'{"label": "a\\u0000b"}'),
    ("POST", "/api/v1/device/code", b'{"label": "a\\ud800b"}'),
    ("POST", "/api/v1/device/token", b'{"device_code": "a\\ud800b"}'),
    ("POST", "/api/v1/device/token", b'{"device_code": "a\\u0000b"}'),
    ("GET", "/u/" + "x" * 3000, None),
    ("GET", "/api/v1/nothing", None),
    ("POST", "/api/v1/healthz", b""),
    ("POST", "/api/v1/device/token", b"\xff\xfe not json"),
    ("POST", "/api/v1/device/token", b'{"device_code": 5}'),
    ("POST", "/api/v1/device/token", b'["a list"]'),
    ("POST", "/api/v1/device/code", b"\x00\x01\x02"),
    ("PUT", "/api/v1/sync/segments/..%2F..%2Fetc/passwd", b"x"),
    ("PUT", "/api/v1/sync/segments/0000000000000000/seg-00000001.tlseg", b"x"),
    ("GET", "/device?code=" + "%ff" * 50, None),
    ("GET", "/invite/" + "%00" * 10, None),
    ("POST", "/login", b"\xff\xfe=\xff&csrf=%ff%fe"),
    ("POST", "/invite/nope", b"csrf=a&password=b&again=b"),
]


def test_hostile_text_in_a_sign_in_is_a_wrong_password(site: Site) -> None:
    # as a browser would send them: NUL, a lone surrogate's bytes, far too long
    browser = Browser(site.port, forwarded_for="10.4.4.5")
    for name in ("al\x00ice", "\udcff", "a" * 5000, "ALICE", ""):
        token = browser.csrf("/login")
        raw = (f"csrf={token}&name=" + urllib.parse.quote(name, errors="surrogatepass")
               + "&password=x").encode()
        answer = browser.post("/login", {}, raw=raw)
        assert answer.status == 401, (name[:20], answer.status)


@pytest.mark.parametrize(("method", "path", "body"), GARBAGE)
def test_garbage_gets_an_answer_not_a_traceback(site: Site, method: str, path: str,
                                                body: bytes | None) -> None:
    headers = {**bearer(site.tokens["rate"]), "x-forwarded-for": "10.4.4.4"}
    answer = call(site.port, method, path, body=body, headers=headers)
    assert 200 <= answer.status < 500, (answer.status, answer.text[:300])
    assert "Traceback" not in answer.text
    assert answer.headers.get("x-content-type-options") == "nosniff"


# --- device-code sign-in -------------------------------------------------------------------

def _start_code(site: Site, forwarded_for: str) -> dict[str, Any]:
    answer = call(site.port, "POST", "/api/v1/device/code", body=b'{"label": "tests"}',
                  headers={"content-type": "application/json", "x-forwarded-for": forwarded_for})
    assert answer.status == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _poll(site: Site, device_code: str) -> Answer:
    return call(site.port, "POST", "/api/v1/device/token",
                body=json.dumps({"device_code": device_code}).encode(),
                headers={"content-type": "application/json"})


def _poll_later(site: Site, device_code: str) -> Answer:
    """A poll the interval allows (as if the CLI had waited it)."""
    digest = hashlib.sha256(device_code.encode()).hexdigest()
    site.sql("UPDATE device_codes SET last_poll_ms = last_poll_ms - 3600000"
             " WHERE device_hash = :h", h=digest)
    return _poll(site, device_code)


def _decide(site: Site, person: str, user_code: str, action: str) -> Answer:
    browser = site.browsers[person]
    page = browser.get(f"/device?code={user_code}")
    assert page.status == 200 and user_code.replace("-", "") in page.text
    token = CSRF_FIELD.search(page.text)
    assert token
    return browser.post("/device", {"csrf": token.group(1), "code": user_code,
                                    "action": action})


def test_device_code_flow_over_http(site: Site) -> None:
    start = _start_code(site, "10.3.3.1")
    assert re.fullmatch(r"[A-Z]{4}-[A-Z]{4}", start["user_code"])
    assert start["verification_uri"] == f"{site.base}/device"
    assert start["interval"] == 5 and start["expires_in"] == 900
    first = _poll(site, start["device_code"])
    assert first.status == 400 and first.json()["error"] == "authorization_pending"
    fast = _poll(site, start["device_code"])  # sooner than the interval
    assert fast.json() == {"error": "slow_down", "interval": 10}
    assert _poll_later(site, start["device_code"]).json()["error"] == "authorization_pending"
    # not signed in: the page sends the person to sign in, then back with the code
    away = call(site.port, "GET", f"/device?code={start['user_code']}")
    assert away.status == 303
    assert away.headers["location"].startswith("/login?next=/device?code=")
    assert _decide(site, "bob", start["user_code"], "approve").status == 200
    granted = _poll_later(site, start["device_code"])
    assert granted.status == 200, granted.text
    token = granted.json()["access_token"]
    assert granted.json()["user"] == "bob"
    me = call(site.port, "GET", "/api/v1/me", headers=bearer(token)).json()
    assert me["user"] == "bob"
    # once only; and the code cannot be approved again
    assert _poll_later(site, start["device_code"]).json()["error"] == "invalid_grant"
    assert _decide(site, "alice", start["user_code"], "approve").status == 400
    site.secrets.append(token)
    site.secrets.append(start["device_code"])


def test_device_code_denied_and_expired(site: Site) -> None:
    denied = _start_code(site, "10.3.3.2")
    assert _decide(site, "bob", denied["user_code"], "deny").status == 200
    assert _poll(site, denied["device_code"]).json()["error"] == "access_denied"
    late = _start_code(site, "10.3.3.3")
    site.sql("UPDATE device_codes SET expires_ms = 1000 WHERE device_hash = :h",
             h=hashlib.sha256(late["device_code"].encode()).hexdigest())
    assert _poll(site, late["device_code"]).json()["error"] == "expired_token"
    assert _decide(site, "bob", late["user_code"], "approve").status == 400
    assert _poll(site, "no-such-code").json()["error"] == "invalid_grant"
    # starting codes is rate limited per address
    statuses = [call(site.port, "POST", "/api/v1/device/code", body=b"{}",
                     headers={"x-forwarded-for": "10.3.3.4"}).status for _ in range(12)]
    assert statuses[:10] == [200] * 10 and statuses[-1] == 429


def test_tokline_login_by_device_code(site: Site, tmp_path: Path) -> None:
    """``tokline login URL`` shows a code, polls; the person approves it in the browser
    (another sign-in is denied): the token is kept and the target set, or it fails."""
    runs = {}
    for person in ("alice", "bob"):
        root = tmp_path / person
        (root / "home").mkdir(parents=True)
        runs[person] = (root, subprocess.Popen(
            [sys.executable, "-m", "tokline", "login", site.base], env=machine_env(root),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for person, action in (("alice", "approve"), ("bob", "deny")):
        proc = runs[person][1]
        assert proc.stderr is not None
        shown = proc.stderr.readline()
        found = re.search(r"Open (\S+) and enter the code ([A-Z]{4}-[A-Z]{4})", shown)
        assert found and found.group(1) == f"{site.base}/device", shown
        assert _decide(site, person, found.group(2), action).status == 200
    out, err = runs["alice"][1].communicate(timeout=60)
    assert runs["alice"][1].returncode == 0, err
    assert "signed in" in out and "as alice" in out
    root = runs["alice"][0]
    kept = json.loads((root / "data" / "tokline" / "secrets.json").read_text())
    token = next(iter(kept.values()))
    assert call(site.port, "GET", "/api/v1/me", headers=bearer(token)).json()["user"] == "alice"
    assert site.base in (root / "config" / "tokline" / "config.toml").read_text()
    site.secrets.append(token)
    out, err = runs["bob"][1].communicate(timeout=60)
    assert runs["bob"][1].returncode != 0 and "denied" in err
    assert not (runs["bob"][0] / "data" / "tokline" / "secrets.json").exists()


# --- operations ------------------------------------------------------------------------------

def test_a_second_server_on_the_database_stops_cleanly_on_sigterm(site: Site) -> None:
    """Another app server on the same database (as behind a balancer); SIGTERM ends it
    with exit 0 once its requests are answered."""
    other = Site(site.backend, site.root, site.database, port=free_port())
    log = site.root / "second.log"
    proc = other.start(log)
    try:
        board = call(other.port, "GET", "/api/v1/leaderboard?period=all",
                     headers=bearer(site.tokens["alice"])).json()
        assert {"alice", "bob"} <= {r["user"] for r in board["rows"]}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log.read_text()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines[-1] == {"event": "stop"}
    assert any(e.get("event") == "request" and e.get("path") == "/api/v1/leaderboard"
               and e.get("status") == 200 for e in lines)


def test_secrets_are_stored_only_as_hashes(site: Site) -> None:
    dump = []
    for (table,) in site.sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'" if site.database is None
            else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"):
        for row in site.sql(f'SELECT * FROM "{table}"'):
            dump.append(" ".join(str(v) for v in row if not isinstance(v, (bytes, memoryview))))
    everything = "\n".join(dump)
    assert "scrypt$" in everything  # the passwords' hashes are there
    assert PASSWORD not in everything
    # tokens, invite links, session cookies, device codes: a SHA-256 of each, not it
    for secret in site.secrets:
        assert secret not in everything
        assert hashlib.sha256(secret.encode()).hexdigest() in everything


def test_the_client_imports_nothing_of_the_server() -> None:
    """login, logout and sync with a server target run on the client's light install: no
    module of the server extra (nor tokline.server) is imported on their way."""
    heavy = ("starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "jinja2",
             "multipart", "tokline.server")
    loaded = subprocess.run(
        [sys.executable, "-c",
         "import sys, tokline.cli, tokline.commands.login, tokline.commands.sync,"
         " tokline.sync.runner, tokline.prompt.fields;"
         " tokline.sync.targets.parse('https://tokline.example.com');"
         " print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert [m for m in loaded if m.startswith(heavy)] == []


def test_the_rollups_agree_with_daily(site: Site) -> None:
    """This month and all time come from ``monthly`` and ``totals``: the same board as
    summing ``daily`` (what the server does for a period seen from another day)."""
    from tokline.server import accounts, queries

    engine = create_engine(site.url())
    try:
        with engine.connect() as conn:
            for who in (None, accounts.by_name(conn, "alice")):
                for period in ("month", "all"):
                    for metric in ("cost", "tokens"):
                        rolled = queries.leaderboard(conn, who, period, metric)
                        summed = queries.leaderboard(conn, who, period, metric,
                                                     now_day=queries.today())
                        assert [(r["user"], r["total_tokens"], r["requests"])
                                for r in rolled["rows"]] == \
                            [(r["user"], r["total_tokens"], r["requests"])
                             for r in summed["rows"]]
                        # each rounded to a millionth of a dollar from sums taken in
                        # another order: one unit of that apart at most
                        for a, b in zip(rolled["rows"], summed["rows"], strict=True):
                            assert a["cost_usd"] == pytest.approx(b["cost_usd"], abs=1.01e-6)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0002_fills_the_rollups_from_daily(backend: str, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    from alembic import command
    from alembic.config import Config

    from tokline.server.db import engine_for, writer
    from tokline.server.ingest import month_of
    from tokline.server.migrate import SCRIPTS

    if backend == "postgresql":
        url = request.getfixturevalue("postgres").new_database("migrate")
    else:
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = engine_for(url)
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))

    def upgrade(to: str) -> None:
        with writer(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, to)

    upgrade("0001")
    # days around month ends and a leap day, two models, two people
    days = [0, 30, 31, 58, 59, 11_016, 11_017, 19_782, 19_783, 20_513]
    with writer(engine).begin() as conn:
        for uid in (1, 2):
            conn.execute(text("INSERT INTO users (id, name, is_admin, visibility, show_projects,"
                              " created_ms) VALUES (:i, :n, false, 'team', false, 0)"),
                         {"i": uid, "n": f"p{uid}"})
            for day in days:
                for model in ("m1", "m2"):
                    conn.execute(text(
                        "INSERT INTO daily VALUES (:u, :d, :m, 'claude', 1, 1, 2, 3, 4, 5, 6,"
                        " 0.5, 7, 0)"), {"u": uid, "d": day, "m": model})
    upgrade("head")
    expected: dict[tuple[int, int, str], int] = {}
    for uid in (1, 2):
        for day in days:
            for model in ("m1", "m2"):
                key = (uid, month_of(day), model)
                expected[key] = expected.get(key, 0) + 7
    with engine.connect() as conn:
        got = {(r[0], r[1], r[2]): r[3] for r in conn.execute(
            text("SELECT user_id, month, model, requests FROM monthly"))}
        all_time = sorted(tuple(r) for r in conn.execute(
            text("SELECT user_id, model, requests, input, cost_usd FROM totals")))
    engine.dispose()
    assert got == expected
    assert {dt.date(1970, 1, 1) + dt.timedelta(days=m) for _u, m, _m in got} == {
        dt.date(1970, 1, 1), dt.date(1970, 2, 1), dt.date(1970, 3, 1), dt.date(2000, 2, 1),
        dt.date(2000, 3, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1), dt.date(2026, 3, 1)}
    assert all_time == [(u, m, 7 * len(days), len(days), 0.5 * len(days))
                        for u in (1, 2) for m in ("m1", "m2")]


def test_a_pull_asks_the_keyring_for_the_token_once(site: Site,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tokline.sync import targets

    asked = []

    def token(base: str) -> str:
        asked.append(base)
        return site.tokens["alice"]

    monkeypatch.setattr(targets, "server_token", token)
    target = targets.ServerTarget(site.base)
    names = target.names()
    fetched = target.fetch(names)
    assert len(fetched) == len(names) >= 2  # her laptop and desktop
    assert asked == [site.base]
