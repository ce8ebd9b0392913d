"""Issue 18, quota you can act on: pace and run-out against hand-computed values (and
hypothesis over window lengths and clocks), the recent rate from the last hour's
readings, the window that binds, old figures marked, the pre-rendered line changing at a
reset, the statusline's arrow and the dashboard's even-burn mark."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from remote_fakes import Fake, MemoryKeyring, claude_legacy, claude_login

from tokline import cli, remote
from tokline.commands import statusline
from tokline.prompt import fields, quotaview
from tokline.snapshot import lines
from tokline.surfaces import dashboard_text
from tokline.surfaces.dashboard_data import DashData

UTC = dt.timezone.utc
HOUR = 3600.0
DAY = 86400.0
USAGE = "/api/oauth/usage"


def window(used: float, resets: float, length: float | None, as_of: float | None,
           **more: Any) -> dict[str, Any]:
    out = {"source": "claude", "window": "w", "used_percent": used, "resets_at": resets,
           "as_of": as_of, "kind": "official", **more}
    if length is not None:
        out["window_s"] = length
    return out


def by_hand(used: int, elapsed: int, length: int, reset: int) -> tuple[Fraction, int | None]:
    """Pace and run-out as the issue defines them, in exact arithmetic: used minus the
    elapsed share; 100 % reached at the average rate used ÷ elapsed, unless at or after
    the reset (and no rate at all at the window's very first second)."""
    pace = used - Fraction(100 * elapsed, length)
    reading = reset - length + elapsed
    if used >= 100:
        return pace, reading
    if used == 0 or elapsed == 0:
        return pace, None
    out = reading + Fraction((100 - used) * elapsed, used)
    return pace, round(out) if out < reset else None


@settings(max_examples=400, deadline=None)
@given(length=st.one_of(st.sampled_from([18000, 604800, 86400, 2592000]),
                        st.integers(600, 40 * 86400)),
       share=st.floats(0, 1, exclude_max=True), used=st.integers(0, 150),
       reset=st.integers(1_500_000_000, 2_500_000_000),
       clocks=st.lists(st.integers(0, 10 * 86400), min_size=1, max_size=3))
@example(length=604800, share=2 / 7, used=40, reset=1_796_306_400, clocks=[0])
@example(length=18000, share=0.6, used=30, reset=1_796_306_400, clocks=[0, 5])
def test_pace_and_runout_equal_the_hand_computed_values(
        length: int, share: float, used: int, reset: int, clocks: list[int]) -> None:
    elapsed = int(share * length)
    reading = reset - length + elapsed
    pace, runout = by_hand(used, elapsed, length, reset)
    if used and used < 100:  # a run-out a hair from the reset may round either way
        exact = reading + Fraction((100 - used) * elapsed, used)
        assume(abs(exact - reset) > Fraction(1, 100))
    for later in clocks:  # whatever the clock reads now: they are of the reading
        got = quotaview.pace(window(used, reset, length, reading), reading + later)
        assert got is not None
        assert got["pace_percent"] == pytest.approx(float(pace), abs=0.006)
        assert got["elapsed_percent"] == pytest.approx(100 * elapsed / length, abs=0.006)
        if runout is None or got["runout_at"] is None:
            assert got["runout_at"] == runout
        else:  # whole seconds
            assert abs(got["runout_at"] - runout) <= 1
        assert got["basis"] == "average"
    # without a reading time, the reading is now
    assert quotaview.pace(window(used, reset, length, None), reading) == quotaview.pace(
        window(used, reset, length, reading), reading)


@given(used=st.floats(0, 150), reset=st.floats(1e9, 3e9), length=st.floats(60, 1e7),
       offset=st.floats(-2e7, 2e7))
def test_no_pace_without_what_it_needs(used: float, reset: float, length: float,
                                       offset: float) -> None:
    reading = reset + offset
    assert quotaview.pace(window(used, reset, None, reading, window="odd"), reading) is None
    got = quotaview.pace(window(used, reset, length, reading), reading)
    # a reading outside the window its reset and length make (before it began, at or
    # after its reset) has no pace
    assert (got is None) == (not reset - length <= reading < reset)


@given(st.text(max_size=12), st.one_of(st.none(), st.floats(), st.integers(), st.text()))
def test_any_window_name_or_length_reads_without_error(name: str, length: object) -> None:
    found = quotaview.window_seconds({"window": name, "window_s": length})
    assert found is None or found > 0
    assert quotaview.window_name(length, "slot") == "slot" or isinstance(length, (int, float))


ANY = st.one_of(st.none(), st.booleans(), st.integers(-10**400, 10**400), st.floats(),
                st.text(max_size=3))


@given(used=ANY, resets=ANY, length=ANY, as_of=ANY, ttl=ANY, now=st.floats(0, 4e9))
def test_any_numbers_in_a_window_read_without_error(used: object, resets: object,
                                                     length: object, as_of: object,
                                                     ttl: object, now: float) -> None:
    """Windows come from remote answers and other devices: whatever their numbers."""
    found = {"source": "claude", "window": "5h", "used_percent": used, "resets_at": resets,
             "window_s": length, "as_of": as_of, "ttl_s": ttl, "kind": "official"}
    readings = {quotaview.reading_key(found): [[as_of, used, resets], [now - 900, 1, resets]]}
    view = quotaview.current([found], now, readings)
    fields.field_values({"quota": view}, UTC, now)
    quotaview.changes_at(view, now)
    quotaview.remember(readings, view)


def test_hand_computed_examples() -> None:
    reset = dt.datetime(2026, 12, 3, 14, 0, tzinfo=UTC).timestamp()  # a Thursday
    reading = reset - 5 * DAY  # 2 of 7 days gone
    got = quotaview.pace(window(40, reset, 7 * DAY, reading, window="7d"), reading)
    assert got == {"elapsed_percent": 28.57, "pace_percent": 11.43,
                   "runout_at": round(reading + 3 * DAY), "basis": "average"}
    # the name tells the length when the window does not
    assert quotaview.pace({**window(40, reset, None, reading), "window": "7d_opus"},
                          reading) == got
    five = dt.datetime(2026, 12, 3, 16, 0, tzinfo=UTC).timestamp()
    ahead = quotaview.pace(window(75, five, 5 * HOUR, five - 2 * HOUR), five)
    assert ahead == {"elapsed_percent": 60.0, "pace_percent": 15.0,
                     "runout_at": round(five - HOUR), "basis": "average"}
    behind = quotaview.pace(window(30, five, 5 * HOUR, five - 2 * HOUR), five)
    assert behind is not None and behind["pace_percent"] == -30.0
    assert behind["runout_at"] is None  # at this rate 100 % comes after the reset
    out = quotaview.pace(window(104, five, 5 * HOUR, five - 2 * HOUR), five)
    assert out is not None and out["runout_at"] == round(five - 2 * HOUR)
    # the fields, in the zone and at the moment given
    view = {"quota": quotaview.current([{**window(40, reset, 7 * DAY, reading),
                                         "window": "7d", "ttl_s": 10 * DAY}], reading)}
    values = fields.field_values(view, UTC, reading)
    assert values["quota.claude.7d.pace"] == ("+11%", None)
    assert values["quota.7d.pace"] == ("+11%", None)
    assert values["quota.claude.7d.runout"] == ("Tue 14:00", None)
    assert values["quota.7d.ahead"] == ("↑", None) and values["quota.bind"] == ("7d 40%", None)
    assert fields.pace_text(-0.4) == "+0%" and fields.pace_text(-12.6) == "-13%"


def test_recent_rate_from_the_last_hour_of_readings() -> None:
    reset = 2_000_000_000.0
    now = reset - 2 * HOUR  # 3 of 5 hours gone
    current = window(50, reset, 5 * HOUR, now, window="5h")
    key = quotaview.reading_key(current)

    def runout(rows: list[list[float | None]]) -> tuple[int | None, str]:
        got = quotaview.pace(current, now, {key: rows})
        assert got is not None
        return got["runout_at"], got["basis"]

    # 20 % → 50 % over the last half hour: 100 % in 50 min, before the reset
    assert runout([[now - 1800, 20, reset], [now - 900, 35, reset]]) == (
        round(now + 3000), "recent")
    # at the average (50 % in 3 h) it would come after the reset
    assert runout([]) == (None, "average")
    assert runout([[now - 4000, 0, reset]]) == (None, "average")  # more than an hour ago
    assert runout([[now - 300, 45, reset]]) == (None, "average")  # 5 min: too short
    assert runout([[now - 1800, 10, reset + 5 * HOUR]]) == (None, "average")  # another period
    assert runout([[now - 1800, 50, reset]]) == (None, "recent")  # idle: no run-out
    # what the snapshot keeps: the last hour of the newest reading's period
    kept = quotaview.remember({key: [[now - 5000, 1, reset], [now - 1800, 20, reset],
                                     [now - 900, 10, reset + 9 * HOUR]]}, [current])
    assert kept == {key: [[now - 1800, 20.0, reset], [now, 50.0, reset]]}
    assert quotaview.remember(kept, [current]) == kept  # the same reading: kept once


def test_runout_from_readings_of_successive_fetches(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        capsys: pytest.CaptureFixture[str]) -> None:
    """Two fetches half an hour apart: quota --json and status --json carry pace and a
    run-out at the recent rate (the average would not run out before the reset)."""
    _, fake = server
    claude_login(home)
    now = time.time()
    reset = now + 2 * HOUR
    for used, at in ((20.0, now - 1900), (50.0, now - 100)):
        fake.routes[USAGE] = (200, {}, claude_legacy(used, 9.0, reset, now + 3 * DAY))
        remote.fetch_due(force=True, now=at)
        assert cli.main(["status", "--sync", "--json"]) == 0
    view = json.loads(capsys.readouterr().out.splitlines()[-1])
    [five] = [w for w in view["quota"] if w["window"] == "5h"]
    assert five["runout_at"] == pytest.approx(now - 100 + 50 / (30 / 1800), abs=2)
    assert five["pace_percent"] == pytest.approx(50 - 100 * (3 * HOUR - 100) / (5 * HOUR),
                                                 abs=0.05)
    assert cli.main(["quota", "--json"]) == 0
    [same] = [w for w in json.loads(capsys.readouterr().out)["windows"] if w["window"] == "5h"]
    assert (same["runout_at"], same["pace_percent"]) == (five["runout_at"],
                                                         five["pace_percent"])
    assert cli.main(["quota"]) == 0
    assert "vs an even pace, runs out " in capsys.readouterr().out


def test_the_binding_window() -> None:
    def w(source: str, name: str, used: float, **more: Any) -> dict[str, Any]:
        return {"source": source, "window": name, "used_percent": used, "kind": "official",
                **more}

    assert quotaview.binding([w("claude", "5h", 40), w("claude", "7d", 61)])["window"] == "7d"
    tie = [w("claude", "5h", 50), w("claude", "7d", 50, active=True)]
    assert quotaview.binding(tie)["window"] == "7d"
    assert quotaview.binding([w("claude", "5h", 99, kind="estimate"),
                              w("claude", "7d", 20)])["window"] == "7d"
    assert quotaview.binding([w("x", "credits", None)]) is None  # type: ignore[arg-type]
    # a balance or an extra-spend budget has no period: it is not a quota that binds
    assert quotaview.binding([w("openrouter", "credits", 99), w("claude", "extra", 100),
                              w("claude", "5h", 30)])["window"] == "5h"
    values = fields.field_values({"quota": [w("claude", "5h", 40), w("codex", "7d", 70),
                                            w("claude", "7d_opus", 90)]}, UTC, 0)
    assert values["quota.bind"] == ("claude 7d_opus 90%", "warn")
    assert values["quota.claude.bind"] == ("7d_opus 90%", "warn")
    assert values["quota.codex.bind"] == ("7d 70%", None)


def test_old_figures_are_marked_with_their_time(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]],
        capsys: pytest.CaptureFixture[str]) -> None:
    _, fake = server
    claude_login(home)
    now = time.time()
    fake.routes[USAGE] = (200, {}, claude_legacy(34.0, 9.0, now + HOUR, now + 3 * DAY))
    template = "{quota.claude.5h}[ (as of {quota.claude.5h.as_of})]"
    remote.fetch_due(force=True, now=now - 200)  # within Claude's 5 minutes
    capsys.readouterr()
    assert cli.main(["status", "--sync", "--format", template]) == 0
    assert capsys.readouterr().out.strip() == "34%"
    remote.fetch_due(force=True, now=now - 1000)  # older than that (and its slack)
    assert cli.main(["status", "--sync", "--format", template]) == 0
    assert capsys.readouterr().out.strip() == f"34%* (as of {fields.clock(now - 1000)})"
    assert cli.main(["quota"]) == 0
    assert f"(stale, as of {fields.clock(now - 1000)})" in capsys.readouterr().out


