"""``tokline refresh``: the incremental refresh a prompt starts; silent unless something fails.

Kept off pathlib, argparse and the report modules: it runs hundreds of times a day.
``--locked``: started by a status call that holds the refresh lock; released at exit.
``--publish``: write the snapshot even when no log changed (new quota figures).
"""

from __future__ import annotations

import contextlib
import os
import sys

from tokline.engine.refresh import print_problems, refresh
from tokline.errors import ToklineError
from tokline.ledger.faults import guard
from tokline.ledger.store import Ledger
from tokline.prompt import statefiles
from tokline.prompt.uptodate import ledger_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tokline.accounting.pricing import PriceBook
    from tokline.config import Config
    from tokline.engine.refresh import RefreshReport


def refresh_now(publish: bool = False, remote: bool = False) -> int:
    """One incremental refresh in this process; its exit code (0, or a storage fault's).
    ``tokline refresh`` runs it, and so does Claude Code's statusLine when its session
    wrote after the snapshot was made (commands/statusline.py)."""
    statefiles.note_refresh("scan")
    try:
        # A storage fault (read-only, full disk, locked, corrupt) ends it with one line;
        # the status files stay as they were, so prompts show the last value, marked
        # stale once it is old (nothing marks it current).
        with guard(ledger_path()):
            from tokline.accounting.pricing import price_book  # noqa: PLC0415
            from tokline.config import load  # noqa: PLC0415

            cfg = load()
            prices = price_book(cfg.price_overrides)
            report = refresh_step(Ledger(ledger_path()), cfg, prices, publish, remote)
            print_problems(report)
    except ToklineError as exc:
        print(f"tokline: {exc}", file=sys.stderr)
        with contextlib.suppress(OSError):
            statefiles.note_refresh(f"failed-{exc.exit_code}")
        return exc.exit_code
    return 0


def refresh_step(ledger: Ledger, cfg: Config, prices: PriceBook, publish: bool = False,
                 remote: bool = False) -> RefreshReport:
    """What every refresh does, in a new process (``refresh_now``) or a resident one
    (tokline/surfaces/resident.py): the logs scanned, remote quotas asked when due (or
    ``remote``), the other devices synced when due; the snapshot written when any of
    that brought something (or ``publish``), else only marked current."""
    report = refresh(ledger, dict(os.environ), incremental=True, prices=prices)
    fetched = []
    if statefiles.remote_due() or remote:
        from tokline.remote.fetch import fetch_due  # noqa: PLC0415 - only when due

        fetched = fetch_due()
    synced = _sync_if_due(ledger, cfg)
    if report.changed or fetched or synced or publish or not statefiles.touch():
        from tokline.snapshot.publish import publish as write  # noqa: PLC0415

        write(ledger, cfg=cfg, book=prices)
    return report


def _sync_if_due(ledger: Ledger, cfg: Config) -> bool:
    """Sync with the other devices when ``[sync] target`` is set and its interval has
    passed (or its back-off after failures); True when rows came in.  A failure is kept
    in sync-state.json for ``tokline sync --status`` and ``tokline doctor``, not shown."""
    if not (cfg.sync_target or os.environ.get("TOKLINE_SYNC_TARGET")):
        if statefiles.sync_due():  # a target that was removed from the config
            from tokline.sync.runner import forget_due  # noqa: PLC0415

            forget_due()
        return False
    from tokline.sync import runner  # noqa: PLC0415 - only with sync configured

    if not runner.due(cfg):
        return False
    try:
        return runner.run(ledger, cfg).imported_rows > 0
    except runner.SyncError:
        return False


def run(name: str, argv: list[str]) -> int:
    try:
        code = refresh_now("--publish" in argv, "--remote" in argv)
    finally:
        if "--locked" in argv:
            statefiles.release_lock()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is committed.  Closing the last connection would checkpoint the WAL
    # (about 6 ms, half this command's own work); a later commit's autocheckpoint does it.
    os._exit(code)
