"""Issue 17, the team server's web pages in a real headless Chromium.

A real ``tokline server`` (subprocess, embedded SQLite, 127.0.0.1 and a free port) gets
three people: alice (two machines) and bob (one) push the usage of generated corpora with
``tokline sync``, carol pushes nothing.  Debian's Chromium (driven over the DevTools
protocol by Playwright; no browser of Playwright's own) then takes the invite links, signs
in, and reads the pages: every number is checked against what the machines themselves
report (``tokline daily --json --offline``: tokens exactly, cost to the cent).  The
device-code login runs end to end (``tokline login`` approved in alice's browser, then a
``tokline sync`` with the token it stored).  Each page leaves a screenshot in
$TOKLINE_ARTIFACTS/server-pages (default .ci/artifacts/server-pages), at desktop and at
phone width; no request of the browser's may leave 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import GENCORPUS
from server_merge import wait_merged

pytest.importorskip("starlette", reason="the server extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

CHROMIUM = os.environ.get("TOKLINE_CHROMIUM", "/usr/bin/chromium")
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)
# nothing here depends on the scanner (tests/test_server.py syncs with both): the
# browser run, the slowest of the suite, is made once, with the compiled modules
pytestmark = pytest.mark.scanner_independent

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("TOKLINE_ARTIFACTS") or ROOT / ".ci" / "artifacts") \
    / "server-pages"
# Chromium without anything that phones home: no component updates, no sync, no QUIC
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
PASSWORDS = {"alice": "correct horse battery", "bob": "bob's long password",
             "carol": "carol-password-1"}
MACHINES = {"alice-laptop": ("alice", 11), "alice-desktop": ("alice", 12),
            "bob-box": ("bob", 13)}
# bob names his machine with markup: the pages must show it as text
DEVICE_NAMES = {"alice-laptop": "laptop", "alice-desktop": "desktop",
                "bob-box": "bob's <i>box & \"co\""}
PHONE = {"width": 375, "height": 740}


# --- machines and the server ----------------------------------------------------------

def _env(root: Path, **extra: str) -> dict[str, str]:
    """A machine of its own: HOME and XDG directories under ``root``, UTC days."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKLINE_")}
    for var in ("CLAUDE_CONFIG_DIR", "CODEX_HOME"):
        env.pop(var, None)
    env.update(HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "config"),
               XDG_DATA_HOME=str(root / "data"), XDG_STATE_HOME=str(root / "state"),
               XDG_CACHE_HOME=str(root / "cache"), TZ="UTC")
    for var in ("TOKLINE_PURE", "TOKLINE_STRICT_BUILD"):
        if var in os.environ:
            env[var] = os.environ[var]
    env.update(extra)
    return env


