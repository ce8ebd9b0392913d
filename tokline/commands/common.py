"""Pieces the slow commands share: config, ledger, refresh, prices, dates."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from tokline import config as config_mod
from tokline import paths, sources
from tokline.accounting import pricing
from tokline.accounting.costmode import Coster
from tokline.accounting.localtime import Calendar, resolve_zone
from tokline.accounting.pricing import PriceBook
from tokline.engine.refresh import RefreshReport, print_problems, refresh
from tokline.errors import StorageError, ToklineError
from tokline.ledger.faults import guard
from tokline.ledger.store import Ledger
from tokline.prompt.safetext import clean


@dataclass
class Context:
    config: config_mod.Config
    ledger: Ledger
    calendar: Calendar
    coster: Coster


def price_book(cfg: config_mod.Config) -> PriceBook:
    return pricing.price_book(cfg.price_overrides)


def parse_day(text: str, option: str) -> dt.date:
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ToklineError(f"{option} {text!r}: expected a date like 2026-11-23")


def day_window(ctx: Context, since: str | None, until: str | None
               ) -> tuple[int | None, int | None]:
    """``--since``/``--until`` local days as UTC ms [start, end); None where not given."""
    since_ms = ctx.calendar.start_ms(parse_day(since, "--since")) if since else None
    until_ms = None
    if until:
        until_ms = ctx.calendar.start_ms(parse_day(until, "--until") + dt.timedelta(days=1))
    return since_ms, until_ms


def parse_sources(text: str | None) -> list[str] | None:
    """``--source claude,codex`` as a list (None: every source); an unknown name is an
    error that lists the known ones."""
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in sources.NAMES]
    if unknown:
        raise ToklineError(f"--source {','.join(unknown)}: unknown (sources: "
                           f"{', '.join(sources.NAMES)})")
    return names


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="DATE", help="first local day to include")
    parser.add_argument("--until", metavar="DATE", help="last local day to include")
    parser.add_argument("--tz", metavar="ZONE", help="IANA time zone (default: config, system)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--source", metavar="NAMES",
                        help="only these assistants, e.g. claude,codex (default: all)")
    parser.add_argument("--device", metavar="NAME", action="append",
                        help="only this device's usage (repeatable; `tokline devices` lists "
                             "them; default: every device synced)")
    parser.add_argument("--offline", action="store_true",
                        help="report from the ledger as it is, without scanning logs first")


def device_names(ctx: Context) -> dict[int, str]:
    """Every device's id -> name: the ones sync met, and this one (named by ``[sync]
    device`` or the host name even before its first sync)."""
    from tokline.sync.device import default_name, local_id  # noqa: PLC0415

    names: dict[int, str] = ctx.ledger.device_names()
    names[local_id(ctx.ledger.path)] = ctx.config.sync_device or names.get(
        local_id(ctx.ledger.path)) or default_name()
    return names


def device_labels(names: dict[int, str]) -> dict[int, str]:
    """Names that tell devices apart: a name two devices share gets its id's first digits."""
    seen: dict[str, int] = {}
    for name in names.values():
        seen[name] = seen.get(name, 0) + 1
    return {i: name if seen[name] == 1 else f"{name} ({f'{i:016x}'[:8]})"
            for i, name in names.items()}


def parse_devices(ctx: Context, given: list[str] | None) -> list[int] | None:
    """``--device NAME`` (repeatable; a name or a 16-hex-digit id) as device ids (None:
    every device); an unknown one is an error that lists the known ones."""
    if not given:
        return None
    names = device_names(ctx)
    chosen: list[int] = []
    for wanted in given:
        found = [i for i, name in names.items() if name == wanted or f"{i:016x}" == wanted]
        if not found:
            known = ", ".join(sorted(set(names.values())))
            raise ToklineError(f"--device {clean(wanted, 80)}: unknown (devices: {known})")
        chosen.extend(found)
    return chosen


def open_context(tz: str | None = None, do_refresh: bool = True, quiet: bool = False,
                 quick: bool = False) -> Context:
    """Config, ledger and calendar; the ledger brought up to date first unless
    ``do_refresh`` is off.  ``quick``: when the manifest shows no log changed (one stat
    per file, as ``tokline scan`` checks) and the status is current, skip the refresh."""
    if do_refresh and quick:
        from tokline.prompt import statefiles  # noqa: PLC0415
        from tokline.prompt.uptodate import up_to_date  # noqa: PLC0415

        do_refresh = not (up_to_date(full=True) and statefiles.touch())
    cfg = config_mod.load()
    zone_name = tz if tz is not None else cfg.timezone
    try:
        zone = resolve_zone(zone_name)
    except (KeyError, ValueError):
        raise ToklineError(f"unknown time zone {zone_name!r}") from None
    ledger = open_ledger(str(paths.ledger_file()), do_refresh)
    if do_refresh and not ledger.readonly:
        try:
            with guard(ledger.path):
                report = refresh_ledger(ledger, quiet=quiet)
                print_problems(report)
                from tokline.snapshot.publish import publish  # noqa: PLC0415

                publish(ledger)
        except StorageError as exc:  # the ledger is sound: report what it holds
            could_not_refresh(exc)
    return Context(cfg, ledger, Calendar(zone, cfg.week_start), Coster(price_book(cfg),
                                                                        cfg.cost_mode))


def could_not_refresh(exc: StorageError) -> None:
    print(f"tokline: could not refresh the ledger, reporting what it holds: {exc}",
          file=sys.stderr)


def open_ledger(path: str, would_refresh: bool = False) -> Ledger:
    """The ledger for a command that can report from it as it is: opened read-only when
    it cannot be opened for writing (a read-only directory or file, a full disk, a lock
    held too long); ``would_refresh`` says so on stderr.  A corrupt ledger, or none at all
    where none can be made, is the first error."""
    try:
        return Ledger(path)
    except StorageError as exc:
        try:
            ledger = Ledger(path, readonly=True)
        except ToklineError:
            raise exc from None
        if would_refresh:
            could_not_refresh(exc)
        return ledger


def refresh_ledger(ledger: Ledger, quiet: bool = False,
                   carry: Callable[[Ledger], object] | None = None) -> RefreshReport:
    show = not quiet and sys.stderr.isatty()
    drawn = False

    def progress(done: int, total: int) -> None:
        nonlocal drawn
        if total >= 64 << 20:
            pct = 100 * done // max(total, 1)
            sys.stderr.write(f"\rtokline: scanning logs {pct:3d}%  {done >> 20}/{total >> 20} MiB")
            sys.stderr.flush()
            drawn = True

    report = refresh(ledger, dict(os.environ), progress if show else None,
                     prices=price_book(config_mod.load()), carry=carry)
    if drawn:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
    return report


def write_file(path: str, text: str) -> None:
    """Write an output file the user named; a failure is one line naming it."""
    try:
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except OSError as exc:
        raise ToklineError(f"cannot write {path}: {exc.strerror or exc}") from None


def money(cost: float, unpriced: bool) -> str:
    return f"${cost:,.2f}" + ("+?" if unpriced else "")
