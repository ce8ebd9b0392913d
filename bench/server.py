"""The team server's figures (issue 17), over real HTTP against ``tokline server``:

* leaderboard API p95 (every period and metric) and profile page p95, with 1,000 people
  × 365 days × 5 models in PostgreSQL;
* a day's push: one segment of 5,000 requests, PUT until answered, and until its rows
  are in the sums (the server's merger, after the answer);
* 200 pushes at once (threads, 50 people × 4 segments): no error, nothing lost (every
  row there, every person's daily sums equal to their rows').

The history goes in directly (COPY into ``usage``, then ``daily`` summed from it by the
same query a push runs); everything measured goes through the server.  Without
``--database`` a throwaway cluster is started (tests/pg.py) with PostgreSQL's default,
durable settings.  Usage:

    python bench/server.py [--database postgresql://…] [--users 1000] [--days 365]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

MODELS = [("claude-sonnet-4-5-20250929", "claude"), ("claude-opus-4-1-20250805", "claude"),
          ("claude-haiku-4-5-20251001", "claude"), ("gpt-5-codex", "codex"),
          ("gpt-5", "codex")]
DAY_MS = 86_400_000


class CpuMeter:
    """CPU time of the server process and of the PostgreSQL backends serving clients (not
    autovacuum, the checkpointer or the WAL writer, which work on after a bulk load): per
    request, about what a request takes on an idle machine, where the wall-clock time of
    a shared one also holds everyone else's work."""

    def __init__(self, server_pid: int, postmaster_pid: int | None) -> None:
        self.server, self.postmaster = server_pid, postmaster_pid
        self.tick_ms = 1000 / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _stat(pid: int) -> list[str] | None:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return None

    @staticmethod
    def _client_backend(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                title = fh.read()
        except OSError:
            return False
        return b"127.0.0.1(" in title  # "postgres: USER DB 127.0.0.1(PORT) idle"

    def now(self) -> float:
        ticks = 0
        fields = self._stat(self.server)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
        if self.postmaster is not None:
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    found = self._stat(int(entry))
                    if found and int(found[1]) == self.postmaster \
                            and self._client_backend(int(entry)):
                        ticks += int(found[11]) + int(found[12])
        return ticks * self.tick_ms


def postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's process, when it runs on this machine (superuser)."""
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        with open(os.path.join(row[0], "postmaster.pid")) as fh:
            return int(fh.readline())
    except (OSError, ValueError, TypeError, psycopg.Error):
        return None


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summary(values: list[float]) -> str:
    return (f"n={len(values)} p50={statistics.median(values):.1f} ms "
            f"p95={pct(values, 95):.1f} ms max={max(values):.1f} ms")


class Client:
    """One keep-alive connection, as a browser or a script holds it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        start = time.perf_counter()
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                answer = self.conn.getresponse()
                data = answer.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
                start = time.perf_counter()
        return answer.status, data, 1000 * (time.perf_counter() - start)


def load(url: str, users: int, days: int, today: int, seed: int) -> dict[str, Any]:
    """People, and their usage rows and daily sums, straight into the database (unless
    it holds them already: --database of a kept run)."""
    import psycopg
    from sqlalchemy import create_engine

    from tokline.server.db import writer
    from tokline.server.ingest import refresh_daily

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        have = conn.exec_driver_sql("SELECT count(*) FROM users").scalar()
    if have:
        return {**credentials(engine, users), "rows": None, "copy_s": 0, "load_s": 0}

    rng = random.Random(seed)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        with conn.cursor().copy("COPY users (name, password_hash, is_admin, visibility,"
                                " show_projects, created_ms) FROM STDIN") as copy:
            for n in range(users):
                visibility = "private" if n % 20 == 19 else "public" if n % 7 == 3 else "team"
                copy.write_row((f"u{n:04d}", None, n == 0, visibility, n % 3 == 0,
                                int(time.time() * 1000)))
        ids = [row[0] for row in conn.execute("SELECT id FROM users ORDER BY name")]
        with conn.cursor().copy("COPY devices (user_id, device, name, last_push_ms)"
                                " FROM STDIN") as copy:
            for uid in ids:
                copy.write_row((uid, uid, f"laptop-{uid}", None))
        rows = 0
        with conn.cursor().copy(
                "COPY usage (user_id, key, ts_ms, day, source, session, project, model, input,"
                " output, cache_5m, cache_1h, cache_read, web_search, cost_usd, cost_calc,"
                " flags, device) FROM STDIN") as copy:
            for uid in ids:
                scale = rng.lognormvariate(0, 1)
                for day in range(today - days + 1, today + 1):
                    for m, (model, source) in enumerate(MODELS):
                        inp = int(rng.randint(1_000, 200_000) * scale)
                        out = int(rng.randint(500, 40_000) * scale)
                        read = int(rng.randint(10_000, 2_000_000) * scale)
                        write = int(rng.randint(0, 100_000) * scale)
                        cost = (inp * 3 + out * 15 + read * 0.3 + write * 3.75) / 1e6
                        copy.write_row((uid, (day << 8) | m, day * DAY_MS + 3_600_000 * (m + 8),
                                        day, source, f"s-{uid}-{day}", f"project-{m}", model,
                                        inp, out, write, 0, read, 0, None, cost, 0, uid))
                        rows += 1
        conn.commit()
        copied = time.perf_counter() - started
    with writer(engine).begin() as conn:
        for uid in ids:  # the sums a push makes, by the query a push runs
            refresh_daily(conn, uid, set(range(today - days + 1, today + 1)))
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    found = credentials(engine, users)
    engine.dispose()
    return {**found, "rows": rows, "copy_s": copied, "load_s": time.perf_counter() - started}


def credentials(engine: Any, users: int) -> dict[str, Any]:
    """A session of u0000's (the viewer) and an API token of everyone's."""
    from tokline.server import accounts

    with engine.begin() as conn:
        viewer = accounts.by_name(conn, "u0000")
        assert viewer is not None
        session, _csrf = accounts.new_session(conn, viewer)
        tokens = {}
        for n in range(users):
            found = accounts.by_name(conn, f"u{n:04d}")
            assert found is not None
            tokens[found.name] = accounts.new_token(conn, found, "bench")
        daily_rows = conn.exec_driver_sql("SELECT count(*) FROM daily").scalar()
    return {"session": session, "tokens": tokens, "daily_rows": daily_rows}


def start_server(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tokline", "server", "--database", url,
                                 "--port", str(port)], stdout=out, stderr=out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server stopped: " + log.read_text()[-2000:])
        try:
            if Client(port).call("GET", "/healthz")[0] == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not come up")


def segment(device: int, seq: int, rows: list[tuple[Any, ...]]) -> tuple[str, bytes]:
    from tokline.sync import segments as fmt

    return fmt.file_name(device, seq), fmt.encode(device, "bench", seq,
                                                   int(time.time() * 1000), rows)


def day_rows(device: int, first_key: int, count: int, ts_ms: int) -> list[tuple[Any, ...]]:
    rng = random.Random(first_key)
    return [(first_key + i, ts_ms + i, "claude", f"push-{first_key}", "bench",
             MODELS[i % 3][0], rng.randint(1, 5000), rng.randint(1, 3000), rng.randint(0, 2000),
             0, rng.randint(0, 90_000), 0, None, 0, device) for i in range(count)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database", help="postgresql://… (default: a throwaway cluster)")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--requests", type=int, default=400, help="per measured endpoint")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--work", type=Path, default=Path("/tmp/tokline-bench-server"))
    args = ap.parse_args()
    from pg import free_port, start_cluster

    # a stopped bench stops its server and cluster too (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    args.work.mkdir(parents=True, exist_ok=True)
    cluster = None
    if args.database:
        url = args.database
    else:
        cluster = start_cluster({"max_connections": "300"})
        url = cluster.new_database("bench")
    proc = None
    try:
        subprocess.run([sys.executable, "-m", "tokline", "server", "migrate", "--database",
                        url], check=True, capture_output=True)
        today = int(time.time() * 1000) // DAY_MS
        loaded = load(url, args.users, args.days, today, args.seed)
        if loaded["rows"] is not None:
            print(f"loaded {args.users:,} people x {args.days} days x {len(MODELS)} models: "
                  f"{loaded['rows']:,} usage rows, {loaded['daily_rows']:,} daily rows in "
                  f"{loaded['load_s']:.0f} s (COPY {loaded['copy_s']:.0f} s)", flush=True)
        port = free_port()
        proc = start_server(url, port, args.work / "server.log")
        report = measure(port, loaded, args, today, url,
                         CpuMeter(proc.pid, postmaster_pid(url)), args.work / "server.log")
        print(json.dumps(report, indent=2))
        (args.work / "figures.json").write_text(json.dumps(report, indent=2))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(60)
        if cluster is not None:
            cluster.stop()
    return 0


def measure(port: int, loaded: dict[str, Any], args: argparse.Namespace, today: int,
            url: str, cpu: CpuMeter, log: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    # names and keys of this run's own (a database kept from an earlier run has those)
    run = int(time.time()) & 0xFFFFFF
    tokens: dict[str, str] = loaded["tokens"]
    viewer = {"authorization": f"Bearer {tokens['u0000']}"}
    client = Client(port)
    out: dict[str, Any] = {"users": args.users, "days": args.days, "models": len(MODELS),
                           "daily_rows": loaded["daily_rows"]}
    for _ in range(20):  # warm: the pool's connections, PostgreSQL's caches
        client.call("GET", "/api/v1/leaderboard?period=all", headers=viewer)
    board: dict[str, list[float]] = {}
    mark = cpu.now()
    for i in range(args.requests):
        period = ("day", "week", "month", "all")[i % 4]
        metric = ("cost", "tokens")[(i // 4) % 2]
        status, body, ms = client.call(
            "GET", f"/api/v1/leaderboard?period={period}&metric={metric}", headers=viewer)
        assert status == 200, body[:200]
        board.setdefault(period, []).append(ms)
    every = [ms for values in board.values() for ms in values]
    out["leaderboard_api"] = {"all_periods": summary(every),
                              "cpu_ms_per_request": round((cpu.now() - mark) / len(every), 1),
                              **{p: summary(v) for p, v in board.items()}}
    print("leaderboard API:", out["leaderboard_api"]["all_periods"], "; CPU per request",
          out["leaderboard_api"]["cpu_ms_per_request"], "ms", flush=True)
    for period, values in board.items():
        print(f"  {period}: {summary(values)}", flush=True)
    cookie = {"cookie": f"tl_session={loaded['session']}"}
    visible = [f"u{n:04d}" for n in range(args.users) if n % 20 != 19]
    pages = []
    mark = cpu.now()
    for _ in range(args.requests // 2):
        status, body, ms = client.call("GET", f"/u/{rng.choice(visible)}", headers=cookie)
        assert status == 200, body[:200]
        pages.append(ms)
    out["profile_page"] = summary(pages) + \
        f"; CPU {(cpu.now() - mark) / len(pages):.1f} ms per request"
    print("profile page:", out["profile_page"], flush=True)
    api_profile = []
    mark = cpu.now()
    for _ in range(args.requests // 4):
        status, body, ms = client.call("GET", f"/api/v1/users/{rng.choice(visible)}",
                                       headers=viewer)
        assert status == 200
        api_profile.append(ms)
    out["profile_api"] = summary(api_profile) + \
        f"; CPU {(cpu.now() - mark) / len(api_profile):.1f} ms per request"
    print("profile API:", out["profile_api"], flush=True)
    # a day's push: 5,000 requests of one person's day, one segment, one PUT each
    pushes: list[float] = []
    merged: list[float] = []
    mark = cpu.now()
    for n in range(20):
        name = f"u{(n * 37 + run) % args.users:04d}"  # a day of their own each run
        device = 10_000 + n
        seg_name, data = segment(device, 1 + run, day_rows(device, (1 << 61) + (run << 24),
                                                           5000, today * DAY_MS + 60_000))
        status, body, ms = client.call("PUT", f"/api/v1/sync/segments/{seg_name}", data,
                                       {"authorization": f"Bearer {tokens[name]}",
                                        "content-type": "application/gzip"})
        assert status == 201, body[:300]
        pushes.append(ms)
        # then until its rows are in the person's sums (the merger's work), before the
        # next push: each push measured on its own
        began = time.perf_counter() - ms / 1000
        while json.loads(client.call("GET", "/healthz")[1])["merge_backlog"]:
            time.sleep(0.002)
        merged.append(1000 * (time.perf_counter() - began))
    out["day_push_5000_rows"] = summary(pushes) + \
        f" ({len(data) >> 10} KiB gzip); CPU {(cpu.now() - mark) / len(pushes):.1f} ms per" \
        " push with its merge"
    out["day_push_until_merged"] = summary(merged)
    out["day_push_phases_median_ms"] = push_phases(log, 5000)
    print("a day's push (5,000 requests), answered:", out["day_push_5000_rows"], flush=True)
    print("  until in the sums:", out["day_push_until_merged"], flush=True)
    print("  server-side phases, median ms:", out["day_push_phases_median_ms"], flush=True)
    out["concurrent_pushes"] = concurrent_pushes(port, tokens, args.users, today, url, run)
    print("200 pushes at once:", out["concurrent_pushes"], flush=True)
    return out


def push_phases(log: Path, rows: int) -> dict[str, float]:
    """Medians of the server's own account of pushes of ``rows`` rows and of their merges
    (its log)."""
    found: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event.get("rows") != rows or event.get("event") not in ("push", "merge"):
            continue
        for key, value in event.items():
            if key.endswith("_ms") or key == "ms":
                name = "merge_ms" if event["event"] == "merge" else key
                found.setdefault(name, []).append(value)
    return {k: round(statistics.median(v), 1) for k, v in found.items()}


def concurrent_pushes(port: int, tokens: dict[str, str], users: int, today: int,
                      url: str, run: int) -> dict[str, Any]:
    """50 people × 4 segments of 250 rows, all 200 PUT at once (a thread each)."""
    import psycopg

    people = [f"u{n:04d}" for n in range(0, users, max(1, users // 50))][:50]
    jobs = []
    for p, name in enumerate(people):
        for s in range(4):
            device = 20_000 + p
            first = (1 << 62) + (run << 24) + s * 1000
            rows = day_rows(device, first, 250, today * DAY_MS + 120_000)
            jobs.append((name, *segment(device, s + 1 + run, rows)))
    barrier = threading.Barrier(len(jobs))  # all at once, not as the threads come up

    def push(job: tuple[str, str, bytes]) -> tuple[int, float]:
        name, seg_name, data = job
        client = Client(port)
        barrier.wait()
        status, _body, ms = client.call("PUT", f"/api/v1/sync/segments/{seg_name}", data,
                                        {"authorization": f"Bearer {tokens[name]}",
                                         "content-type": "application/gzip"})
        return status, ms

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(push, jobs))
    wall = time.perf_counter() - started
    client = Client(port)  # and until the merger has merged every one of them
    while json.loads(client.call("GET", "/healthz")[1])["merge_backlog"]:
        time.sleep(0.01)
    merged_s = time.perf_counter() - started
    statuses: dict[int, int] = {}
    for status, _ms in results:
        statuses[status] = statuses.get(status, 0) + 1
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM usage WHERE key >= %s AND key < %s",
                              ((1 << 62) + (run << 24),
                               (1 << 62) + (run << 24) + 4000)).fetchone()
        # every person's daily sums equal their rows' (nothing lost between the two)
        mismatched = conn.execute(
            "SELECT count(*) FROM (SELECT user_id, day, sum(input + output) AS t, count(*) AS n"
            " FROM usage WHERE day = %s GROUP BY user_id, day) u FULL JOIN"
            " (SELECT user_id, day, sum(input + output) AS t, sum(requests) AS n FROM daily"
            " WHERE day = %s GROUP BY user_id, day) d USING (user_id, day)"
            " WHERE u.t IS DISTINCT FROM d.t OR u.n IS DISTINCT FROM d.n",
            (today, today)).fetchone()
    expected = len(jobs) * 250
    return {"pushes": len(jobs), "statuses": statuses, "wall_s": round(wall, 2),
            "all_merged_s": round(merged_s, 2),
            "latency": summary([ms for _s, ms in results]),
            "rows_expected": expected, "rows_stored": stored[0] if stored else None,
            "daily_mismatches": mismatched[0] if mismatched else None}


if __name__ == "__main__":
    sys.exit(main())
