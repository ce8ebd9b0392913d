"""``tokline doctor``: where things are, what the ledger holds, what went wrong, and what
may be lost (Claude Code deleting its logs before tokline reads them)."""

from __future__ import annotations

import contextlib
import json
import os
import time

from tokline import paths, sources
from tokline._version import __version__
from tokline.commands.common import open_ledger
from tokline.config import load
from tokline.engine.native import USE_EXTENSIONS
from tokline.engine.refresh import PROBLEMS_META, refresh
from tokline.errors import StorageError, ToklineError
from tokline.ledger import backups, faults
from tokline.ledger.faults import guard
from tokline.prompt import statefiles
from tokline.prompt.safetext import clean
from tokline.sources.claude import configured_dirs

LONG = 1000  # characters of a path or a problem shown (safetext.clean caps each)
DAY_S = 86400
# Claude Code deletes transcripts older than ``cleanupPeriodDays`` (default 30) when it
# starts (formats.md §1.1).  The ledger keeps what it saw; it cannot keep what it never saw.
CLEANUP_DEFAULT_DAYS = 30


def claude_settings() -> list[str]:
    """Claude Code's user settings files: one per CLAUDE_CONFIG_DIR directory, else
    ~/.claude's."""
    dirs = configured_dirs(os.environ) or [os.path.join(
        os.environ.get("HOME") or os.path.expanduser("~"), ".claude")]
    return [os.path.join(d, "settings.json") for d in dirs]


def history_loss(last_scan: float | None, now: float) -> tuple[list[str], list[str]]:
    """(warnings, problems) about Claude Code deleting its logs before tokline reads
    them: a ``cleanupPeriodDays`` set shorter than its default, and a last scan (``None``:
    never) longer ago than the logs are kept."""
    warnings: list[str] = []
    problems: list[str] = []
    for path in claude_settings():
        try:
            with open(path, encoding="utf-8") as fh:
                settings = json.load(fh)
        except (OSError, ValueError):
            settings = None
        value = settings.get("cleanupPeriodDays") if isinstance(settings, dict) else None
        days = float(value) if isinstance(value, (int, float)) \
            and not isinstance(value, bool) else None
        where = clean(path, LONG)
        if days is not None and days <= 0:
            warnings.append(f"Claude Code's cleanupPeriodDays is {value} in {where}: it keeps "
                            "no transcripts, so tokline sees little or none of its usage")
            continue
        if days is not None and days < CLEANUP_DEFAULT_DAYS:
            warnings.append(
                f"Claude Code's cleanupPeriodDays is {value} in {where}: it deletes logs "
                f"older than {value:g} days when it starts; tokline keeps what it scanned, "
                "but not what it never saw: let a prompt hook (tokline init) or tokline "
                "scan read them more often than that, or raise the setting")
        kept = days if days is not None else CLEANUP_DEFAULT_DAYS
        if last_scan is not None and now - last_scan > kept * DAY_S:
            problems.append(
                f"the last scan was {(now - last_scan) / DAY_S:.0f} days ago, longer than "
                f"Claude Code keeps its logs ({kept:g} days, {where}): usage in logs it "
                "deleted since was never counted; scan more often")
    return warnings, problems


def _sync_state() -> int:
    """Print how syncing goes (when it was ever set up); 1 when it is failing."""
    from tokline.commands.sync import status_text  # noqa: PLC0415
    from tokline.sync.runner import read_state  # noqa: PLC0415

    state = read_state()
    if not state:
        return 0
    for line in status_text(state).splitlines():
        print(line)
    return 1 if state.get("failures") else 0


def run(name: str, argv: list[str]) -> int:
    print(f"tokline {__version__}, scanner: "
          f"{'compiled extension' if USE_EXTENSIONS else 'pure-Python twin'}")
    problems = 0
    try:
        cfg = load()
        print(f"config: {clean(cfg.source_file or paths.config_file(), LONG)} "
              f"({'read' if cfg.source_file else 'absent, defaults in use'})")
    except ToklineError as exc:
        print(f"config: ERROR {clean(exc, LONG)}")
        problems += 1
    for source in sources.ALL:
        roots, candidates = source.roots(), source.candidate_roots()
        if not candidates:  # no files: its module says where its usage comes from
            print(f"{source.name}: {source.module.ORIGIN}")
            continue
        print(f"{source.name} logs: " + (", ".join(clean(r, LONG) for r in roots) if roots
                                         else "none found in " + ", ".join(
                                             clean(r, LONG) for r in candidates)))
    # when the logs were last read, before this command reads them itself
    last_scan = statefiles.checked_at()
    ledger_path = str(paths.ledger_file())
    try:
        ledger = open_ledger(ledger_path)
    except ToklineError as exc:
        print(f"ledger: ERROR {clean(exc, LONG)}")
        return 1
    with ledger:
        report = None
        try:
            with guard(ledger_path):
                if ledger.readonly:
                    raise faults.read_only(faults.unwritable(ledger_path) or ledger_path,
                                           "opened read-only")
                report = refresh(ledger, dict(os.environ))
        except StorageError as exc:
            print(f"ledger: could not refresh: {clean(exc, LONG)}")
            problems += 1
        except ToklineError as exc:
            print(f"ledger: ERROR {clean(exc, LONG)}")
            return 1
        try:
            with guard(ledger_path):
                counts = ledger.counts()
                seen = ledger.get_meta(PROBLEMS_META)
        except ToklineError as exc:
            print(f"ledger: ERROR {clean(exc, LONG)}")
            return 1
    print(f"ledger: {clean(ledger_path, LONG)}: {counts['usage_rows']} usage rows from "
          f"{counts['files']} files, {counts['malformed_lines']} malformed lines skipped"
          + (" (read-only)" if ledger.readonly else ""))
    print("ledger writer: " + ("capi (SQLite's C API, through the sqlite3 module's library)"
                               if ledger.writer == "capi"
                               else f"python ({clean(ledger.writer_reason or '', LONG)})"))
    now = report.problems if report is not None else []
    for problem in now:
        print(f"problem: {clean(problem, LONG)}")
        problems += 1
    if counts.get("quarantined"):
        # rows an older tokline stored outside tokline/engine/validate.py's bounds
        print(f"problem: {counts['quarantined']} usage row(s) quarantined (out of range; "
              "kept in the ledger's quarantine table, left out of every report)")
        problems += 1
    earlier = [p for p in (json.loads(seen) if seen else []) if p not in now]
    for problem in earlier:
        print(f"problem seen earlier: {clean(problem, LONG)}")
    warnings, lost = history_loss(last_scan, time.time())
    for warning in warnings:
        print(f"warning: {warning}")
    for problem in lost:
        print(f"problem: {problem}")
        problems += 1
    problems += _sync_state()
    old = backups.beyond_keep(ledger_path)
    for backup in old:
        print(f"old ledger backup: {clean(backup, LONG)} ({_size(backup)})")
    if old:
        print(f"{len(old)} old ledger backup(s) beyond the newest {backups.KEEP}: "
              "remove them with `tokline scan --prune-backups`")
    if problems:
        print(f"{problems} problem(s)")
    elif earlier:
        print(f"no new problems ({len(earlier)} seen earlier, listed above)")
    else:
        print("no problems found")
    return 1 if problems else 0


def _size(path: str) -> str:
    total = 0
    for suffix in ("", *backups.SIDECARS):
        with contextlib.suppress(OSError):
            total += os.path.getsize(path + suffix)
    return f"{total / 1e6:.1f} MB"
