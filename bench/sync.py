#!/usr/bin/env python3
"""Sync benchmark: export and import of one busy day, import of a year, the prompt path.

    python bench/sync.py [--corpus DIR] [--size 1G] [--busy-size 55M] [--venv VENV] [--runs 11]

Three devices on one box, each with its own data, state and config directories: "busy"
holds one busy day (a --days 1 corpus of about 5,000 requests), "year" the --size corpus
(1 GB: the issue's "year", about 92,000 requests, which the generator spreads over 90
days; --corpus reuses one), "new" nothing yet.  Figures, medians of --runs:

* the exchange itself, timed inside one process of the venv's interpreter around
  tokline.sync.exchange's export and import (what ``tokline sync`` adds to a refresh;
  its CPU time beside it, for a machine that is busy with other work):
  exporting the busy day (segment written and fsync'ed), importing it into the ledger of
  the year (the harder case: keys are hashes, so new rows land all over a big table) and
  into a new device's, importing the year into a new device's, exporting the year;
* whole ``tokline sync`` processes (start-up, the refresh before, the exchange, the
  snapshot after) against the floor (``VENV/bin/python -c pass``);
* ``tokline status`` with a fresh snapshot, with and without a sync target configured:
  the prompt path must not change.

Targets (issue 16): the busy day's export and import at most 100 ms each, the year's
import at most 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import corpus_parser, generate, private_env, venv_programs, wall

TARGETS = {"export a busy day": 0.100, "import a busy day": 0.100, "import a year": 2.0}


# --- in the venv's interpreter: one timed phase ----------------------------------------

def phase(argv: list[str]) -> int:
    """``--phase OP SOURCE_LEDGER SHARE WORK RUNS``: time OP RUNS times on copies of
    SOURCE_LEDGER (copied before each run, untimed), print the seconds as JSON.
    export: write all of the ledger's rows to SHARE; import: import SHARE's segments."""
    from tokline.accounting.pricing import price_book
    from tokline.ledger.store import Ledger
    from tokline.sync import exchange
    from tokline.sync.device import local_id
    from tokline.sync.targets import DirectoryTarget

    op, source, share, work, runs = argv[0], argv[1], Path(argv[2]), Path(argv[3]), int(argv[4])
    cost_of = price_book().cost_of
    seconds, cpu = [], []
    for run in range(runs):
        copy = work / f"run-{run}" / "ledger.sqlite3"
        copy.parent.mkdir(parents=True)
        if source != "-":  # SQLite's own copy: the -wal's pages included
            with sqlite3.connect(source) as src, sqlite3.connect(copy) as dst:
                src.backup(dst)
        with Ledger(copy) as ledger:
            device = local_id(str(copy))
            if op == "export":
                out = work / f"share-{run}"
                out.mkdir()
                with ledger.write():
                    ledger.db.execute("UPDATE usage SET synced = 0")
                target = DirectoryTarget(str(out))
                start, start_cpu = time.perf_counter(), time.process_time()
                rows, _files = exchange.export(ledger, target, device, "bench", "name")
            else:
                target = DirectoryTarget(str(share))
                listed = target.names()
                start, start_cpu = time.perf_counter(), time.process_time()
                rows = exchange.import_new(ledger, target, device, cost_of, listed)[0]
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        shutil.rmtree(copy.parent)
        if op == "export":
            shutil.rmtree(work / f"share-{run}")
    print(json.dumps({"rows": rows, "seconds": seconds, "cpu": cpu}))
    return 0


# --- the benchmark -----------------------------------------------------------------------

def run(cmd: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def main() -> int:
    if sys.argv[1:2] == ["--phase"]:
        return phase(sys.argv[2:])
    ap: argparse.ArgumentParser = corpus_parser(11)
    ap.add_argument("--busy-size", default="55M", help="the --days 1 corpus of the busy day")
    ap.add_argument("--keep", action="store_true", help="keep the generated corpora")
    args = ap.parse_args()
    python, tokline = venv_programs(args.venv)
    work = Path(tempfile.mkdtemp(prefix="tokline-sync-bench-"))
    year = args.corpus or work / "year"
    if args.corpus is None:
        print(f"generating a {args.size} corpus in {year} ...", flush=True)
        generate(year, args.size, 7)
    busy = work / "busy"
    generate(busy, args.busy_size, 8, days=1)
    empty = work / "empty"
    empty.mkdir()
    share_day, share_year = work / "share-day", work / "share-year"
    share_day.mkdir()
    share_year.mkdir()
    envs = {name: private_env(home, work / name) for name, home in
            (("busy", busy), ("year", year), ("new", empty))}

    def ledger(name: str) -> Path:
        return work / name / "data" / "tokline" / "ledger.sqlite3"

    started = time.perf_counter()
    run([tokline, "scan", "-q"], envs["year"])
    print(f"the year's ledger built in {time.perf_counter() - started:.1f}s", flush=True)
    run([tokline, "scan", "-q"], envs["busy"])

    def timed_phase(op: str, source: Path | str, share: Path, runs: int
                    ) -> tuple[int, float, str]:
        """(rows, median seconds, the median CPU seconds as a note)."""
        scratch = Path(tempfile.mkdtemp(prefix=f"{op}-", dir=work))
        out = json.loads(run([python, __file__, "--phase", op, str(source), str(share),
                              str(scratch), str(runs)], envs["new"]))
        shutil.rmtree(scratch)
        return (out["rows"], statistics.median(out["seconds"]),
                f"CPU {statistics.median(out['cpu']):.4f}s, ")

    floor = statistics.median(wall([python, "-c", "pass"], envs["new"])
                              for _ in range(args.runs))
    figures: list[tuple[str, float, str]] = []

    # whole processes: the busy day's first export, and the same again (nothing to do)
    for name, share in (("busy", share_day), ("year", share_year)):
        start = time.perf_counter()
        report = json.loads(run([tokline, "sync", "--json", "--target", str(share)],
                                envs[name]))
        took = time.perf_counter() - start
        figures.append((f"tokline sync, {name}: first export", took,
                        f"{report['exported_rows']:,} rows"))
    idle = statistics.median(wall([tokline, "sync", "--target", str(share_day)], envs["busy"])
                             for _ in range(args.runs))
    figures.append(("tokline sync, nothing new", idle, "busy day device"))

    day_rows, export_day, cpu = timed_phase("export", ledger("busy"), share_day, args.runs)
    figures.append(("export a busy day", export_day, f"{cpu}{day_rows:,} rows"))
    _rows, import_day, cpu = timed_phase("import", ledger("year"), share_day, args.runs)
    figures.append(("import a busy day", import_day, f"{cpu}into the year's ledger"))
    _rows, import_new_day, cpu = timed_phase("import", "-", share_day, args.runs)
    figures.append(("  the same into a new device", import_new_day, f"{cpu}empty ledger"))
    year_rows, import_year, cpu = timed_phase("import", "-", share_year,
                                              max(3, args.runs // 3))
    figures.append(("import a year", import_year, f"{cpu}{year_rows:,} rows, new device"))
    _rows, export_year, cpu = timed_phase("export", ledger("year"), share_year, 3)
    figures.append(("export a year", export_year, f"{cpu}{year_rows:,} rows"))

    # whole processes of a new device: its first sync imports the day, or the year
    for label, share in (("busy day", share_day), ("year", share_year)):
        times = []
        for _ in range(3):
            shutil.rmtree(work / "new", ignore_errors=True)
            times.append(wall([tokline, "sync", "--target", str(share)], envs["new"]))
        figures.append((f"tokline sync, new device: the {label}", statistics.median(times),
                        "ledger made, snapshot written"))

    # the prompt path, with and without a sync target configured
    statuses = {}
    for configured in (False, True):
        env = dict(envs["year"])
        if configured:
            env["TOKLINE_SYNC_TARGET"] = str(share_year)
        run([tokline, "refresh", "--publish"], env)
        statuses[configured] = statistics.median(wall([tokline, "status"], env)
                                                 for _ in range(3 * args.runs))
    figures.append(("tokline status, no sync target", statuses[False], "fresh snapshot"))
    figures.append(("tokline status, sync target set", statuses[True], "fresh snapshot"))

    print(f"\nbusy day {day_rows:,} rows ({busy}); year {year_rows:,} rows ({year});"
          f" interpreter {python}; load average {os.getloadavg()[0]:.1f}"
          f" on {os.cpu_count()} CPUs")
    print(f"{'measure':<40}{'seconds':>10}{'x floor':>10}{'target':>9}  note")
    print(f"{'floor (python -c pass)':<40}{floor:>10.4f}{1:>10.2f}")
    missed = []
    for label, seconds, note in figures:
        target = TARGETS.get(label)
        mark = f"{target:>9.3f}" if target else " " * 9
        if target and seconds > target:
            missed.append(label)
        print(f"{label:<40}{seconds:>10.4f}{seconds / floor:>10.2f}{mark}  {note}")
    print("every target met" if not missed else f"missed: {', '.join(missed)}")
    if not args.keep:  # a --corpus given is elsewhere, and stays
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not missed else 1


if __name__ == "__main__":
    raise SystemExit(main())
