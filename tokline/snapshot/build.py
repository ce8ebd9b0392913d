"""The snapshot: everything the status surfaces show, computed after each refresh.

Two files in the state dir, each replaced atomically and private to the user:

* ``snapshot.json``: today, week, month and the current 5-hour block (cost, tokens,
  burn rate, projection), per-source totals, quota windows with their source and
  time, budgets.  Each period carries its end, so a reader never shows yesterday's
  spend as today's nor an ended block as current, even before the next refresh.
* ``status.lines``: the configured template pre-rendered for every target (shells and
  tmux print it without starting Python), in up to three variants that take over at
  the day's and the block's end.

The file's mtime is when the data was last known to be current: a refresh that finds
nothing changed only touches it.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Mapping

from tokline import remote
from tokline.accounting.localtime import Calendar, resolve_zone
from tokline.accounting.pricing import PriceBook
from tokline.config import PLAN_BLOCK_TOKENS, Config
from tokline.ledger.store import NO_CHANGE_MS, Ledger
from tokline.prompt import lightjson
from tokline.prompt import template as render
from tokline.prompt.fields import as_of, field_values, money, read_json
from tokline.prompt.statefiles import (
    LINES,
    LINES_MAGIC,
    SNAPSHOT,
    config_stamp,
    state_dir,
    write_private,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HOUR_MS = 3_600_000
RECENT_MS = 60_000  # with nothing changed, rows this recent are summed again next time
CLAUDE_STATE = "claude-status.json"  # written by tokline statusline
CODEX_LIMITS = "codex_rate_limits"  # ledger meta, kept by the Codex source
Totals = tuple[int, int, int, int, int, float, int, int]


# --- computing ------------------------------------------------------------------------

def _period(totals: Mapping[str, Totals], label: str, start_ms: int, end_ms: int
            ) -> dict[str, Any]:
    def one(t: Totals) -> dict[str, Any]:
        inp, out, cw, cr, _web, cost, unpriced, requests = t
        return {"input_tokens": inp or 0, "output_tokens": out or 0,
                "cache_creation_tokens": cw or 0, "cache_read_tokens": cr or 0,
                "total_tokens": (inp or 0) + (out or 0) + (cw or 0) + (cr or 0),
                "cost_usd": round(cost or 0.0, 6), "unpriced": bool(unpriced),
                "requests": requests or 0}

    def grouped(part: int) -> dict[str, dict[str, Any]]:
        """Totals per source (part 0) or per model (part 1) of ``source<US>model`` keys."""
        groups: dict[str, Totals] = {}
        for key, t in totals.items():
            name = ([*key.split("\x1f"), "unknown"])[part]
            groups[name] = _add(groups[name], t) if name in groups else t
        return {name: one(t) for name, t in sorted(groups.items())}

    zero: Totals = (0, 0, 0, 0, 0, 0.0, 0, 0)
    summed = [sum(t[i] or 0 for t in totals.values()) for i in range(8)]
    whole = one(tuple(summed) if totals else zero)  # type: ignore[arg-type]
    models = {name: entry for name, entry in grouped(1).items() if name != "<synthetic>"}
    return {"period": label, "start": start_ms // 1000, "end": end_ms // 1000, **whole,
            "sources": grouped(0), "models": models}


def _add(a: Totals, b: Totals) -> Totals:
    return tuple((x or 0) + (y or 0) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _plus(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Totals]:
    """Keyed totals added key by key, field by field."""
    zero: Totals = (0, 0, 0, 0, 0, 0.0, 0, 0)
    return {key: _add(a.get(key) or zero, b.get(key) or zero) for key in set(a) | set(b)}


Bounds = tuple[int, int, int]  # a block's start, first and last activity (ms)


NO_BLOCK: Bounds = (-1, -1, -1)


def _block_walk(stamps: list[int], hours: int, before: Bounds = NO_BLOCK, mark: int = 0
                ) -> tuple[Bounds | None, Bounds]:
    """(start, first, last) of the last ccusage block over sorted timestamps, which
    continue the walk's state ``before``; and the state the walk was in before the first
    timestamp at or after ``mark``, to go on from there later (NO_BLOCK: none yet)."""
    length = hours * HOUR_MS
    start, first, last = before
    at_mark: Bounds | None = None
    for ts in stamps:
        if at_mark is None and ts >= mark:
            at_mark = (start, first, last)
        if start < 0 or ts - start > length or ts - last > length:
            start, first = ts - ts % HOUR_MS, ts
        last = ts
    return (None if start < 0 else (start, first, last)), at_mark or (start, first, last)


def current_block(ledger: Ledger, now_ms: int, hours: int) -> tuple[int, int, int] | None:
    """The newest block."""
    return _current_block(ledger, now_ms, hours, 0)[0]


def _current_block(ledger: Ledger, now_ms: int, hours: int, mark: int
                   ) -> tuple[Bounds | None, Bounds]:
    """The newest block and the walk's state at ``mark`` (see _block_walk).  A gap
    longer than a block starts a new one whatever came before, so history is read back
    only to the last such gap (a state of NO_BLOCK before it leads to the same block)."""
    length = hours * HOUR_MS
    since = now_ms - 48 * HOUR_MS
    while True:
        stamps = ledger.timestamps(since)
        for i in range(len(stamps) - 1, 0, -1):
            if stamps[i] - stamps[i - 1] > length:
                return _block_walk(stamps[i:], hours, NO_BLOCK, mark)
        before = ledger.last_before(stamps[0] if stamps else since)
        if before is None or (stamps and stamps[0] - before > length):
            return _block_walk(stamps, hours, NO_BLOCK, mark)
        since = min(since, before) - 48 * HOUR_MS


def _p90_block_tokens(ledger: Ledger, now_ms: int, hours: int) -> int:
    """Plan ``custom``: the 90th percentile of input+output tokens of finished blocks in
    the last 30 days (formats.md §7.2), at least the pro limit."""
    rows = ledger.db.execute(
        "SELECT u.ts_ms, u.input + u.output FROM usage u JOIN contexts c ON c.id = u.ctx"
        " WHERE u.ts_ms >= ? AND c.source = 'claude' AND (u.flags & 32) = 0 ORDER BY u.ts_ms",
        (now_ms - 30 * 86_400_000,)).fetchall()
    length = hours * HOUR_MS
    starts: list[int] = []
    totals: list[int] = []
    last = -1
    for ts, used in rows:
        if not starts or ts - starts[-1] > length or ts - last > length:
            starts.append(ts - ts % HOUR_MS)
            totals.append(0)
        totals[-1] += used
        last = ts
    finished = sorted(t for s, t in zip(starts, totals, strict=True)
                      if s + length <= now_ms and t > 0)
    if not finished:
        return PLAN_BLOCK_TOKENS["pro"]
    return max(finished[min(len(finished) - 1, int(0.9 * len(finished)))],
               PLAN_BLOCK_TOKENS["pro"])


def _split_sums(ledger: Ledger, kept: Any, oldest_change: int | None, span: tuple[int, int],
                boundary: int, cost_mode: str, source: str | None = None
                ) -> tuple[dict[str, Totals], dict[str, Any]]:
    """Sums over ``span``, and what to keep of them: the part before ``boundary`` (held
    within the span).  That part is ``kept`` (the last snapshot's part) plus the rows from
    its boundary to this one, when ``kept`` is of this span and no row before its boundary
    changed since (``oldest_change``); otherwise it is summed whole."""
    start, end = span
    boundary = min(max(start, boundary), end)
    if (isinstance(kept, dict) and kept.get("span") == [start, end, source]
            and isinstance(kept.get("until"), int) and start <= kept["until"] <= boundary
            and (oldest_change is None or oldest_change >= kept["until"])):
        before = _plus(kept["sums"], ledger.sums(kept["until"], boundary, cost_mode, source))
    else:
        before = ledger.sums(start, boundary, cost_mode, source)
    whole = _plus(before, ledger.sums(boundary, end, cost_mode, source))
    return whole, {"span": [start, end, source], "until": boundary, "sums": before}


def _block(ledger: Ledger, cfg: Config, now_ms: int, bounds: Bounds | None,
           totals: Mapping[str, Totals] | None) -> dict[str, Any] | None:
    if bounds is None or totals is None:
        return None
    start, first, last = bounds
    end = start + cfg.block_hours * HOUR_MS
    block = _period(totals, "block", start, end)
    active = now_ms - last < cfg.block_hours * HOUR_MS and now_ms < end
    minutes = (last - first) / 60_000
    block.update(active=active, first_activity=first // 1000, last_activity=last // 1000,
                 burn_rate_usd_per_hour=None, tokens_per_minute=None,
                 projected_cost_usd=None, projected_tokens=None)
    if active and minutes > 0:
        remaining = max(0.0, (end - now_ms) / 60_000)
        tpm = block["total_tokens"] / minutes
        usd_h = block["cost_usd"] / minutes * 60
        block.update(burn_rate_usd_per_hour=round(usd_h, 4), tokens_per_minute=round(tpm, 1),
                     projected_cost_usd=round(block["cost_usd"] + usd_h / 60 * remaining, 4),
                     projected_tokens=round(block["total_tokens"] + tpm * remaining))
    limit = cfg.block_tokens
    if limit is None and cfg.plan:
        limit = (_p90_block_tokens(ledger, now_ms, cfg.block_hours) if cfg.plan == "custom"
                 else PLAN_BLOCK_TOKENS[cfg.plan])
    if limit:
        used = block["input_tokens"] + block["output_tokens"]
        block.update(limit_tokens=limit, used_percent=round(100 * used / limit, 1))
    return block


def quota_windows(claude_state: Mapping[str, Any] | None, block: Mapping[str, Any] | None,
                  now_s: float, codex_limits: Mapping[str, Any] | None = None
                  ) -> list[dict[str, Any]]:
    """Official windows from Claude Code's status-line stdin and from Codex's rollouts; an
    estimate from the plan's block limit when Claude has no official 5-hour figure."""
    windows: list[dict[str, Any]] = []
    for entry in (codex_limits or {}).get("windows", []):
        windows.append({"source": "codex", "window": entry["window"],
                        "used_percent": float(entry["used_percent"]),
                        "resets_at": entry.get("resets_at"), "kind": "official",
                        "as_of": round(int(codex_limits["ts"]) / 1000)})  # type: ignore[index]
    limits = (claude_state or {}).get("rate_limits")
    as_of = (claude_state or {}).get("as_of")
    if isinstance(limits, Mapping):
        names = {"five_hour": "5h", "seven_day": "7d", "seven_day_opus": "7d_opus",
                 "seven_day_sonnet": "7d_sonnet", "spend_limit": "spend"}
        for key, window in names.items():
            entry = limits.get(key)
            if not isinstance(entry, Mapping):
                continue
            used = entry.get("used_percentage")
            resets = entry.get("resets_at")
            if not isinstance(used, (int, float)) or isinstance(used, bool):
                continue
            windows.append({"source": "claude", "window": window, "used_percent": float(used),
                            "resets_at": resets if isinstance(resets, (int, float)) else None,
                            "kind": "official", "as_of": as_of})
    if block is not None and block.get("active") and "used_percent" in block \
            and not any(w["source"] == "claude" and w["window"] == "5h" for w in windows):
        windows.append({"source": "claude", "window": "5h", "used_percent": block["used_percent"],
                        "resets_at": block["end"], "kind": "estimate", "as_of": now_s})
    return windows


def _budget(cfg: Config, today: Mapping[str, Any], week: Mapping[str, Any],
            month: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, limit, period in (("daily", cfg.budget_daily_usd, today),
                                ("weekly", cfg.budget_weekly_usd, week),
                                ("monthly", cfg.budget_monthly_usd, month)):
        if limit:
            spent = float(period["cost_usd"])
            out[name] = {"limit_usd": limit, "spent_usd": round(spent, 4),
                         "left_usd": round(max(0.0, limit - spent), 4),
                         "used_percent": round(100 * spent / limit, 1),
                         "period": period["period"], "end": period["end"]}
    return out


def build(ledger: Ledger, cfg: Config, book: PriceBook, env: Mapping[str, str] = os.environ,
          now_s: float | None = None) -> dict[str, Any]:
    now_s = time.time() if now_s is None else now_s
    now_ms = int(now_s * 1000)
    cal = Calendar(resolve_zone(cfg.timezone), cfg.week_start)
    today = cal.date(now_ms)
    day = (cal.start_ms(today), cal.start_ms(today + dt.timedelta(days=1)))
    monday = cal.week_start_date(today)
    week = (cal.start_ms(monday), cal.start_ms(monday + dt.timedelta(days=7)))
    first = today.replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    month = (cal.start_ms(first), cal.start_ms(nxt))

    fingerprint = book.fingerprint()
    previous = read_json(os.path.join(state_dir(env), SNAPSHOT)) or {}
    partials = previous.get("partials") or {}
    seen = partials.get("seq")
    kept = partials.get("block")
    with ledger.write():
        ledger.note_change(NO_CHANGE_MS)  # pricing below changes rows under this number
        repriced = ledger.use_prices(fingerprint)
        priced_since = ledger.price_pending(min(week[0], month[0], now_ms - 96 * HOUR_MS),
                                            book.cost_of)
        # Numbered inside the transaction: a refresh committing after it gets a later one.
        seq, changed_since = ledger.changes_since(seen if isinstance(seen, int) else None)
    oldest_change = min((t for t in (priced_since, changed_since) if t is not None),
                        default=None)
    # Week and month are the days before today (kept from the last snapshot while no
    # row before today changed) plus today: a refresh re-sums today's rows only.
    # Part of the key: the layout of these sums (per source and model since version 2).
    key = f"2:{day[0]}:{week[0]}:{month[0]}:{fingerprint}:{cfg.cost_mode}"
    # Sums kept from the last snapshot hold while no row they cover changed since.
    carried = changed_since != 0 and not repriced and partials.get("key") == key
    if not carried or (oldest_change is not None and oldest_change < day[0]):
        partials = {"key": key,
                    "week": ledger.sums(week[0], max(week[0], day[0]), cfg.cost_mode),
                    "month": ledger.sums(month[0], max(month[0], day[0]), cfg.cost_mode)}
    # Today and the block: rows before the oldest one changed since the last snapshot are
    # carried over, later ones summed again.  The next refresh's lines, a stream going on
    # included, land at or after that one; with no change, the last minute is left open.
    settled = oldest_change if oldest_change is not None and oldest_change < NO_CHANGE_MS \
        else now_ms - RECENT_MS
    today_sums, partials["today_before"] = _split_sums(
        ledger, partials.get("today_before") if carried else None, oldest_change, day,
        settled, cfg.cost_mode)
    partials["seq"] = seq
    snap: dict[str, Any] = {
        "version": 1,
        "generated_at": round(now_s, 3),
        "timezone": str(cal.zone),
        "today": _period(today_sums, today.isoformat(), *day),
        "week": _period(_plus(partials["week"], today_sums), cal.week(now_ms), *week),
        "month": _period(_plus(partials["month"], today_sums), today.isoformat()[:7], *month),
        "partials": partials,
    }
    # The block goes on from where the last snapshot's walk over the timestamps was:
    # just after its last activity when no row at or before that changed since (a row
    # moved off it could end the block earlier), else at its mark (that snapshot's oldest
    # change) when none before that did.  Only the rows from there on are read again.
    resume: tuple[int, Bounds] | None = None
    if changed_since != 0 and isinstance(kept, list) and len(kept) == 8 \
            and kept[3] == cfg.block_hours:
        if oldest_change is None or oldest_change > kept[2]:
            resume = (kept[2] + 1, (kept[0], kept[1], kept[2]))
        elif oldest_change >= kept[4]:
            resume = (kept[4], (kept[5], kept[6], kept[7]))
    if resume is not None:
        mark = max(settled, resume[0])
        bounds, at_mark = _block_walk(ledger.timestamps(resume[0]), cfg.block_hours,
                                      resume[1], mark)
    else:
        mark = settled
        bounds, at_mark = _current_block(ledger, now_ms, cfg.block_hours, mark)
    partials["block"] = [*bounds, cfg.block_hours, mark, *at_mark] if bounds else None
    block_sums = None
    if bounds is not None:
        span = (bounds[0], bounds[0] + cfg.block_hours * HOUR_MS)
        block_sums, partials["block_before"] = _split_sums(
            ledger, partials.get("block_before") if carried else None, oldest_change, span,
            settled, cfg.cost_mode, "claude")
    snap["block"] = _block(ledger, cfg, now_ms, bounds, block_sums)
    claude_state = read_json(os.path.join(state_dir(env), CLAUDE_STATE))
    snap["session"] = None
    if claude_state and isinstance(claude_state.get("session_cost_usd"), (int, float)):
        snap["session"] = {"id": claude_state.get("session_id"),
                           "cost_usd": claude_state["session_cost_usd"],
                           "model": claude_state.get("model"), "as_of": claude_state.get("as_of")}
    codex_text = ledger.get_meta(CODEX_LIMITS)
    snap["quota"] = quota_windows(claude_state, snap["block"], now_s,
                                  lightjson.loads(codex_text) if codex_text else None)
    snap["quota"] = remote.merge(snap["quota"], remote.windows(now_s))
    snap["budget"] = _budget(cfg, snap["today"], snap["week"], snap["month"])
    snap["thresholds"] = {"warn": cfg.warn_percent, "critical": cfg.critical_percent}
    snap["refresh_interval_s"] = cfg.refresh_interval_s
    snap["stale_after_s"] = cfg.stale_after_s
    return snap


def boundaries(snap: Mapping[str, Any]) -> list[float]:
    """Times at which the rendered line changes without new data: the day's and the
    active block's end (and any later ones among week, month, quota resets are rarer and
    wait for the refresh that a stale status starts)."""
    marks = [float(snap["today"]["end"])]
    block = snap.get("block") or {}
    if block.get("active"):
        marks.append(float(block["end"]))
    return sorted(set(marks))[:2]


def render_lines(snap: Mapping[str, Any], template: str
                 ) -> tuple[list[float], dict[str, list[str]]]:
    """The moments the line changes at (day end, block end) and, per target and per target
    without colour (``<target>-nc``), the line from now and from each of those moments."""
    parts = render.parse_template(template)
    zone = _zone_of(snap)
    marks = boundaries(snap)
    values = [field_values(as_of(snap, moment), zone, moment, left_placeholder=True)
              for moment in (float(snap["generated_at"]), *marks)]
    lines: dict[str, list[str]] = {}
    for target in render.TARGETS:
        lines[target] = [render.render(parts, fields, target, True) for fields in values]
    for target in render.TARGETS:
        lines[f"{target}-nc"] = [render.render(parts, fields, target, False)
                                 for fields in values]
    return marks, lines


def _zone_of(snap: Mapping[str, Any]) -> dt.tzinfo | None:
    try:
        return resolve_zone(snap.get("timezone") or None)
    except (KeyError, ValueError):
        return None


def write(snap: Mapping[str, Any], cfg: Config, env: Mapping[str, str] = os.environ) -> None:
    directory = state_dir(env)
    marks, lines = render_lines(snap, cfg.template)
    block = snap.get("block") or {}
    block_end = f"{block['end']:.0f}" if block.get("active") else "-"
    head = " ".join([LINES_MAGIC, f"{cfg.refresh_interval_s:g}", f"{cfg.stale_after_s:g}",
                     config_stamp(env), block_end, f"{time.time():.0f}",
                     *(f"{m:.0f}" for m in marks)])
    body = "".join(f"{target}\t" + "\t".join(variants) + "\n"
                   for target, variants in lines.items())
    write_private(os.path.join(directory, SNAPSHOT),
                  lightjson.dumps(snap).encode())
    write_private(os.path.join(directory, LINES), (head + "\n" + body).encode())


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


def publish(ledger: Ledger, env: Mapping[str, str] = os.environ, cfg: Config | None = None,
            book: PriceBook | None = None) -> dict[str, Any]:
    """Compute and write the snapshot with the user's config and prices (loaded unless
    given); notify budgets."""
    if cfg is None:
        from tokline.config import load  # noqa: PLC0415 - slow path only

        cfg = load()
    if book is None:
        from tokline.accounting.pricing import price_book  # noqa: PLC0415

        book = price_book(cfg.price_overrides)
    snap = build(ledger, cfg, book, env)
    write(snap, cfg, env)
    notify_budgets(snap, cfg, env)
    return snap
