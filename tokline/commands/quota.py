"""``tokline quota [--json] [--refresh]``: every quota window and credit balance known,
with pace and run-out (tokline/prompt/quotaview.py).  A provider that is set up but was
never asked is asked once first."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from tokline import remote
from tokline.config import load as load_config
from tokline.errors import ToklineError
from tokline.prompt import quotaview, statefiles
from tokline.prompt.fields import as_of, clock, pace_text, read_json
from tokline.prompt.safetext import clean


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline quota")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--refresh", action="store_true",
                        help="ask the remote sources now (except one backing off after errors)")
    args = parser.parse_args(argv)
    problem = statefiles.dir_problem(statefiles.state_dir())
    if problem is not None:  # its quota and remote state may be planted
        raise ToklineError(statefiles.refusal(statefiles.state_dir(), problem))
    if args.refresh:
        remote.fetch_due(force=True)
    elif _never_fetched():
        remote.fetch_due()  # once: a provider set up but never asked has nothing to show
    now = time.time()
    snap = read_json(os.path.join(statefiles.state_dir(), statefiles.SNAPSHOT)) or {}
    windows = (as_of(snap, now).get("quota") if snap else []) or []
    # the fetched figures may be newer than the snapshot's: read them by the same rule
    windows = quotaview.current(remote.merge(windows, remote.windows(now)), now,
                                snap.get("quota_readings"))
    errors = {key: entry["error"] for key, entry in remote.load_state().items()
              if entry.get("error")}
    if args.json:
        json.dump({"windows": windows, "errors": errors}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not windows and not errors:
        print("No quota known yet: Claude Code's status line (tokline setup claude), Codex logs, "
              "Cursor's login and `tokline auth login copilot|openrouter|anthropic-admin|"
              "openai-admin|cursor` provide it.")
        return 0
    for w in windows:
        print(describe(w))
    for key, error in errors.items():
        provider, _, account = key.partition(":")
        label = provider if account in ("", "default") else f"{provider}@{account}"
        print(f"{clean(label, 40):<15} error: {clean(error)}")
    return 0


def _never_fetched() -> bool:
    """A configured provider account has no state yet: never asked (or its state lost).
    Without waking the keyring (a fraction of a second to load): an account logged in
    counts as set up."""
    state = remote.load_state()
    return any(f"{name}:{account}" not in state
               for name, account in remote.configured(load_config(), wake=False))


def describe(w: dict[str, Any]) -> str:
    """One line per window: percent used, money and counts left or spent, reset time."""
    pct = w.get("used_percent")
    parts = [f"{pct:.0f}% used" if isinstance(pct, (int, float)) else ""]
    for key, label in (("spent_usd", "spent"), ("today_usd", "today"),
                       ("remaining_usd", "left"), ("balance_usd", "balance")):
        if isinstance(w.get(key), (int, float)):
            parts.append(f"${w[key]:,.2f} {label}")
    if isinstance(w.get("remaining"), (int, float)):
        of = f" of {w['entitlement']:,.0f}" if isinstance(w.get("entitlement"), (int, float)) \
            else ""
        parts.append(f"{w['remaining']:,.0f}{of} left")
    if w.get("overage"):
        parts.append(f"{w['overage']:,.0f} over")
    if w.get("note"):
        parts.append(clean(w["note"]))
    if w.get("resets_at"):
        parts.append(f"resets {clock(w['resets_at'])}")
    elif w.get("reset_passed"):
        parts.append("reset since, next reset unknown")
    if isinstance(w.get("pace_percent"), (int, float)):
        parts.append(f"{pace_text(w['pace_percent'])} vs an even pace")
    if isinstance(w.get("runout_at"), (int, float)):
        parts.append(f"runs out {clock(w['runout_at'])}")
    text = ", ".join(p for p in parts if p) or "—"
    kind = " (estimate)" if w.get("kind") == "estimate" else ""
    stale = ""
    if w.get("stale"):
        when = f", as of {clock(w['as_of'])}" \
            if isinstance(w.get("as_of"), (int, float)) and not w.get("device") else ""
        stale = f" (stale{when})"
    # a reading another device made (tokline sync): which one, and when
    seen = ""
    if w.get("device"):
        when = f", as of {clock(w['as_of'])}" if isinstance(w.get("as_of"), (int, float)) \
            else ""
        seen = f" (from {clean(w['device'], 40)}{when})"
    # source, window and note may come from a remote answer: printed through clean()
    return (f"{clean(w['source'], 40):<15} {clean(w['window'], 40):<12} "
            f"{text}{kind}{stale}{seen}")
