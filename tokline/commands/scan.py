"""``tokline scan [--rebuild] [--prune-backups] [--cursor-csv FILE]``: bring the ledger up
to date now."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Callable

from tokline import paths
from tokline.commands.common import refresh_ledger
from tokline.engine.refresh import RefreshReport, print_problems
from tokline.errors import ToklineError
from tokline.ledger import backups
from tokline.ledger.faults import guard
from tokline.ledger.store import Ledger
from tokline.prompt import safetext
from tokline.snapshot.publish import publish
from tokline.sources import cursor, totals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tokline.sources.documents import Usage


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline scan")
    parser.add_argument("--rebuild", action="store_true",
                        help="move the ledger aside and build a new one from the logs on disk")
    parser.add_argument("--prune-backups", action="store_true",
                        help=f"remove the old ledgers --rebuild kept, all but the newest "
                             f"{backups.KEEP}")
    parser.add_argument("--cursor-csv", action="append", default=[], metavar="FILE",
                        help="add the rows of Cursor's usage export (cursor.com dashboard, "
                             "Usage, Export CSV); repeatable")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    path = str(paths.ledger_file())
    exports = [_read_export(name) for name in args.cursor_csv]  # every file, before writing
    with guard(path):
        if exports:
            _store_exports(path, exports, args.quiet)
        if args.prune_backups and not args.rebuild:
            _prune(path, args.quiet)  # first: it does not need a sound ledger
        if not args.rebuild:
            return _scan(path, args.quiet)
        with backups.rebuild_lock(path):
            aside = backups.move_aside(path)
            if aside is not None:
                print(f"tokline: old ledger kept at {aside}", file=sys.stderr)
            code = _scan(path, args.quiet, aside)
            if args.prune_backups:
                _prune(path, args.quiet)  # after: the newest kept include this one's
    return code


def _read_export(name: str) -> tuple[str, dict[str, Usage], int]:
    """(the file's name as shown, its rows by key, rows skipped as malformed)."""
    shown = safetext.clean(name)
    try:
        with open(name, encoding="utf-8-sig", newline="") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ToklineError(f"cannot read {shown}: {why}") from None
    found, malformed = cursor.parse_csv(text)
    if not found and (malformed or not text.strip()):
        raise ToklineError(f"{shown} is not a Cursor usage export (it needs the columns "
                           f"{', '.join(cursor.CSV_COLUMNS)})")
    return shown, found, malformed


def _store_exports(path: str, exports: list[tuple[str, dict[str, Usage], int]],
                   quiet: bool) -> None:
    from tokline.remote.cursor import store  # noqa: PLC0415 - only for an export

    with Ledger(path) as ledger, ledger.write():
        for shown, found, malformed in exports:
            before = ledger.counts()["usage_rows"]
            store(ledger, found)
            added = ledger.counts()["usage_rows"] - before
            if not quiet:
                print(f"{shown}: {len(found)} Cursor usage rows, {added} new"
                      + (f"; {malformed} malformed rows skipped" if malformed else ""))


def _prune(path: str, quiet: bool) -> None:
    for gone in backups.prune(path):
        if not quiet:
            print(f"removed old ledger {gone}")


def _keep_running_totals(aside: str) -> Callable[[Ledger], object]:
    """What a rebuild keeps of the ledger moved aside: the running totals of Droid, Goose
    and Crush and the rows they made, and Cursor's fetched events (totals.UNREPEATABLE),
    which the logs cannot give again; if it cannot be read, those sessions count again
    from zero."""
    def carry(ledger: Ledger) -> None:
        try:
            totals.carry_over(aside, ledger)
        except sqlite3.Error as exc:
            print(f"tokline: the running totals of {aside} could not be kept ({exc}): "
                  f"{', '.join(totals.NAMES)} sessions count again from their current totals",
                  file=sys.stderr)

    return carry


def _scan(path: str, quiet: bool, aside: str | None = None) -> int:
    started = time.perf_counter()
    with Ledger(path) as ledger:
        report: RefreshReport = refresh_ledger(
            ledger, quiet=quiet, carry=_keep_running_totals(aside) if aside else None)
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
