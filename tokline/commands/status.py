"""``tokline status``: one line (or one JSON object) for prompts, tmux, editors and bars.

The common call is answered by tokline/prompt/status.py from pre-rendered lines; this module
handles templates, presets, --json, --sync, the first call before any snapshot, and the
bars that wrap the line (waybar, swiftbar, sketchybar: tokline/prompt/desktop.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from tokline.accounting import totals
from tokline.errors import ToklineError
from tokline.prompt import desktop, statefiles
from tokline.prompt import template as render
from tokline.prompt.fields import KNOWN_FIELDS, as_of, field_values, read_json, rendered
from tokline.prompt.status import spawn_refresh
from tokline.snapshot.lines import zone_of


def load_snapshot(sync: bool) -> tuple[dict[str, Any], float]:
    """The snapshot and its age; computed now when asked or when there is none yet."""
    path = os.path.join(statefiles.state_dir(), statefiles.SNAPSHOT)
    snap = None if sync else read_json(path)
    if snap is None:
        snap = _computed()
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        age = 0.0
    return snap, age


def _computed() -> dict[str, Any]:
    """The snapshot computed now.  When the ledger cannot be written (or brought up to
    date), from what it holds, said on stderr; when the state files cannot be written,
    computed without them."""
    from tokline.accounting.pricing import price_book  # noqa: PLC0415
    from tokline.commands.common import (  # noqa: PLC0415
        could_not_refresh,
        open_ledger,
        refresh_ledger,
    )
    from tokline.config import load  # noqa: PLC0415
    from tokline.engine.refresh import print_problems  # noqa: PLC0415
    from tokline.errors import StorageError  # noqa: PLC0415
    from tokline.ledger.faults import guard  # noqa: PLC0415
    from tokline.ledger.store import Ledger  # noqa: PLC0415
    from tokline.prompt.uptodate import ledger_path  # noqa: PLC0415
    from tokline.snapshot.build import build  # noqa: PLC0415
    from tokline.snapshot.publish import publish  # noqa: PLC0415

    path = ledger_path()
    ledger = open_ledger(path, would_refresh=True)
    try:
        if not ledger.readonly:
            try:
                with guard(path):
                    print_problems(refresh_ledger(ledger, quiet=True))
            except StorageError as exc:
                could_not_refresh(exc)
                ledger.close()
                ledger = Ledger(path, readonly=True)
        try:
            with guard(path):
                return publish(ledger)
        except StorageError as exc:
            print(f"tokline: the status was not saved: {exc}", file=sys.stderr)
        if not ledger.readonly:
            ledger.close()
            ledger = Ledger(path, readonly=True)
        cfg = load()
        with guard(path):
            return build(ledger, cfg, price_book(cfg.price_overrides), os.environ)
    finally:
        ledger.close()


def only_sources(view: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The periods' totals counted over some sources only (each period keeps them apart)."""
    out = dict(view)
    for period in ("today", "week", "month"):
        entry = dict(view[period])
        parts = [t for s, t in (entry.get("sources") or {}).items() if s in names]
        for field in totals.FIELDS:
            values = [p[field] for p in parts]
            entry[field] = (any(values) if field == "unpriced" else
                            round(sum(float(v) for v in values), 6) if field == "cost_usd" else
                            sum(int(v) for v in values))
        entry["sources"] = {s: t for s, t in (entry.get("sources") or {}).items() if s in names}
        entry["models"] = {}  # models are not kept apart by source
        out[period] = entry
    out["quota"] = [w for w in view.get("quota") or [] if w.get("source") in names]
    if "claude" not in names:
        out["block"] = None
    return out


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline status")
    parser.add_argument("--format", "-f", help="a template, e.g. '{today.cost} {block.pct}'")
    parser.add_argument("--preset", choices=sorted(render.PRESETS), help="a named template")
    parser.add_argument("--target", "-t", default=None,
                        choices=[*render.TARGETS, "json"], help="escaping of the host")
    parser.add_argument("--json", action="store_true", help="everything, as one object")
    parser.add_argument("--sync", action="store_true", help="refresh first, then print")
    parser.add_argument("--fields", action="store_true", help="list the template fields")
    parser.add_argument("--source", metavar="NAMES",
                        help="only these assistants in today/week/month (e.g. codex)")
    args = parser.parse_args(argv)
    if args.fields:
        for field in sorted(KNOWN_FIELDS):
            print(field)
        print("quota.<source>.<window>[.reset|.pace|.runout|.ahead|.as_of|.left|.spent], "
              "quota.<source>.bind[…], source.<source>.<today|week|month>")
        return 0
    problem = statefiles.dir_problem(statefiles.state_dir())
    if problem is not None:  # its snapshot may be planted
        raise ToklineError(statefiles.refusal(statefiles.state_dir(), problem))
    template = args.format or args.preset
    if template is None:
        from tokline import paths  # noqa: PLC0415
        from tokline.config import load  # noqa: PLC0415

        if not os.environ.get("TOKLINE_CONFIG"):  # a planted template reaches the prompt
            paths.require_private(paths.config_dir())

        template = load().template
    try:
        parts = render.parse_template(template)
        render.check_fields(parts, KNOWN_FIELDS)
    except render.TemplateError as exc:
        raise ToklineError(f"template: {exc}") from None
    snap, age = load_snapshot(args.sync)
    now = int(time.time())  # whole seconds, the clock of every reader (statefiles)
    checked = statefiles.checked_at()
    shown_age = now - checked if checked is not None else age  # the note's age
    view = as_of(snap, now)
    zone = zone_of(snap)  # the zone the pre-rendered lines use, for reset and end times
    if args.source:
        view = only_sources(view, [s.strip() for s in args.source.split(",") if s.strip()])
    if not args.sync and age > float(snap.get("refresh_interval_s", 10)):
        try:
            mtime = os.stat(os.path.join(statefiles.state_dir(), statefiles.LINES)).st_mtime
        except OSError:
            mtime = 0.0
        spawn_refresh(statefiles.state_dir(), mtime)
    if args.json or args.target == "json":
        view["stale_seconds"] = round(float(shown_age), 1)
        view["fields"] = {k: (v[0] if v else None)
                          for k, v in field_values(view, zone, now).items()}
        view["rendered"] = rendered(view, parts, now, shown_age, zone)
        json.dump(view, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
        return 0
    target = args.target or ("ansi" if sys.stdout.isatty() else "plain")
    color = not os.environ.get("NO_COLOR")
    print(desktop.output(target, view, parts, now, shown_age, zone, color))
    return 0
