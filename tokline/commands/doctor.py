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
from tokline.prompt.safetext import clean

LONG = 1000  # characters of a path or a problem shown (safetext.clean caps each)


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
        roots = source.roots()
        print(f"{source.name} logs: " + (", ".join(clean(r, LONG) for r in roots) if roots
                                         else "none found in " + ", ".join(
                                             clean(r, LONG) for r in source.candidate_roots())))
    ledger_path = paths.ledger_file()
    try:
        with Ledger(ledger_path) as ledger:
            report = refresh(ledger, dict(os.environ))
            counts = ledger.counts()
    except ToklineError as exc:
        print(f"ledger: ERROR {clean(exc, LONG)}")
        return 1
    print(f"ledger: {clean(ledger_path, LONG)}: {counts['usage_rows']} usage rows from "
          f"{counts['files']} files, {counts['malformed_lines']} malformed lines skipped")
    for problem in report.problems:
        print(f"problem: {clean(problem, LONG)}")
        problems += 1
    with Ledger(ledger_path) as ledger:
        seen = ledger.get_meta(PROBLEMS_META)
    earlier = [p for p in (json.loads(seen) if seen else []) if p not in report.problems]
    for problem in earlier:
        print(f"problem seen earlier: {clean(problem, LONG)}")
    print("no problems found" if not problems else f"{problems} problem(s)")
    return 1 if problems else 0
