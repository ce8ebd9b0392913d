"""``tokline scan [--rebuild]``: bring the ledger up to date now."""

from __future__ import annotations

import argparse
import os
import sys
import time

from tokline import paths
from tokline.commands.common import refresh_ledger
from tokline.engine.refresh import print_problems
from tokline.ledger.store import Ledger
from tokline.snapshot.publish import publish


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline scan")
    parser.add_argument("--rebuild", action="store_true",
                        help="move the ledger aside and build a new one from the logs on disk")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    path = paths.ledger_file()
    if args.rebuild and path.exists():
        aside = path.with_name(f"{path.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        for suffix in ("-wal", "-shm"):
            sidecar = path.with_name(path.name + suffix)
            if sidecar.exists():
                os.replace(sidecar, aside.with_name(aside.name + suffix))
        print(f"tokline: old ledger kept at {aside}", file=sys.stderr)
    started = time.perf_counter()
    with Ledger(path) as ledger:
        report = refresh_ledger(ledger, quiet=args.quiet)
        publish(ledger)
        counts = ledger.counts()
    print_problems(report)
    if not args.quiet:
        elapsed = time.perf_counter() - started
        print(f"scanned {report.files_scanned} of {report.files_seen} files "
              f"({report.bytes_scanned / 1e6:.1f} MB) in {elapsed:.2f}s; "
              f"{counts['usage_rows']} usage rows in the ledger"
              + (f"; {report.malformed} malformed lines skipped" if report.malformed else ""))
    return 1 if report.problems and not report.files_seen else 0

