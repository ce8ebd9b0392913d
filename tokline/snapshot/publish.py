"""After a refresh: compute the snapshot, write it and its pre-rendered lines, notify."""

from __future__ import annotations

import os
from collections.abc import Mapping

from tokline.accounting.pricing import PriceBook
from tokline.config import Config
from tokline.ledger.store import Ledger
from tokline.snapshot.build import build
from tokline.snapshot.lines import write
from tokline.snapshot.notify import notify_budgets, notify_quota

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def publish(ledger: Ledger, env: Mapping[str, str] = os.environ, cfg: Config | None = None,
            book: PriceBook | None = None) -> dict[str, Any]:
    """Compute and write the snapshot with the user's config and prices (loaded unless
    given); notify budgets and quota (tokline/snapshot/notify.py)."""
    if cfg is None:
        from tokline.config import load  # noqa: PLC0415 - slow path only

        cfg = load()
    if book is None:
        from tokline.accounting.pricing import price_book  # noqa: PLC0415

        book = price_book(cfg.price_overrides)
    snap = build(ledger, cfg, book, env)
    write(snap, cfg, env)
    notify_budgets(snap, cfg, env)
    notify_quota(snap, cfg, env)
    return snap