def tokline(root: Path, *args: str, ok: bool = True, **extra: str
            ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "tokline", *args], env=_env(root, **extra),
                          capture_output=True, text=True, timeout=120, check=False)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Site:
    base: str
    root: Path
    database: str
    server: subprocess.Popen[bytes]
    log: Path
    invites: dict[str, str]
    tokens: dict[str, str]
    machines: dict[str, Path]
    # what each person's own machines report (tokline daily --json --offline of the
    # machine that synced last: it pulled the person's other machine's rows)
    truth: dict[str, dict[str, Any]] = field(default_factory=dict)

    def admin(self, *args: str) -> str:
        return tokline(self.root / "admin", "server", *args, "--database", self.database,
                       "--port", self.base.rsplit(":", 1)[1]).stdout.strip()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("server-pages")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    database = f"sqlite:///{root / 'server.sqlite3'}"
    # the corpora are written while the server starts (2 cores: keep it to these few)
    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    gens = {name: subprocess.Popen(
        [sys.executable, str(GENCORPUS), "--out", str(root / name / "home"), "--size", "1M",
         "--seed", str(seed), "--end", (now - dt.timedelta(minutes=2)).isoformat()],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for name, (_, seed) in MACHINES.items()}
    log = root / "server.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "tokline", "server", "--database", database, "--port",
             str(port)], env=_env(root / "server"), stdout=sink, stderr=subprocess.STDOUT)
    site = Site(base, root, database, server, log, {}, {}, {})
    try:
        _wait_healthy(base, server, log)
        for name in ("alice", "bob", "carol"):
            link = site.admin("add-user", name, *(["--admin"] if name == "alice" else []))
            assert link.startswith(f"{base}/invite/"), link
            site.invites[name] = link
        for name in ("alice", "bob"):  # carol pushes nothing
            site.tokens[name] = site.admin("token", name, "--label", "test machines")
        for name, gen in gens.items():
            _, err = gen.communicate(timeout=120)
            assert gen.returncode == 0, err
            machine = root / name
            (machine / "config" / "tokline").mkdir(parents=True)
            (machine / "config" / "tokline" / "config.toml").write_text(
                f"[sync]\ndevice = {json.dumps(DEVICE_NAMES[name])}\n")
            site.machines[name] = machine

        def push(person: str, names: tuple[str, ...]) -> dict[str, Any]:
            """The person's machines sync in turn (each scans its logs first); the last
            one pulled the others' rows, so its report is the person's whole usage."""
            for name in names:
                tokline(site.machines[name], "sync", "--target", base,
                        TOKLINE_SERVER_TOKEN=site.tokens[person])
            return _report(site.machines[names[-1]])

        with ThreadPoolExecutor(2) as pool:  # alice's machines and bob's at once
            alice = pool.submit(push, "alice", ("alice-laptop", "alice-desktop"))
            bob = pool.submit(push, "bob", ("bob-box",))
            site.truth = {"alice": alice.result(), "bob": bob.result()}
        wait_merged(site.base)  # every pushed segment merged
        yield site
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        for gen in gens.values():
            if gen.poll() is None:
                gen.kill()


