"""The contribution graph (model, terminal, SVG, HTML in headless Chromium), exports,
report charts, and the SQL day rollups they stand on."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tokline import cli, paths
from tokline.accounting import rollup
from tokline.accounting.costmode import Coster
from tokline.accounting.localtime import Calendar, resolve_zone
from tokline.accounting.pricing import price_book
from tokline.accounting.summary import group_by
from tokline.accounting.totals import Totals
from tokline.commands.demo import install_sample
from tokline.ledger.store import Ledger
from tokline.surfaces import heatmap as graph

SVG_NS = "{http://www.w3.org/2000/svg}"
END = dt.date(2026, 11, 23)  # a Monday


def totals(cost: float, tokens: int) -> Totals:
    return Totals(input=tokens, cost_usd=cost, requests=1)


def sample_days() -> dict[dt.date, Totals]:
    days = {END - dt.timedelta(days=n): totals(1.0 + n % 7, 1000 * (n + 1)) for n in range(10)}
    days[END - dt.timedelta(days=40)] = totals(50.0, 5)  # the busiest day, alone
    days[END - dt.timedelta(days=400)] = totals(99.0, 9)  # before the graph: left out
    return days


def test_model_levels_streaks_and_labels() -> None:
    heat = graph.build(sample_days(), END, week_start=0)
    assert len(heat.columns) == 53 and all(len(c) == 7 for c in heat.columns)
    assert heat.columns[-1][0] is not None and heat.columns[-1][0].day == END
    assert heat.columns[-1][1:] == [None] * 6  # the days after today are not drawn
    assert heat.start == END - dt.timedelta(weeks=52)
    cells = heat.cells()
    assert len(cells) == 52 * 7 + 1
    assert heat.active_days == 11 and heat.total_cost == pytest.approx(50 + sum(
        1.0 + n % 7 for n in range(10)))
    assert heat.longest_streak == 10 and heat.current_streak == 10
    assert heat.busiest is not None and heat.busiest.cost_usd == 50.0
    levels = {c.day: c.level for c in cells}
    assert levels[END - dt.timedelta(days=40)] == 4
    assert levels[END - dt.timedelta(days=20)] == 0
    recent = sorted((END - dt.timedelta(days=n) for n in range(10)),
                    key=lambda d: sample_days()[d].cost_usd)
    assert [levels[d] for d in recent] == sorted(levels[d] for d in recent)  # monotonic
    assert {levels[d] for d in recent} == {1, 2, 3, 4}
    months = dict(heat.month_labels())
    assert "Dec" in months.values() and "Nov" in months.values()
    # a column's label is the month whose first day it holds
    for index, name in months.items():
        days = [c.day for c in heat.columns[index] if c is not None]
        assert name in {d.strftime("%b") for d in days}


def test_current_streak_may_end_yesterday_and_tokens_metric() -> None:
    days = {END - dt.timedelta(days=n): totals(2.0, 10) for n in range(1, 4)}
    heat = graph.build(days, END, metric="tokens")
    assert heat.current_streak == 3 and heat.cells()[-1].value == 0
    assert heat.busiest is not None and heat.busiest.value == 10.0


def test_terminal_rendering_fits_and_falls_back_without_colour() -> None:
    heat = graph.build(sample_days(), END)
    wide = graph.terminal(heat, color=False, width=120)
    rows = wide.splitlines()
    assert rows[1].startswith("Mon ") and rows[3].startswith("Wed ") and rows[5].startswith("Fri ")
    assert len(rows[1]) <= 4 + 53 * 2 and "█" in wide and "·" in wide
    assert "Less · ░ ▒ ▓ █ More" in wide and "longest streak 10" in wide
    assert "\033[" not in wide
    narrow = graph.terminal(heat, color=False, width=40)
    assert all(len(line) <= 40 for line in narrow.splitlines())
    assert "█" in narrow  # the most recent weeks are the ones kept
    coloured = graph.terminal(heat, color=True, width=80)
    assert "\033[38;5;46m■" in coloured


def test_svg_cells_levels_labels_and_tooltips() -> None:
    heat = graph.build(sample_days(), END)
    root = ElementTree.fromstring(graph.svg(heat, "spend"))
    days = [r for r in root.iter(f"{SVG_NS}rect") if "day" in r.get("class", "").split()]
    assert len(days) == len(heat.cells())
    by_date = {r.get("data-date"): r for r in days}
    busiest = by_date[(END - dt.timedelta(days=40)).isoformat()]
    assert busiest.get("data-level") == "4" and "l4" in busiest.get("class", "")
    title = busiest.find(f"{SVG_NS}title")
    assert title is not None and title.text == f"{(END - dt.timedelta(days=40))}: $50.00 · 5 tokens"
    texts = [t.text for t in root.iter(f"{SVG_NS}text")]
    assert {"Mon", "Wed", "Fri", "Less", "More"} <= set(texts)
    assert sum(1 for t in root.iter(f"{SVG_NS}text") if t.get("class") == "month") >= 12
    assert len([r for r in root.iter(f"{SVG_NS}rect") if "legend" in r.get("class", "")]) == 5


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.remote: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and "//" in value:
                self.remote.append(value)


def test_html_is_self_contained(tmp_path: Path) -> None:
    page = graph.html(graph.build(sample_days(), END), "tokline: spend per day")
    parser = _Page()
    parser.feed(page)
    assert {"html", "svg", "script", "style"} <= set(parser.tags)
    assert parser.remote == [] and "@import" not in page and "url(" not in page
    assert page.count('class="day ') == len(graph.build(sample_days(), END).cells())


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and raw RGB(A) rows of an 8-bit, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, channels, rows


def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    page = tmp_path / "graph.html"
    page.write_text(graph.html(graph.build(sample_days(), END), "tokline: spend per day"))
    shot = tmp_path / "graph.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--disable-dev-shm-usage", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile'}",
                    "--window-size=900,320", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.exists(), "chromium wrote no screenshot"
    width, channels, rows = _png_pixels(shot.read_bytes())
    colours = {graph.SVG_COLORS[level]: 0 for level in range(5)}
    wanted = {bytes.fromhex(c[1:]): c for c in colours}
    for row in rows:
        for x in range(0, width * channels, channels):
            found = wanted.get(row[x:x + 3])
            if found:
                colours[found] += 1
    # every level's colour is on the page: the cells were drawn, empty and busy ones
    assert all(count > 20 for count in colours.values()), colours


@pytest.fixture
def sample(home: Path) -> Path:
    install_sample(home)
    assert cli.main(["scan", "-q"]) == 0
    return home


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham"])
def test_sql_day_rollup_equals_the_row_by_row_report(sample: Path, zone: str) -> None:
    with Ledger(paths.ledger_file()) as ledger:
        calendar = Calendar(resolve_zone(zone))
        coster = Coster(price_book({}), "auto")
        rows = list(ledger.usage())
        expected = group_by(rows, lambda r: calendar.day(r.ts_ms), coster)
        got = rollup.daily(ledger, calendar)
        assert {d.isoformat() for d in got} == set(expected)
        for day, t in got.items():
            want = expected[day.isoformat()].totals
            assert (t.input, t.output, t.cache_5m, t.cache_1h, t.cache_read, t.requests) == (
                want.input, want.output, want.cache_5m, want.cache_1h, want.cache_read,
                want.requests)
            assert t.cost_usd == pytest.approx(want.cost_usd)
        by_model = rollup.group(rollup.contexts(ledger), rollup.model_of)
        models = group_by(rows, lambda r: r.model, coster)
        assert set(by_model) == {m for m in models if m != "<synthetic>"}
        for model, t in by_model.items():
            assert t.total_tokens == models[model].totals.total_tokens


def test_graph_command_writes_svg_and_html(sample: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    svg_path, html_path = tmp_path / "g.svg", tmp_path / "g.html"
    assert cli.main(["graph", "--svg", str(svg_path), "--html", str(html_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    root = ElementTree.parse(svg_path).getroot()
    active = [r for r in root.iter(f"{SVG_NS}rect") if r.get("data-level") not in (None, "0")]
    daily = json.loads(_run(capsys, ["daily", "--json", "--offline"]))
    assert len(active) == sum(1 for row in daily["rows"] if row["total_tokens"] > 0)
    cost = sum(float(r.get("data-cost") or 0) for r in root.iter(f"{SVG_NS}rect"))
    assert cost == pytest.approx(daily["totals"]["cost_usd"], rel=1e-6)
    assert "<svg" in html_path.read_text()
    out = _run(capsys, ["graph", "--metric", "tokens"])
    assert "Less" in out and "More" in out and "active day" in out


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert cli.main(argv) == 0
    return capsys.readouterr().out


def test_exports_match_the_reports(sample: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    daily = json.loads(_run(capsys, ["daily", "--json", "--offline"]))
    rows = list(csv.DictReader(io.StringIO(_run(capsys, ["export", "--csv", "--offline"]))))
    assert list(rows[0]) == ["day", "source", "model", "input_tokens", "output_tokens",
                             "cache_creation_tokens", "cache_read_tokens", "total_tokens",
                             "cost_usd", "unpriced", "requests", "first_activity",
                             "last_activity"]
    assert sum(int(r["total_tokens"]) for r in rows) == daily["totals"]["total_tokens"]
    assert sum(float(r["cost_usd"]) for r in rows) == pytest.approx(
        daily["totals"]["cost_usd"], abs=1e-4)
    assert {r["day"] for r in rows} == {r["period"] for r in daily["rows"]}
    assert {r["unpriced"] for r in rows} <= {"true", "false"}
    for by, first in (("session", "session_id"), ("project", "project"), ("model", "source")):
        out = tmp_path / f"{by}.json"
        assert cli.main(["export", "--json", "--by", by, "--offline", "-o", str(out)]) == 0
        data = json.loads(out.read_text())
        assert data["by"] == by and data["columns"][0] == first
        assert sum(r["total_tokens"] for r in data["rows"]) == daily["totals"]["total_tokens"]
        assert all(list(r) == data["columns"] for r in data["rows"])
    since = daily["rows"][-1]["period"]
    recent = list(csv.DictReader(io.StringIO(
        _run(capsys, ["export", "--offline", "--since", since]))))
    assert {r["day"] for r in recent} == {since}


def test_unwritable_output_is_one_line(sample: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    for argv in (["export", "--offline", "-o", str(missing / "x.csv")],
                 ["graph", "--offline", "--svg", str(missing / "x.svg")]):
        capsys.readouterr()
        assert cli.main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"tokline: cannot write {missing}") and "\n" not in err


def test_daily_chart_and_model_shares(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(capsys, ["daily", "--chart", "--offline"])
    daily = json.loads(_run(capsys, ["daily", "--json", "--offline"]))
    chart = out.split("\n\n")[-1].strip().splitlines()
    assert [line.split()[0] for line in chart] == [r["period"] for r in daily["rows"]]
    top = max(daily["rows"], key=lambda r: r["cost_usd"])
    top_line = next(line for line in chart if line.startswith(top["period"]))
    assert top_line.count("█") >= max(line.count("█") for line in chart)
    models = _run(capsys, ["models", "--offline"])
    assert "Share of cost" in models
    shares = [int(line.rsplit(None, 1)[-1].rstrip("%")) for line in models.splitlines()[2:]
              if line.endswith("%") and not line.startswith("Total")]
    assert 97 <= sum(shares) <= 103
