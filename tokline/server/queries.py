"""What the pages and the JSON API show, read from ``daily`` with each person's visibility.

Visibility: ``public`` — anyone, signed in or not; ``team`` — anyone signed in to this
server; ``private`` — the person alone.  A person someone may not see is, to them, not
there at all (404, absent from every list), so no row of theirs is ever read for them.
Days are UTC days; weeks start on Monday.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from tokline.server.accounts import User, valid_name
from tokline.server.db import daily, devices, monthly, totals, usage, users
from tokline.units import DAY_MS

PERIODS = ("day", "week", "month", "all")
METRICS = ("cost", "tokens")
TOKENS = daily.c.input + daily.c.output + daily.c.cache_5m + daily.c.cache_1h + daily.c.cache_read


def visible(viewer: User | None) -> ColumnElement[bool]:
    """The users ``viewer`` may see (None: someone not signed in)."""
    if viewer is None:
        return users.c.visibility == "public"
    return or_(users.c.visibility.in_(("team", "public")), users.c.id == viewer.id)


def today(now: dt.datetime | None = None) -> int:
    moment = now or dt.datetime.now(dt.timezone.utc)
    return int(moment.timestamp() * 1000) // DAY_MS


def first_day(period: str, day: int) -> int | None:
    date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    if period == "day":
        return day
    if period == "week":
        return day - date.weekday()
    if period == "month":
        return day - (date.day - 1)
    return None


def _tokens(table: Any) -> Any:
    return (table.c.input + table.c.output + table.c.cache_5m + table.c.cache_1h
            + table.c.cache_read)


def leaderboard(conn: Connection, viewer: User | None, period: str = "week",
                metric: str = "cost", model: str | None = None, limit: int = 100,
                now_day: int | None = None) -> dict[str, Any]:
    if period not in PERIODS or metric not in METRICS:
        raise ValueError(f"period is one of {', '.join(PERIODS)}; metric cost or tokens")
    day = today() if now_day is None else now_day
    start = first_day(period, day)
    # This month and all time from the rollups (a few thousand rows, not every day of
    # everyone; they also count a row a skewed clock dated tomorrow); a day, a week, or
    # any period seen from another day, from ``daily``.
    where: list[ColumnElement[bool]]
    if period == "all" and now_day is None:
        table, where = totals, []
    elif period == "month" and now_day is None:
        table, where = monthly, [monthly.c.month == start]
    else:
        table, where = daily, [daily.c.day <= day]
        if start is not None:
            where.append(daily.c.day >= start)
    if model:
        where.append(table.c.model == model)
    sums = (select(table.c.user_id, func.sum(table.c.cost_usd).label("cost"),
                   func.sum(_tokens(table)).label("tokens"),
                   func.sum(table.c.requests).label("requests"),
                   func.sum(table.c.unpriced).label("unpriced"))
            .where(*where).group_by(table.c.user_id).subquery())
    order = sums.c.cost if metric == "cost" else sums.c.tokens
    rows = conn.execute(
        select(users.c.name, sums.c.cost, sums.c.tokens, sums.c.requests, sums.c.unpriced)
        .select_from(sums.join(users, users.c.id == sums.c.user_id))
        .where(visible(viewer)).order_by(order.desc(), users.c.name).limit(limit)).all()
    return {"period": period, "metric": metric, "model": model,
            "since": _iso_day(start) if start is not None else None, "until": _iso_day(day),
            "rows": [{"rank": i, "user": r.name, "cost_usd": round(float(r.cost), 6),
                      "total_tokens": int(r.tokens), "requests": int(r.requests),
                      "unpriced": bool(r.unpriced)} for i, r in enumerate(rows, start=1)]}


def _iso_day(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def find_user(conn: Connection, viewer: User | None, name: str) -> Any:
    if not valid_name(name):  # a NUL would even be an error in PostgreSQL
        return None
    return conn.execute(select(users).where(users.c.name == name, visible(viewer))).first()


def profile(conn: Connection, viewer: User | None, name: str, days: int = 365,
            now_day: int | None = None) -> dict[str, Any] | None:
    """One person's page: totals, per day, per model, devices, projects (if shown)."""
    person = find_user(conn, viewer, name)
    if person is None:
        return None
    day = today() if now_day is None else now_day
    since = day - days + 1
    mine = and_(daily.c.user_id == person.id, daily.c.day >= since, daily.c.day <= day)
    per_day = conn.execute(
        select(daily.c.day, func.sum(daily.c.cost_usd), func.sum(TOKENS),
               func.sum(daily.c.requests), func.sum(daily.c.unpriced))
        .where(mine).group_by(daily.c.day).order_by(daily.c.day)).all()
    per_model = conn.execute(
        select(daily.c.model, func.sum(daily.c.cost_usd), func.sum(TOKENS),
               func.sum(daily.c.requests))
        .where(mine).group_by(daily.c.model).order_by(func.sum(daily.c.cost_usd).desc())).all()
    per_device = conn.execute(
        select(devices.c.name, devices.c.last_push_ms, func.sum(daily.c.cost_usd),
               func.sum(TOKENS))
        .select_from(devices.outerjoin(daily, and_(daily.c.user_id == devices.c.user_id,
                                                   daily.c.device == devices.c.device,
                                                   daily.c.day >= since)))
        .where(devices.c.user_id == person.id)
        .group_by(devices.c.name, devices.c.last_push_ms).order_by(devices.c.name)).all()
    out: dict[str, Any] = {
        "user": person.name, "visibility": person.visibility, "since": _iso_day(since),
        "until": _iso_day(day),
        "cost_usd": round(sum(float(r[1]) for r in per_day), 6),
        "total_tokens": sum(int(r[2]) for r in per_day),
        "requests": sum(int(r[3]) for r in per_day),
        "days": [{"day": _iso_day(r[0]), "cost_usd": round(float(r[1]), 6),
                  "total_tokens": int(r[2]), "requests": int(r[3]), "unpriced": bool(r[4])}
                 for r in per_day],
        "models": [{"model": r[0], "cost_usd": round(float(r[1]), 6),
                    "total_tokens": int(r[2]), "requests": int(r[3])} for r in per_model],
        "devices": [{"device": r[0], "last_push_ms": r[1],
                     "cost_usd": round(float(r[2] or 0), 6), "total_tokens": int(r[3] or 0)}
                    for r in per_device],
    }
    if person.show_projects or (viewer is not None and viewer.id == person.id):
        out["projects"] = [
            {"project": r[0], "cost_usd": round(float(r[1] or 0), 6),
             "total_tokens": int(r[2] or 0)}
            for r in conn.execute(
                select(usage.c.project,
                       func.sum(func.coalesce(usage.c.cost_usd, usage.c.cost_calc)),
                       func.sum(usage.c.input + usage.c.output + usage.c.cache_5m
                                + usage.c.cache_1h + usage.c.cache_read))
                .where(usage.c.user_id == person.id, usage.c.day >= since,
                       usage.c.day <= day)
                .group_by(usage.c.project)
                .order_by(func.sum(func.coalesce(usage.c.cost_usd, usage.c.cost_calc)).desc())
                .limit(50))]
    return out