def _wait_healthy(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
                if json.loads(answer.read()).get("ok"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not come up:\n{log.read_text()}")


def _report(machine: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(tokline(machine, "daily", "--json", "--offline").stdout)
    return found


def expected(site: Site, person: str, since: str | None, until: str,
             model: str | None = None) -> tuple[int, float, int]:
    """(tokens, cost, requests) of ``person``'s days in [since, until] as their machine
    says."""
    tokens, cost, requests = 0, 0.0, 0
    for row in site.truth[person]["rows"]:
        if (since is not None and row["period"] < since) or row["period"] > until:
            continue
        if model is None:
            tokens += row["total_tokens"]
            cost += row["cost_usd"]
            requests += row["requests"]
        else:
            for entry in row["models"]:
                if entry["model"] == model:
                    tokens += entry["total_tokens"]
                    cost += entry["cost_usd"]
                    requests += entry["requests"]
    return tokens, cost, requests


def money(text: str) -> float:
    """A cost as a page shows it ($1,234.56) as a number."""
    found = re.fullmatch(r"\$([0-9,]+\.[0-9]{2})", text.strip())
    assert found, f"not a cost: {text!r}"
    return float(found.group(1).replace(",", ""))


# --- the browser ----------------------------------------------------------------------

@dataclass
class Browsing:
    browser: Any
    requests: list[str] = field(default_factory=list)
    documents: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)

    def context(self, **options: Any) -> Any:
        """A browser context (a person's cookie jar) whose every request is recorded."""
        made = self.browser.new_context(**options)
        made.on("request", lambda request: self.requests.append(request.url))
        made.on("response", lambda response: self.documents.append(
            (response.url, response.status, response.headers))
            if response.request.resource_type == "document" else None)
        return made


@pytest.fixture(scope="module")
def browsing() -> Iterator[Browsing]:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            yield Browsing(browser)
        finally:
            browser.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def people(site: Site, browsing: Browsing) -> dict[str, Any]:
    """alice, bob and carol, each signed in in a browser context of their own, by taking
    their invite link (alice first mistypes the second password)."""
    signed = {}
    for name in ("alice", "bob", "carol"):
        context = browsing.context()
        page = context.new_page()
        page.goto(site.invites[name])
        if name == "alice":
            shot(page, "invite")
            assert page.locator("h1").inner_text() == "Welcome, alice"
            page.get_by_label("Password", exact=True).fill(PASSWORDS[name])
            page.get_by_label("Again").fill(PASSWORDS[name] + "!")
            page.get_by_role("button", name="Set password and sign in").click()
            assert "differ" in page.locator(".error").inner_text()
        page.get_by_label("Password", exact=True).fill(PASSWORDS[name])
        page.get_by_label("Again").fill(PASSWORDS[name])
        page.get_by_role("button", name="Set password and sign in").click()
        page.wait_for_url(f"{site.base}/u/{name}")
        # signed in: the header names the person and offers to sign out
        assert page.locator("header").get_by_role("link", name=name).count() == 1
        assert page.get_by_role("button", name="Sign out").count() == 1
        signed[name] = context
    return signed


def page_of(context: Any, url: str, status: int = 200) -> Any:
    page = context.new_page()
    answer = page.goto(url)
    assert answer is not None and answer.status == status, (url, answer and answer.status)
    return page


# --- the tests ------------------------------------------------------------------------

def test_invite_link_is_spent_and_sign_in_works(site: Site, browsing: Browsing,
                                                people: dict[str, Any]) -> None:
    context = browsing.context()
    used = page_of(context, site.invites["bob"], status=404)
    assert "not valid" in used.locator("h1").inner_text()
    login = page_of(context, f"{site.base}/team")  # not signed in: sent to sign in first
    assert login.url == f"{site.base}/login?next=/team"
    login.get_by_label("Name").fill("bob")
    login.get_by_label("Password").fill("not bob's password")
    login.get_by_role("button", name="Sign in").click()
    assert "Wrong name or password" in login.locator(".error").inner_text()
    shot(login, "login-error")
    login.get_by_label("Name").fill("bob")
    login.get_by_label("Password").fill(PASSWORDS["bob"])
    login.get_by_role("button", name="Sign in").click()
    login.wait_for_url(f"{site.base}/team")
    login.get_by_role("button", name="Sign out").click()
    login.wait_for_url(f"{site.base}/")
    assert login.locator("header").get_by_role("link", name="Sign in").count() == 1
    context.close()


def _board(page: Any) -> dict[str, Any]:
    return {
        "since": page.locator("#range").get_attribute("data-since") or None,
        "until": page.locator("#range").get_attribute("data-until"),
        "rows": page.eval_on_selector_all("#board tbody tr[data-user]", """rows =>
            rows.map(r => ({user: r.dataset.user,
                            rank: +r.querySelector('.rank').textContent,
                            cost: +r.querySelector('[data-cost]').dataset.cost,
                            cost_text: r.querySelector('[data-cost]').textContent,
                            tokens: +r.querySelector('[data-tokens]').dataset.tokens,
                            tokens_text: r.querySelector('[data-tokens]').textContent,
                            requests: +r.querySelector('[data-requests]').dataset.requests}))""")}


def _check_board(site: Site, board: dict[str, Any], metric: str,
                 model: str | None = None) -> None:
    want = {person: expected(site, person, board["since"], board["until"], model)
            for person in site.truth}
    want = {person: v for person, v in want.items() if v[0] > 0}
    rows = board["rows"]
    assert {r["user"] for r in rows} == set(want), (board, want)
    for row in rows:
        tokens, cost, requests = want[row["user"]]
        assert row["tokens"] == tokens
        assert row["requests"] == requests
        assert row["tokens_text"].replace(",", "") == str(tokens)
        assert abs(row["cost"] - cost) < 1e-5
        assert abs(money(row["cost_text"]) - cost) <= 0.005 + 1e-9
    key = "cost" if metric == "cost" else "tokens"
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert [r[key] for r in rows] == sorted((r[key] for r in rows), reverse=True)


def test_leaderboard_matches_the_machines(site: Site, people: dict[str, Any]) -> None:
    page = page_of(people["alice"], site.base + "/")
    shot(page, "leaderboard")
    # every period and both metrics, switched by the page's own links (no JavaScript)
    for label in ("Today", "This week", "This month", "All time"):
        page.locator("nav.tabs").get_by_role("link", name=label).click()
        for metric, link in (("tokens", "by tokens"), ("cost", "by cost")):
            page.locator("nav.tabs").get_by_role("link", name=link).click()
            page.wait_for_load_state()
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
            assert query["metric"] == [metric]
            current = page.locator("nav.tabs [aria-current=page]").all_inner_texts()
            assert label in current and link in current
            _check_board(site, _board(page), metric)
    assert _board(page)["since"] is None  # all time
    shot(page, "leaderboard-all")


def test_leaderboard_model_filter(site: Site, people: dict[str, Any]) -> None:
    page = page_of(people["bob"], site.base + "/?period=all&metric=tokens")
    offered = page.eval_on_selector_all("select[name=model] option", "o => o.map(x => x.value)")
    models = {m["model"] for person in site.truth.values() for m in person["totals"]["models"]}
    models.discard("<synthetic>")
    assert set(offered) == models | {""}
    for model in sorted(models)[:3]:
        page.get_by_label("Model").select_option(model)
        page.get_by_role("button", name="Show").click()
        page.wait_for_load_state()
        assert page.get_by_label("Model").input_value() == model
        _check_board(site, _board(page), "tokens", model)
    # switching the metric or the period keeps the model
    page.locator("nav.tabs").get_by_role("link", name="by cost").click()
    page.locator("nav.tabs").get_by_role("link", name="This month").click()
    page.wait_for_load_state()
    assert page.get_by_label("Model").input_value() == model
    _check_board(site, _board(page), "cost", model)
    shot(page, "leaderboard-model")


def test_profile_graph_and_tables(site: Site, people: dict[str, Any]) -> None:
    page = page_of(people["bob"], site.base + "/u/alice")
    shot(page, "profile")
    truth = site.truth["alice"]
    assert page.locator("#tokens").get_attribute("data-tokens") == \
        str(truth["totals"]["total_tokens"])
    assert abs(money(page.locator("#cost").inner_text()) - truth["totals"]["cost_usd"]) <= 0.005
    # the contribution graph: one cell per day of the year, with the day's cost
    cells = page.eval_on_selector_all("#graph svg rect.day", """cells =>
        cells.map(c => [c.dataset.date, +c.dataset.cost, +c.dataset.tokens,
                        c.querySelector('title').textContent])""")
    assert len(cells) >= 365
    by_day = {row["period"]: row for row in truth["rows"]}
    for day, cost, tokens, title in cells:
        row = by_day.get(day)
        # both sides sum a day's rows in their own order, then round to 6 decimals
        assert abs(cost - (row["cost_usd"] if row else 0.0)) < 2e-6, day
        assert tokens == (row["total_tokens"] if row else 0), day
        assert day in title
    assert {d for d, cost, _, _ in cells if cost > 0} == \
        {d for d, row in by_day.items() if row["cost_usd"] > 0}
    # the daily chart: 30 bars with a tooltip each, the tallest the dearest day
    bars = page.eval_on_selector_all("#bars svg rect.bar", """bars =>
        bars.map(b => [b.dataset.date, +b.dataset.cost,
                       b.parentNode.querySelector('title').textContent,
                       +b.getAttribute('height')])""")
    assert len(bars) == 30
    dearest = max(bars, key=lambda bar: bar[1])
    assert dearest[1] > 0 and dearest[3] == max(bar[3] for bar in bars) == 100
    for day, cost, title, _ in bars:
        want = by_day[day]["cost_usd"] if day in by_day else 0.0
        shown = re.search(r"(\$[0-9,]+\.[0-9]{2})", title)
        assert abs(cost - want) < 2e-6 and day in title and shown, (day, title)
        assert abs(money(shown.group(1)) - want) <= 0.005 + 2e-6
    # models and devices, as the machines count them
    models = {r[0]: r[1:] for r in _table(page, "#models")}
    for entry in truth["totals"]["models"]:
        if entry["model"] == "<synthetic>":
            continue
        cost, tokens = models[entry["model"]][:2]
        assert int(tokens.replace(",", "")) == entry["total_tokens"], entry["model"]
        assert abs(money(cost) - entry["cost_usd"]) <= 0.005 + 1e-9
    devices = {r[0]: r[1:] for r in _table(page, "#devices")}
    assert set(devices) == {"laptop", "desktop"}
    for name, entry in truth["totals"]["devices"].items():
        assert int(devices[name][1].replace(",", "")) == entry["total_tokens"]
    # alice does not show her projects; she herself sees them
    assert page.locator("#projects").count() == 0
    own = page_of(people["alice"], site.base + "/u/alice")
    assert own.locator("#projects tbody tr").count() > 0
    # a device name with markup is shown as text
    bob = page_of(people["alice"], site.base + "/u/bob")
    assert [r[0] for r in _table(bob, "#devices")] == [DEVICE_NAMES["bob-box"]]
    assert bob.locator("#devices i, #devices b").count() == 0
    shot(bob, "profile-bob")


def test_profile_without_usage(site: Site, people: dict[str, Any]) -> None:
    page = page_of(people["alice"], site.base + "/u/carol")
    assert page.locator("#tokens").get_attribute("data-tokens") == "0"
    assert "No usage" in page.locator("#empty").inner_text()
    assert page.locator("#models").count() == page.locator("#bars").count() == 0
    shot(page, "profile-empty")


def _table(page: Any, selector: str) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        f"{selector} tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText))")
    return rows


def test_team_page(site: Site, people: dict[str, Any]) -> None:
    page = page_of(people["carol"], site.base + "/team")
    shot(page, "team")
    since = page.locator("#range").get_attribute("data-since")
    until = page.locator("#range").get_attribute("data-until")
    assert since and until
    people_rows = {r[0]: r for r in _table(page, "#people")}
    assert set(people_rows) == set(site.truth)
    for person in site.truth:
        tokens, cost, _ = expected(site, person, since, until)
        assert int(people_rows[person][2].replace(",", "")) == tokens
        assert abs(money(people_rows[person][1]) - cost) <= 0.005 + 1e-9
    day_rows = {r[0]: r for r in _table(page, "#days")}
    for day, row in day_rows.items():
        tokens = sum(expected(site, p, day, day)[0] for p in site.truth)
        assert int(row[2].replace(",", "")) == tokens, day
    model_rows = {r[0]: r for r in _table(page, "#team-models")}
    for model, row in model_rows.items():
        tokens = sum(expected(site, p, since, until, model)[0] for p in site.truth)
        assert int(row[2].replace(",", "")) == tokens, model


def test_pages_fit_a_phone(site: Site, browsing: Browsing, people: dict[str, Any]) -> None:
    phone = browsing.context(storage_state=people["alice"].storage_state(), viewport=PHONE,
                             is_mobile=True, has_touch=True, device_scale_factor=2)
    for path, name in (("/?period=all", "leaderboard"), ("/u/alice", "profile"),
                       ("/team", "team"), ("/settings", "settings"), ("/device", "device"),
                       ("/u/nobody", "missing")):
        page = page_of(phone, site.base + path, status=404 if name == "missing" else 200)
        width = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], (path, width)
        shot(page, f"phone-{name}")
        page.close()
    phone.close()


