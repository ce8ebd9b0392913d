"""The snapshot: everything the status surfaces show, computed after each refresh.

Two files in the state dir, each replaced atomically and private to the user (written
by tokline/snapshot/lines.py; tokline/snapshot/publish.py runs the whole step):

* ``snapshot.json``: today, week, month and the current 5-hour block (cost, tokens,
  burn rate, projection), per-source totals, quota windows with their source and
  time (and the last hour's readings of each, for its run-out), budgets.  Each period
  carries its end, so a reader never shows yesterday's spend as today's nor an ended
  block as current, even before the next refresh.
* ``status.lines``: the configured template pre-rendered for every target (shells and
  tmux print it without starting Python), in variants that take over at the day's and
  the block's end and at quota changes (tokline/snapshot/lines.py).

The file's mtime is when the data was last known to be current: a refresh that finds
nothing changed only touches it.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Mapping

from tokline import remote
from tokline.accounting import blocks
from tokline.accounting.blocks import Bounds
from tokline.accounting.localtime import Calendar, resolve_zone
from tokline.accounting.pricing import PriceBook
from tokline.accounting.totals import Sums, add_sums, plus, sums_json, total_sums
from tokline.config import PLAN_BLOCK_TOKENS, Config
from tokline.engine.records import SYNTHETIC
from tokline.ledger.schema import NO_CHANGE_MS
from tokline.ledger.store import Ledger
from tokline.prompt import lightjson, quotaview
from tokline.prompt.fields import read_json
from tokline.prompt.statefiles import (
    SNAPSHOT,
    state_dir,
)
from tokline.snapshot import quota
from tokline.units import HOUR_MS, MINUTE_MS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

RECENT_MS = MINUTE_MS  # with nothing changed, rows this recent are summed again next time
CLAUDE_STATE = "claude-status.json"  # written by tokline statusline
CODEX_LIMITS = "codex_rate_limits"  # ledger meta, kept by the Codex source


# --- computing ------------------------------------------------------------------------

def _period(sums: Mapping[str, Sums], label: str, start_ms: int, end_ms: int
            ) -> dict[str, Any]:
    def grouped(part: int) -> dict[str, dict[str, Any]]:
        """Totals per source (part 0) or per model (part 1) of ``source<US>model`` keys."""
        groups: dict[str, Sums] = {}
        for key, t in sums.items():
            name = ([*key.split("\x1f"), "unknown"])[part]
            groups[name] = add_sums(groups[name], t) if name in groups else t
        return {name: sums_json(t) for name, t in sorted(groups.items())}

    models = grouped(1)
    # requests count Claude Code's synthetic messages; no model answered them, so they
    # are not listed as one but counted apart (the models' requests + these = requests)
    synthetic = models.pop(SYNTHETIC, None)
    return {"period": label, "start": start_ms // 1000, "end": end_ms // 1000,
            **sums_json(total_sums(sums)),
            "synthetic_requests": synthetic["requests"] if synthetic else 0,
            "sources": grouped(0), "models": models}


def _split_sums(ledger: Ledger, kept: Any, oldest_change: int | None, span: tuple[int, int],
                boundary: int, cost_mode: str, source: str | None = None
                ) -> tuple[dict[str, Sums], dict[str, Any]]:
    """Sums over ``span``, and what to keep of them: the part before ``boundary`` (held
    within the span).  That part is ``kept`` (the last snapshot's part) plus the rows from
    its boundary to this one, when ``kept`` is of this span and no row before its boundary
    changed since (``oldest_change``); otherwise it is summed whole."""
    start, end = span
    boundary = min(max(start, boundary), end)
    if (isinstance(kept, dict) and kept.get("span") == [start, end, source]
            and isinstance(kept.get("until"), int) and start <= kept["until"] <= boundary
            and (oldest_change is None or oldest_change >= kept["until"])):
        before = plus(kept["sums"], ledger.sums(kept["until"], boundary, cost_mode, source))
    else:
        before = ledger.sums(start, boundary, cost_mode, source)
    whole = plus(before, ledger.sums(boundary, end, cost_mode, source))
    return whole, {"span": [start, end, source], "until": boundary, "sums": before}


def _block(ledger: Ledger, cfg: Config, now_ms: int, bounds: Bounds | None,
           totals: Mapping[str, Sums] | None) -> dict[str, Any] | None:
    if bounds is None or totals is None:
        return None
    start, first, last = bounds
    end = blocks.block_end(start, cfg.block_hours)
    block = _period(totals, "block", start, end)
    active = blocks.is_active(last, end, now_ms, cfg.block_hours)
    block.update(active=active, first_activity=first // 1000, last_activity=last // 1000,
                 burn_rate_usd_per_hour=None, tokens_per_minute=None,
                 projected_cost_usd=None, projected_tokens=None)
    rate = blocks.burn(first, last, end, now_ms, block["total_tokens"], block["cost_usd"]) \
        if active else None
    if rate is not None:
        block.update(burn_rate_usd_per_hour=round(rate["usd_per_hour"], 4),
                     tokens_per_minute=round(rate["tokens_per_minute"], 1),
                     projected_cost_usd=round(rate["projected_cost_usd"], 4),
                     projected_tokens=round(rate["projected_tokens"]))
    limit = cfg.block_tokens
    if limit is None and cfg.plan:
        limit = (blocks.p90_block_tokens(ledger, now_ms, cfg.block_hours)
                 if cfg.plan == "custom" else PLAN_BLOCK_TOKENS[cfg.plan])
    if limit:
        used = block["input_tokens"] + block["output_tokens"]
        block.update(limit_tokens=limit, used_percent=round(100 * used / limit, 1))
    return block


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


def own_windows(ledger: Ledger, claude_state: Mapping[str, Any] | None,
                block: Mapping[str, Any] | None, now_s: float) -> list[dict[str, Any]]:
    """The quota windows this device observed itself (Claude Code's status line, Codex's
    rollouts, the remote APIs it asked), the fresher of each; what sync sends along."""
    codex_text = ledger.get_meta(CODEX_LIMITS)
    local = quota.windows(claude_state, block, now_s,
                          lightjson.loads(codex_text) if codex_text else None)
    return remote.merge(local, remote.windows(now_s))


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
    # [sync] scope = "local": every sum below counts this device's rows alone
    from tokline.sync.device import local_id  # noqa: PLC0415 - reads one small file

    here = local_id(ledger.path)
    ledger.scope = (here,) if cfg.sync_scope == "local" else None
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
    key = f"2:{day[0]}:{week[0]}:{month[0]}:{fingerprint}:{cfg.cost_mode}:{cfg.sync_scope}"
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
        "week": _period(plus(partials["week"], today_sums), cal.week(now_ms), *week),
        "month": _period(plus(partials["month"], today_sums), today.isoformat()[:7], *month),
        "partials": partials,
    }
    # This device's own today ({device.local.today}) once rows of others are here too
    if ledger.scope is None and len(ledger.device_names()) > 1:
        ledger.scope = (here,)
        snap["local"] = {"today": _period(ledger.sums(day[0], day[1], cfg.cost_mode),
                                          today.isoformat(), *day)}
        ledger.scope = None
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
        bounds, at_mark = blocks.walk(ledger.timestamps(resume[0]), cfg.block_hours,
                                      resume[1], mark)
    else:
        mark = settled
        bounds, at_mark = blocks.current_walk(ledger, now_ms, cfg.block_hours, mark)
    partials["block"] = [*bounds, cfg.block_hours, mark, *at_mark] if bounds else None
    block_sums = None
    if bounds is not None:
        span = (bounds[0], blocks.block_end(bounds[0], cfg.block_hours))
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
    snap["quota"] = own_windows(ledger, claude_state, snap["block"], now_s)
    from_devices = quota.synced(read_json(os.path.join(state_dir(env), quota.SYNC_QUOTA)),
                                ledger.device_names(hexadecimal=True))
    snap["quota"] = remote.merge(snap["quota"], from_devices)
    # the last hour's readings of each window, for its recent rate (run-out)
    snap["quota_readings"] = quotaview.remember(previous.get("quota_readings"), snap["quota"])
    snap["budget"] = _budget(cfg, snap["today"], snap["week"], snap["month"])
    snap["thresholds"] = {"warn": cfg.warn_percent, "critical": cfg.critical_percent}
    snap["refresh_interval_s"] = cfg.refresh_interval_s
    snap["stale_after_s"] = cfg.stale_after_s
    return snap