def team(conn: Connection, viewer: User | None, days: int = 30,
         now_day: int | None = None) -> dict[str, Any]:
    """Totals per day, per person and per model over the people ``viewer`` may see."""
    day = today() if now_day is None else now_day
    since = day - days + 1
    where = and_(visible(viewer), daily.c.day >= since, daily.c.day <= day)
    joined = daily.join(users, users.c.id == daily.c.user_id)

    def grouped(column: Any) -> list[Any]:
        return list(conn.execute(
            select(column, func.sum(daily.c.cost_usd), func.sum(TOKENS),
                   func.sum(daily.c.requests)).select_from(joined).where(where)
            .group_by(column).order_by(column)).all())

    def rows(found: list[Any], name: str) -> list[dict[str, Any]]:
        return [{name: _iso_day(r[0]) if name == "day" else r[0],
                 "cost_usd": round(float(r[1]), 6), "total_tokens": int(r[2]),
                 "requests": int(r[3])} for r in found]

    return {"since": _iso_day(since), "until": _iso_day(day),
            "days": rows(grouped(daily.c.day), "day"),
            "people": rows(grouped(users.c.name), "user"),
            "models": rows(grouped(daily.c.model), "model")}


def models(conn: Connection, viewer: User | None) -> list[str]:
    """The models of the people ``viewer`` may see (a private person's are theirs)."""
    return [m for (m,) in conn.execute(
        select(daily.c.model).distinct()
        .select_from(daily.join(users, users.c.id == daily.c.user_id))
        .where(visible(viewer)).order_by(daily.c.model)) if m != "<synthetic>"]