def test_the_prompt_line_changes_at_a_reset_and_when_a_figure_turns_old() -> None:
    made = 1_796_000_000.0
    snap = {"generated_at": made, "timezone": "UTC",
            "today": {"end": made + 10 * HOUR, "cost_usd": 0.0},
            "quota": [{**window(80, made + 100, 5 * HOUR, made, window="5h")}]}
    marks, rendered = lines.render_lines(snap, "{quota.claude.5h}")
    assert marks == [made + 100, made + 300 + 60, made + 10 * HOUR]
    assert rendered["plain"] == ["80%", "0%", "0%*", "0%*"]


def test_the_pre_rendered_status_shows_a_reset_without_a_refresh(
        home: Path, ring: MemoryKeyring, server: tuple[str, type[Fake]]) -> None:
    _, fake = server
    claude_login(home)
    config = home / ".config" / "tokline" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[status]\ntemplate = "5h {quota.claude.5h}"\n')
    reset = time.time() + 4
    fake.routes[USAGE] = (200, {}, claude_legacy(80.0, 9.0, reset, time.time() + 3 * DAY))
    remote.fetch_due(force=True)
    assert cli.main(["status", "--sync"]) == 0
    env = {**os.environ, "TOKLINE_REFRESH_LOG": str(home / "refreshes")}

    def prompt() -> str:
        return subprocess.run([sys.executable, "-m", "tokline", "status"], env=env,
                              capture_output=True, text=True, timeout=60).stdout.strip()

    assert prompt() == "5h 80%"
    time.sleep(max(0.0, reset + 1 - time.time()))
    assert prompt() == "5h 0%"  # the variant for after the reset, before any refresh ran


