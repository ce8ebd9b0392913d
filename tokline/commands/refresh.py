"""``tokline refresh``: the incremental refresh a prompt starts; silent unless something fails.

Kept off pathlib, argparse and the report modules: it runs hundreds of times a day.
"""

from __future__ import annotations

import os
import sys

from tokline.fastrefresh import ledger_path
from tokline.ledger import Ledger
from tokline.refresh import print_problems, refresh


def run(name: str, argv: list[str]) -> int:
    ledger = Ledger(ledger_path())
    report = refresh(ledger, dict(os.environ), incremental=True)
    print_problems(report)
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is committed.  Closing the last connection would checkpoint the WAL
    # (about 6 ms, half this command's own work); a later commit's autocheckpoint does it.
    os._exit(0)
