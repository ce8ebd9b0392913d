"""``tokline scan [--rebuild] [--prune-backups]``: bring the ledger up to date now."""

from __future__ import annotations

import argparse
import sys
import time

from tokline import paths
from tokline.commands.common import refresh_ledger
from tokline.engine.refresh import RefreshReport, print_problems
from tokline.ledger import backups
from tokline.ledger.faults import guard
from tokline.ledger.store import Ledger
from tokline.snapshot.publish import publish


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline scan")
    parser.add_argument("--rebuild", action="store_true",
                        help="move the ledger aside and build a new one from the logs on disk")
    parser.add_argument("--prune-backups", action="store_true",
                        help=f"remove the old ledgers --rebuild kept, all but the newest "
                             f"{backups.KEEP}")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    path = str(paths.ledger_file())
    with guard(path):
        if args.prune_backups and not args.rebuild:
            _prune(path, args.quiet)  # first: it does not need a sound ledger
        if not args.rebuild:
            return _scan(path, args.quiet)
        with backups.rebuild_lock(path):
            aside = backups.move_aside(path)
            if aside is not None:
                print(f"tokline: old ledger kept at {aside}", file=sys.stderr)
            code = _scan(path, args.quiet)
            if args.prune_backups:
                _prune(path, args.quiet)  # after: the newest kept include this one's
    return code


def _prune(path: str, quiet: bool) -> None:
    for gone in backups.prune(path):
        if not quiet:
            print(f"removed old ledger {gone}")


def _scan(path: str, quiet: bool) -> int:
    started = time.perf_counter()
    with Ledger(path) as ledger:
        report: RefreshReport = refresh_ledger(ledger, quiet=quiet)
        publish(ledger)
        counts = ledger.counts()
    print_problems(report)
    if not quiet:
        elapsed = time.perf_counter() - started
        print(f"scanned {report.files_scanned} of {report.files_seen} files "
              f"({report.bytes_scanned / 1e6:.1f} MB) in {elapsed:.2f}s; "
              f"{counts['usage_rows']} usage rows in the ledger"
              + (f"; {report.malformed} malformed lines skipped" if report.malformed else ""))
    return 1 if report.problems and not report.files_seen else 0
