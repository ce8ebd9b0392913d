"""``tokline sync [--target T] [--status] [--json]``: exchange rows with other devices.

Exports the rows this device recorded or changed since its last export, imports what the
other devices exported and this ledger has not seen, then writes the snapshot anew.
``--status`` shows how the last sync went (also what ``tokline doctor`` says).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from tokline import paths
from tokline.config import load
from tokline.ledger.faults import guard
from tokline.ledger.store import Ledger
from tokline.prompt.safetext import clean
from tokline.sync import runner


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline sync")
    parser.add_argument("--target", help="a directory (Syncthing, Dropbox, NFS, a git "
                        "checkout...) or ssh://[user@]host[:port]/path; default [sync] target")
    parser.add_argument("--status", action="store_true", help="how the last sync went")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    cfg = load()
    if args.status:
        return _status(args.json)
    path = str(paths.ledger_file())
    tty = sys.stderr.isatty() and not args.json
    last = [0.0]

    def progress(text: str) -> None:  # a large first import says how far it is
        now = time.monotonic()
        if tty and now - last[0] > 0.2:
            last[0] = now
            sys.stderr.write(f"\r{text}\033[K")
            sys.stderr.flush()

    with guard(path), Ledger(path) as ledger:
        from tokline.commands.common import refresh_ledger  # noqa: PLC0415
        from tokline.engine.refresh import print_problems  # noqa: PLC0415

        print_problems(refresh_ledger(ledger, quiet=True))  # export what the logs hold now
        report = runner.run(ledger, cfg, args.target, progress)
        if tty and last[0]:
            sys.stderr.write("\r\033[K")
        from tokline.snapshot.publish import publish  # noqa: PLC0415

        publish(ledger)
    if args.json:
        json.dump(report._asdict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"exported {report.exported_rows:,} rows in {len(report.exported_files)} "
              f"segments; imported {report.imported_rows:,} rows from "
              f"{len(report.imported_files)} segments")
        for file in report.waiting:
            print(f"waiting for {clean(file, 200)}: not complete yet (still being copied?)")
    for problem in report.rejected:
        print(f"tokline: skipped segment {clean(problem, 400)}", file=sys.stderr)
    return 0


def _status(as_json: bool) -> int:
    state = runner.read_state()
    if as_json:
        json.dump(state, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(status_text(state))
    return 0


def status_text(state: dict[str, object]) -> str:
    """How the last sync went, in a few lines (also for ``tokline doctor``)."""
    if not state:
        return "sync: never run (set [sync] target, or run `tokline sync --target …`)"
    target = clean(str(state.get("target", "?")), 300)
    lines = [f"sync target: {target}"]
    ok = state.get("last_ok_s")
    if isinstance(ok, (int, float)):
        lines.append(f"last sync: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ok))}"
                     f" (exported {state.get('exported_rows', 0)}, imported "
                     f"{state.get('imported_rows', 0)} rows)")
    if state.get("failures"):
        error = clean(str(state.get("last_error", "")), 300)
        lines.append(f"failing: {state['failures']} attempt(s) in a row, last: {error}")
        wait = state.get("next_s")
        if isinstance(wait, (int, float)):
            lines.append("next background try: "
                         + time.strftime("%H:%M:%S", time.localtime(wait)))
    for problem in state.get("rejected") or []:  # type: ignore[attr-defined]
        lines.append(f"skipped segment: {clean(str(problem), 300)}")
    return "\n".join(lines)
