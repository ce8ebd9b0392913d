#!/usr/bin/env python3
"""The cold write side by side: the usage rows of a cold scan of a generated corpus, written
into a new ledger by the twin (``executemany``, tokline/ledger/_writer_py.py) and by the
compiled writer (SQLite's C API, ext/_writer_c.pyx), each with its batches sorted by key
(what tokline does) and as the rows came.

    python bench/ledger_write.py [--corpus DIR] [--size 1G] [--venv VENV] [--runs 5]
                                 [--callgrind]

Runs in the venv's interpreter.  The rows are those a cold scan of the corpus makes (the
twin's UsageRow tuples, in the batches the scan flushes); each variant writes them with
their contexts in one transaction into an empty ledger (bulk_load: the indexes are built
at the end), in CPU seconds of this process, median of --runs: the rows alone, then with
the index builds and the commit.  ``--callgrind`` also counts each variant's instructions
(valgrind, one process per variant, less one that writes nothing).
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import corpus_parser, generate, private_env, venv_programs

VARIANTS = ("executemany unsorted", "executemany sorted", "C API unsorted", "C API sorted")


def capture(corpus: Path, work: Path) -> tuple[list[Any], list[list[Any]]]:
    """(contexts, batches of rows) of a cold scan of ``corpus``, with prices."""
    os.environ.update(private_env(corpus, work), TOKLINE_WRITER="python")
    from tokline.accounting.pricing import PriceBook, bundled_table
    from tokline.engine.refresh import refresh
    from tokline.ledger.store import Ledger

    contexts: list[Any] = []
    batches: list[list[Any]] = []
    original = Ledger.write_usage

    def keep(self: Any, batch: Any) -> None:
        contexts.extend(self._new_contexts)
        batches.append(list(batch.rows))
        original(self, batch)

    Ledger.write_usage = keep  # type: ignore[method-assign]
    try:
        with Ledger(work / "capture.sqlite3") as ledger:
            refresh(ledger, dict(os.environ), prices=PriceBook(bundled_table()))
    finally:
        Ledger.write_usage = original  # type: ignore[method-assign]
        del os.environ["TOKLINE_WRITER"]
    return contexts, [b for b in batches if b]


def write(path: Path, variant: str, contexts: list[Any], batches: list[list[Any]]
          ) -> tuple[float, float]:
    """CPU seconds of writing the rows, then of that with the indexes and the commit."""
    from tokline.ledger.store import Ledger

    os.environ["TOKLINE_WRITER"] = "python" if variant.startswith("executemany") else ""
    try:
        ledger = Ledger(path)
    finally:
        del os.environ["TOKLINE_WRITER"]
    assert ledger.writer == ("python" if variant.startswith("executemany") else "capi"), \
        ledger.writer_reason
    sort = variant.endswith(" sorted")
    with ledger:
        start = time.process_time()
        with ledger.write(), ledger.bulk_load():
            ledger.db.executemany("INSERT INTO contexts VALUES (?,?,?,?,?)", contexts)
            batch = ledger.usage_batch()
            for rows in batches if variant != "nothing" else []:
                batch.extend(rows)
                ledger.note_change(batch.min_ts or 0)
                batch.write(sort)
            batch.close()
            rows_done = time.process_time() - start
        return rows_done, time.process_time() - start


def callgrind(rows_file: Path, work: Path, variant: str) -> int:
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, __file__, "--replay", str(rows_file), variant,
                          str(work / "cg.sqlite3")], capture_output=True, text=True, check=True)
    for path in work.glob("cg.sqlite3*"):
        path.unlink()
    found = re.search(r"Collected : (\d+)", out.stderr)
    assert found, out.stderr
    return int(found.group(1))


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--replay":  # one variant, for --callgrind
        contexts, batches = pickle.loads(Path(sys.argv[2]).read_bytes())
        write(Path(sys.argv[4]), sys.argv[3], contexts, batches)
        return 0
    ap = corpus_parser(5)
    ap.add_argument("--callgrind", action="store_true", help="count instructions too")
    args = ap.parse_args()
    python, _ = venv_programs(args.venv)
    if Path(sys.executable).absolute() != Path(python).absolute():
        return subprocess.run([python, __file__, *sys.argv[1:]], check=False).returncode
    work = Path(tempfile.mkdtemp(prefix="tokline-write-"))
    try:
        corpus = args.corpus or work / "corpus"
        if args.corpus is None:
            print(f"generating a {args.size} corpus in {corpus} ...", flush=True)
            generate(corpus, args.size, 7)
        contexts, batches = capture(corpus, work)
        rows = sum(len(b) for b in batches)
        times: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
        for _ in range(args.runs):
            for variant in VARIANTS:
                for path in work.glob("w.sqlite3*"):
                    path.unlink()
                times[variant].append(write(work / "w.sqlite3", variant, contexts, batches))
        print(f"\n{rows} rows in {len(batches)} batches, {len(contexts)} contexts; CPU seconds,"
              f" median of {args.runs}; load average {os.getloadavg()[0]:.2f}")
        print(f"{'cold write':<24}{'rows':>10}{'+ indexes, commit':>20}")
        for variant in VARIANTS:
            print(f"{variant:<24}{statistics.median(t[0] for t in times[variant]):>10.3f}"
                  f"{statistics.median(t[1] for t in times[variant]):>20.3f}")
        if args.callgrind:
            rows_file = work / "rows.pickle"
            rows_file.write_bytes(pickle.dumps((contexts, batches)))
            floor = callgrind(rows_file, work, "nothing")
            print(f"{'instructions (callgrind)':<24}{'rows, indexes, commit':>30}")
            for variant in VARIANTS:
                count = callgrind(rows_file, work, variant) - floor
                print(f"{variant:<24}{count / 1e6:>24.0f} M")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