def test_device_code_login_end_to_end(site: Site, people: dict[str, Any]) -> None:
    machine = site.root / "alice-new-laptop"
    login = subprocess.Popen(
        [sys.executable, "-m", "tokline", "login", site.base],
        env=_env(machine, TOKLINE_PLAINTEXT_SECRETS="1"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert login.stderr is not None
        line = login.stderr.readline()
        found = re.search(r"Open (\S+) and enter the code ([A-Z]{4}-[A-Z]{4})", line)
        assert found, line
        assert found.group(1) == f"{site.base}/device"
        page = page_of(people["alice"], found.group(1))
        page.get_by_label("Code").fill(found.group(2).lower())  # as a person may type it
        shot(page, "device")
        page.get_by_role("button", name="Approve").click()
        assert "Approved" in page.locator("#done").inner_text()
        shot(page, "device-approved")
        out, err = login.communicate(timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
    assert login.returncode == 0, err
    assert f"signed in to {site.base} as alice" in out
    config = (machine / "config" / "tokline" / "config.toml").read_text()
    assert f'target = "{site.base}"' in config
    secrets = (machine / "data" / "tokline" / "secrets.json").read_text()
    assert "tkl_" in secrets
    # the stored token is enough (no TOKLINE_SERVER_TOKEN, no --target): this machine
    # pulls alice's rows from the server
    tokline(machine, "sync", TOKLINE_PLAINTEXT_SECRETS="1")
    pulled = _report(machine)["totals"]
    assert pulled["total_tokens"] == site.truth["alice"]["totals"]["total_tokens"]
    # the same code cannot be approved twice
    again = page_of(people["alice"], f"{site.base}/device")
    again.get_by_label("Code").fill(found.group(2))
    again.get_by_role("button", name="Approve").click()
    assert "not valid" in again.locator("#done").inner_text()


def test_visibility_private_team_public(site: Site, browsing: Browsing,
                                        people: dict[str, Any]) -> None:
    anonymous = browsing.context()
    board = page_of(anonymous, site.base + "/?period=all")
    assert board.locator("#board tbody tr[data-user]").count() == 0  # all "team" by default
    shot(board, "leaderboard-anonymous")
    # bob goes private: alice no longer sees him anywhere; he still sees himself
    settings = page_of(people["bob"], site.base + "/settings")
    settings.get_by_label("Only me").check()
    settings.get_by_role("button", name="Save").click()
    assert "Saved" in settings.locator("main").inner_text()
    assert settings.get_by_label("Only me").is_checked()
    shot(settings, "settings")
    board = page_of(people["alice"], site.base + "/?period=all")
    assert [r["user"] for r in _board(board)["rows"]] == ["alice"]
    page_of(people["alice"], site.base + "/u/bob", status=404)
    team = page_of(people["alice"], site.base + "/team")
    assert [r[0] for r in _table(team, "#people")] == ["alice"]
    own = page_of(people["bob"], site.base + "/u/bob")
    assert own.locator("h1").inner_text() == "bob"
    assert own.locator("#visibility").inner_text() == "private"
    # alice goes public: someone not signed in sees her, and only her
    settings = page_of(people["alice"], site.base + "/settings")
    settings.get_by_label("Everyone").check()
    settings.get_by_role("button", name="Save").click()
    board = page_of(anonymous, site.base + "/?period=all")
    assert [r["user"] for r in _board(board)["rows"]] == ["alice"]
    page_of(anonymous, site.base + "/u/alice")
    page_of(anonymous, site.base + "/u/bob", status=404)
    page_of(anonymous, site.base + "/u/carol", status=404)
    anonymous.close()


def test_nothing_left_this_machine(site: Site, browsing: Browsing) -> None:
    context = browsing.context()
    page_of(context, site.base + "/login").close()
    context.close()
    assert browsing.requests
    here = urllib.parse.urlsplit(site.base).netloc
    strays = [url for url in browsing.requests if urllib.parse.urlsplit(url).scheme != "data"
              and urllib.parse.urlsplit(url).netloc != here]
    assert not strays
    for url, status, headers in browsing.documents:
        if status in (301, 302, 303, 307, 308):
            continue
        policy = headers.get("content-security-policy", "")
        assert "default-src 'none'" in policy, url
        assert headers.get("x-content-type-options") == "nosniff", url


def test_logs_and_graceful_shutdown(site: Site) -> None:
    site.server.send_signal(signal.SIGTERM)
    # uvicorn finishes the requests in flight, runs the app's shutdown (the "stop" line
    # below), then exits by the signal it caught: systemd counts that a clean stop
    assert site.server.wait(timeout=30) in (0, -signal.SIGTERM)
    shutil.copy(site.log, ARTIFACTS / "server.log")
    events: list[dict[str, Any]] = []
    for line in site.log.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    kinds = [e.get("event") for e in events]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    requests = [e for e in events if e.get("event") == "request"]
    assert len(requests) > 50
    assert {e["client"] for e in requests} == {"127.0.0.1"}
    assert all(isinstance(e["ms"], float | int) and e["status"] >= 200 for e in requests)
    # an invite link is a password until it is used: its token is not logged
    assert any(e["path"] == "/invite/…" for e in requests)
    text = site.log.read_text()
    assert not [link for link in site.invites.values() if link.rsplit("/", 1)[1] in text]

