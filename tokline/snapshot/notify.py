"""Desktop notifications, sent after a refresh publishes a snapshot, never on a prompt:

* a budget crossing a threshold: once per budget, level and period;
* an official quota window crossing ``[thresholds] warn`` or ``critical``: once per
  window and level in each of the window's periods (one message, for the highest level
  reached; the levels below it count as told);
* a quota window whose run-out (tokline/prompt/quotaview.py) comes before its reset:
  once per window and period, from RUNOUT_AFTER_S into the window on (a window's first
  minutes are one burst, whose average says little).

What was sent is kept in ``notified.json`` in the state dir.  A quota period is told
apart by its reset time (reset times within quotaview.SAME_PERIOD_S are one period, as
the providers' reset times jitter); a window without a reset time starts a new period
when its figure falls below the level.  ``[status] notify = false`` turns all of them
off.  Sent through the desktop's notification service: ``notify-send`` (freedesktop
notifications) on Linux and the BSDs, Notification Center through ``osascript`` on macOS.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Mapping

from tokline.config import Config
from tokline.prompt import lightjson, quotaview
from tokline.prompt import template as render
from tokline.prompt.fields import as_of, clock, money, read_json
from tokline.prompt.safetext import clean
from tokline.prompt.statefiles import state_dir, write_private

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NOTIFIED = "notified.json"
RUNOUT_AFTER_S = 900.0
# Notification Center from osascript, the text passed as an argument, never as code
OSASCRIPT = ["-e", "on run argv", "-e",
             'display notification (item 1 of argv) with title "tokline"', "-e", "end run"]


def notify_budgets(snap: Mapping[str, Any], cfg: Config, env: Mapping[str, str] = os.environ
                   ) -> list[str]:
    """One desktop notification per budget, threshold and period; never on every prompt."""
    if not cfg.notify:
        return []
    path = os.path.join(state_dir(env), NOTIFIED)
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
        send(messages)
        write_private(path, lightjson.dumps(sent).encode())
    return messages


def notify_quota(snap: Mapping[str, Any], cfg: Config, env: Mapping[str, str] = os.environ,
                 now: float | None = None) -> list[str]:
    """The quota notifications the snapshot calls for (see the module's docstring)."""
    if not cfg.notify:
        return []
    now = time.time() if now is None else now
    path = os.path.join(state_dir(env), NOTIFIED)
    sent = read_json(path) or {}
    messages: list[str] = []
    levels = ((render.CRIT, cfg.critical_percent), (render.WARN, cfg.warn_percent))
    for window in as_of(snap, now).get("quota") or []:
        used = quotaview.number(window.get("used_percent"))
        if window.get("kind") != "official" or used is None or window.get("reset_passed"):
            continue
        name = clean(f"{window['source']} {window['window']}", 60)
        key = f"quota:{window['source']}:{window['window']}"
        resets = window.get("resets_at")
        when = f", resets {clock(resets, None, now)}" if resets else ""
        reached = [level for level, limit in levels if used >= limit]
        for level, limit in levels:
            if used < limit and resets is None:
                sent.pop(f"{key}:{level}", None)  # fell below: a new period has begun
        if reached and not _told(sent, f"{key}:{reached[0]}", resets):
            messages.append(f"tokline: {name} quota {used:.0f}% used{when}")
            for level in reached:
                sent[f"{key}:{level}"] = {"at": round(now), "resets_at": resets}
        runout = window.get("runout_at")
        elapsed = quotaview.number(window.get("elapsed_percent"))
        length = quotaview.window_seconds(window)
        if runout is not None and used < 100 and elapsed is not None and length \
                and elapsed * length / 100 >= RUNOUT_AFTER_S \
                and not _told(sent, f"{key}:runout", resets):
            messages.append(f"tokline: {name} quota ({used:.0f}% used) runs out about "
                            f"{clock(runout, None, now)} at this rate{when}")
            sent[f"{key}:runout"] = {"at": round(now), "resets_at": resets}
    if messages:
        send(messages)
        write_private(path, lightjson.dumps(sent).encode())
    return messages


def _told(sent: Mapping[str, Any], key: str, resets: object) -> bool:
    """Already sent for this period of the window."""
    entry = sent.get(key)
    return isinstance(entry, dict) and quotaview.same_period(entry.get("resets_at"), resets)


def send(messages: list[str]) -> None:
    """Show each message through the desktop's notification service, when it has one."""
    import shutil  # noqa: PLC0415 - only when there is something to say
    import subprocess  # noqa: PLC0415

    if sys.platform == "darwin":
        program = shutil.which("osascript")
        commands = [[program, *OSASCRIPT, message] for message in messages] if program else []
    else:
        program = shutil.which("notify-send")
        commands = [[program, "tokline", message] for message in messages] if program else []
    for command in commands:
        # a missing or hung notifier costs the message, never the refresh
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(command, check=False, timeout=5, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
