"""Desktop notifications when a budget crosses a threshold: once per budget, level and
period, never on every prompt."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from tokline.config import Config
from tokline.prompt import lightjson
from tokline.prompt import template as render
from tokline.prompt.fields import money, read_json
from tokline.prompt.statefiles import state_dir, write_private

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def notify_budgets(snap: Mapping[str, Any], cfg: Config, env: Mapping[str, str] = os.environ
                   ) -> list[str]:
    """One desktop notification per budget, threshold and period; never on every prompt."""
    if not cfg.notify:
        return []
    path = os.path.join(state_dir(env), "notified.json")
    sent = read_json(path) or {}
    messages: list[str] = []
    for name, entry in (snap.get("budget") or {}).items():
        level = render.level_of(entry["used_percent"], cfg.warn_percent, cfg.critical_percent)
        if level is None:
            continue
        key = f"{name}:{entry['period']}:{level}"
        if key in sent:
            continue
        sent[key] = round(time.time())
        messages.append(f"tokline: {name} budget {entry['used_percent']:.0f}% used "
                        f"({money(entry['spent_usd'])} of {money(entry['limit_usd'])})")
    if messages:
        import shutil  # noqa: PLC0415 - only when a threshold was crossed
        import subprocess  # noqa: PLC0415

        sender = shutil.which("notify-send")
        for message in messages:
            if sender:
                subprocess.run([sender, "tokline", message], check=False, timeout=5,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        write_private(path, lightjson.dumps(sent).encode())
    return messages
