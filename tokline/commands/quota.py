"""``tokline quota [--json] [--refresh]``: every quota window and credit balance known."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tokline import remote, statefiles
from tokline.view import as_of, clock, read_json


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline quota")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--refresh", action="store_true",
                        help="ask the remote sources now (except one backing off after errors)")
    args = parser.parse_args(argv)
    if args.refresh:
        remote.fetch_due(force=True)
    now = time.time()
    snap = read_json(os.path.join(statefiles.state_dir(), statefiles.SNAPSHOT)) or {}
    windows = (as_of(snap, now).get("quota") if snap else []) or []
    windows = remote.merge(windows, remote.windows(now))
    errors = {key: entry["error"] for key, entry in remote.load_state().items()
              if entry.get("error")}
    if args.json:
        json.dump({"windows": windows, "errors": errors}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not windows and not errors:
        print("No quota known yet: Claude Code's status line (tokline setup claude), Codex logs "
              "and `tokline auth login openrouter` provide it.")
        return 0
    for w in windows:
        pct = w.get("used_percent")
        used = f"{pct:.0f}% used" if isinstance(pct, (int, float)) else "—"
        extra = ""
        for key, label in (("remaining_usd", "left"), ("balance_usd", "balance")):
            if isinstance(w.get(key), (int, float)):
                extra += f", ${w[key]:,.2f} {label}"
        reset = f", resets {clock(w['resets_at'])}" if w.get("resets_at") else ""
        kind = " (estimate)" if w.get("kind") == "estimate" else ""
        stale = " (stale)" if w.get("stale") else ""
        print(f"{w['source']:<11} {w['window']:<12} {used}{extra}{reset}{kind}{stale}")
    for key, error in errors.items():
        print(f"{key.split(':')[0]:<11} error: {error}")
    return 0
