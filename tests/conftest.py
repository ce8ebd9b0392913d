from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg import postgres  # noqa: F401 - a throwaway PostgreSQL cluster (tests/pg.py)
from remote_fakes import ring, server  # noqa: F401 - fixtures for the remote tests

from tokline.engine.refresh import RefreshReport, refresh
from tokline.ledger.store import Ledger, StoredUsage

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures"
GENCORPUS = SHARED / "tools" / "gencorpus.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``.ci/run`` runs the suite twice, with the compiled modules and with their pure
    twins (TOKLINE_PURE=1); a module marked ``scanner_independent`` (a browser, a VS Code
    host, an ssh transport: nothing the twins change) runs in the compiled run alone."""
    if os.environ.get("TOKLINE_PURE") != "1":
        return
    skip = pytest.mark.skip(reason="nothing here depends on the scanner: run with the "
                                   "compiled modules only")
    for item in items:
        if item.get_closest_marker("scanner_independent"):
            item.add_marker(skip)


def pytest_report_header() -> str:
    from tokline.engine.native import USE_EXTENSIONS

    return f"tokline scanner: {'compiled extension' if USE_EXTENSIONS else 'pure-Python twin'}"


def noon_zone(now: float | None = None) -> str:
    """A fixed-offset zone where it is now between noon and one o'clock: a test whose
    data ends minutes ago and that looks at today's, this week's or this month's sums
    then runs at least twelve hours from a day's boundary, whenever CI runs it."""
    hour = time.gmtime(time.time() if now is None else now).tm_hour
    offset = 12 - hour  # hours east of UTC, -11..12; the Etc zones' signs are inverted
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME with XDG dirs inside it, so nothing of the user's is touched."""
    home = tmp_path / "home"
    home.mkdir()
    for var in ("CLAUDE_CONFIG_DIR", "TOKLINE_LEDGER", "TOKLINE_CONFIG", "TZ"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    return home


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite3") as led:
        yield led


def claude_projects(home: Path) -> Path:
    path = home / ".claude" / "projects"
    path.mkdir(parents=True, exist_ok=True)
    return path


def copy_fixture_projects(home: Path, *parts: str) -> Path:
    """Copy a fixture tree into ~/.claude/projects/<last part>."""
    dest = claude_projects(home) / parts[-1]
    source = FIXTURES.joinpath(*parts)
    if source.is_dir():
        shutil.copytree(source, dest)
    else:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest / source.name)
    return dest


def do_refresh(ledger: Ledger, home: Path) -> RefreshReport:
    return refresh(ledger, {"HOME": str(home)})


def totals(ledger: Ledger) -> tuple[int, int, int, int, int]:
    rows = list(ledger.usage())
    return (
        sum(r.input for r in rows),
        sum(r.output for r in rows),
        sum(r.cache_5m + r.cache_1h for r in rows),
        sum(r.cache_read for r in rows),
        len(rows),
    )


def rows_by_key(ledger: Ledger) -> list[tuple[object, ...]]:
    return sorted(
        (r.ts_ms, r.session_id, r.model, r.input, r.output, r.cache_5m, r.cache_1h, r.cache_read)
        for r in ledger.usage()
    )


def stored(ledger: Ledger) -> list[StoredUsage]:
    return list(ledger.usage())


def env_without_tokline() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TOKLINE_")}