def test_statusline_arrow_and_a_binding_cap() -> None:
    now = 1_796_000_000.0
    payload = {"rate_limits": {"five_hour": {"used_percentage": 80, "resets_at": now + 2 * HOUR},
                               "seven_day": {"used_percentage": 10, "resets_at": now + 6 * DAY}}}
    text = statusline.line(payload, None, now)
    assert text == (f"5h 80%↑ ↻{fields.clock(now + 2 * HOUR, None, now)} "
                    f"7d 10% ↻{fields.clock(now + 6 * DAY, None, now)}")
    view = {"quota": quotaview.current([{**window(97, now + 3 * DAY, 7 * DAY, now - 60),
                                         "window": "7d_opus"}], now)}
    assert statusline.line(payload, view, now).endswith(
        f"7d_opus 97%↑ ↻{fields.clock(now + 3 * DAY, None, now)}")


def test_dashboard_gauge_marks_the_even_burn() -> None:
    now = 1_796_000_000.0
    data = DashData(now, "d", {"quota": quotaview.current(
        [{**window(60, now + 2.5 * HOUR, 5 * HOUR, now - 10), "window": "5h"}], now)},
        None)
    gauge = dashboard_text.plain([dashboard_text.gauge(60, 20, data, 50)])
    assert gauge.index(dashboard_text.EVEN) == 10 and len(gauge) == 20 + len("  60%")
    assert dashboard_text.plain([dashboard_text.gauge(20, 20, data, 75)]).index(
        dashboard_text.EVEN) == 15
    text = dashboard_text.plain(dashboard_text.quota_lines(data, 100))
    assert dashboard_text.EVEN in text and "+10% vs even" in text and " · out " in text
