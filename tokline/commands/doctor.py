"""``tokline doctor``: where things are, what the ledger holds, what went wrong."""

from __future__ import annotations

import json
import os

from tokline import paths, sources
from tokline._version import __version__
from tokline.config import load
from tokline.engine.native import USE_EXTENSIONS
from tokline.engine.refresh import PROBLEMS_META, refresh
from tokline.errors import ToklineError
from tokline.ledger.store import Ledger


def run(name: str, argv: list[str]) -> int:
    print(f"tokline {__version__}, scanner: "
          f"{'compiled extension' if USE_EXTENSIONS else 'pure-Python twin'}")
    problems = 0
    try:
        cfg = load()
        print(f"config: {cfg.source_file or paths.config_file()} "
              f"({'read' if cfg.source_file else 'absent, defaults in use'})")
    except ToklineError as exc:
        print(f"config: ERROR {exc}")
        problems += 1
    for source in sources.ALL:
        roots = source.roots()
        print(f"{source.name} logs: " + (", ".join(roots) if roots else "none found in "
                                         + ", ".join(source.candidate_roots())))
    ledger_path = paths.ledger_file()
    try:
        with Ledger(ledger_path) as ledger:
            report = refresh(ledger, dict(os.environ))
            counts = ledger.counts()
            (quarantined,) = ledger.db.execute("SELECT count(*) FROM quarantine").fetchone()
    except ToklineError as exc:
        print(f"ledger: ERROR {exc}")
        return 1
    print(f"ledger: {ledger_path}: {counts['usage_rows']} usage rows from {counts['files']} "
          f"files, {counts['malformed_lines']} malformed lines skipped")
    for problem in report.problems:
        print(f"problem: {problem}")
        problems += 1
    if quarantined:
        # rows an older tokline stored outside tokline/engine/validate.py's bounds
        print(f"problem: {quarantined} usage row(s) quarantined (out of range; "
              "kept in the ledger's quarantine table, left out of every report)")
        problems += 1
    with Ledger(ledger_path) as ledger:
        seen = ledger.get_meta(PROBLEMS_META)
    earlier = [p for p in (json.loads(seen) if seen else []) if p not in report.problems]
    for problem in earlier:
        print(f"problem seen earlier: {problem}")
    print("no problems found" if not problems else f"{problems} problem(s)")
    return 1 if problems else 0
