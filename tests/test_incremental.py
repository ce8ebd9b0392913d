"""The stat manifest, the no-change fast path and the incremental (prompt) refresh."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest
import twins
from conftest import FIXTURES, claude_projects, totals
from hypothesis import given, settings
from hypothesis import strategies as st

from tokline import paths
from tokline.engine import keys
from tokline.engine.refresh import manifest_path, refresh
from tokline.ledger.store import Ledger
from tokline.prompt import manifest, uptodate

LINE = (b'{"type":"assistant","timestamp":"2026-01-01T00:00:00Z","requestId":"r%d",'
        b'"sessionId":"s","message":{"id":"m%d","model":"x","usage":{"input_tokens":%d}}}\n')
OLD_NS = 1_600_000_000 * 10**9  # 2020: an untouched, cold file


def _line(i: int, tokens: int = 1) -> bytes:
    return LINE % (i, i, tokens)


def _env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share")}


def _ledger(home: Path) -> Ledger:
    return Ledger(Path(uptodate.ledger_path(_env(home))))


def _age(path: Path) -> None:
    os.utime(path, ns=(OLD_NS, OLD_NS))


def _expire_full_check(led: Ledger) -> None:
    with open(manifest_path(str(led.path)), "r+b") as fh:
        fh.seek(manifest.CHECKED_AT)
        fh.write(struct.pack("<Q", 0))


def test_fast_path_sees_appends_and_new_files(home: Path) -> None:
    proj = claude_projects(home) / "p"
    proj.mkdir()
    log = proj / "a.jsonl"
    log.write_bytes(_line(1))
    env = _env(home)
    with _ledger(home) as led:
        assert not uptodate.up_to_date(env)
        refresh(led, env)
        assert uptodate.up_to_date(env) and uptodate.up_to_date(env, full=True)
        with log.open("ab") as fh:
            fh.write(_line(2))
        assert not uptodate.up_to_date(env)
        refresh(led, env, incremental=True)
        assert uptodate.up_to_date(env)
        (proj / "sess" / "subagents").mkdir(parents=True)
        (proj / "sess" / "subagents" / "agent-1.jsonl").write_bytes(_line(3))
        assert not uptodate.up_to_date(env)
        report = refresh(led, env, incremental=True)
        assert report.files_scanned == 1 and report.files_seen == 2
        assert totals(led)[0] == 3
        assert uptodate.up_to_date(env)


def _idle_project(home: Path) -> tuple[Path, Path, dict[str, str]]:
    """A project with one session untouched for hours, and the environment to read it."""
    proj = claude_projects(home) / "p"
    proj.mkdir()
    old = proj / "old.jsonl"
    old.write_bytes(_line(1))
    _age(old)
    _age(proj)
    return proj, old, _env(home)


def _seen_at_once(home: Path, env: dict[str, str], new: Path, data: bytes,
                  input_tokens: int) -> None:
    """After a full refresh, a new log ``new`` makes the prompt's check see a change, and
    the incremental refresh counts it: ``input_tokens`` in all."""
    with _ledger(home) as led:
        refresh(led, env)
        new.write_bytes(data)
        assert not uptodate.up_to_date(env)
        refresh(led, env, incremental=True)
        assert totals(led)[0] == input_tokens


def test_new_subagent_of_a_live_session_is_seen_at_once(home: Path) -> None:
    """The session is live, but its subagents' directory was made hours ago."""
    proj, _, env = _idle_project(home)
    (proj / "live.jsonl").write_bytes(_line(2))
    agents = proj / "live" / "subagents"
    agents.mkdir(parents=True)
    (agents / "agent-a.jsonl").write_bytes(_line(3))
    for path in (agents / "agent-a.jsonl", agents, proj / "live"):
        _age(path)
    _seen_at_once(home, env, agents / "agent-b.jsonl", _line(4, 10), 13)


def test_cold_files_wait_for_the_full_check(home: Path) -> None:
    _, old, env = _idle_project(home)
    with _ledger(home) as led:
        refresh(led, env)
        with old.open("ab") as fh:  # appended, then its mtime put back (rsync -t, a restore)
            fh.write(_line(2, 10))
        _age(old)
        assert uptodate.up_to_date(env)  # within the minute, cold entries are trusted
        assert not uptodate.up_to_date(env, full=True)  # `tokline scan` checks everything
        refresh(led, env, incremental=True)
        assert totals(led)[0] == 1
        _expire_full_check(led)
        assert not uptodate.up_to_date(env)
        refresh(led, env, incremental=True)
        assert totals(led)[0] == 11


def test_file_count_carried_in_the_header_stays_exact(home: Path) -> None:
    """Incremental refreshes count the cold files from the header instead of walking them."""
    proj, _, env = _idle_project(home)
    for i in range(3):
        (proj / f"cold{i}.jsonl").write_bytes(_line(10 + i))
        _age(proj / f"cold{i}.jsonl")
    _age(proj)
    live = proj / "live.jsonl"
    with _ledger(home) as led:
        refresh(led, env)
        path = manifest_path(str(led.path))
        for i in range(3):
            with live.open("ab") as fh:
                fh.write(_line(20 + i))
            report = refresh(led, env, incremental=True)
            data = Path(path).read_bytes()
            layout = manifest.layout(data, manifest.env_key(env), os.stat(led.path).st_ino)
            assert layout is not None
            every = manifest.decode(data, layout[1], len(data))
            assert sum(1 for e in every if e[0] == b"f") == manifest.file_count(data) == 5
            assert report.files_seen == 5


def test_a_root_that_appears_is_read(home: Path) -> None:
    env = _env(home)
    with _ledger(home) as led:
        refresh(led, env)
        assert uptodate.up_to_date(env)
        proj = claude_projects(home) / "p"
        proj.mkdir()
        (proj / "a.jsonl").write_bytes(_line(1, 5))
        assert not uptodate.up_to_date(env)
        refresh(led, env, incremental=True)
        assert totals(led)[0] == 5


def test_manifest_of_another_environment_is_ignored(home: Path) -> None:
    env = _env(home)
    with _ledger(home) as led:
        refresh(led, env)
    assert uptodate.up_to_date(env)
    assert not uptodate.up_to_date({**env, "CLAUDE_CONFIG_DIR": str(home / "elsewhere")})


@pytest.mark.parametrize(("compiled", "pure"), twins.pair("manifest"))
def test_compiled_and_pure_manifest_checks_agree(home: Path, compiled: Any, pure: Any) -> None:
    manifest_unchanged = twins.built(compiled).entries_unchanged

    shutil_src = FIXTURES / "claude" / "toktrack" / "claude-sample.jsonl"
    proj = claude_projects(home) / "p"
    proj.mkdir()
    (proj / "a.jsonl").write_bytes(shutil_src.read_bytes())
    env = _env(home)
    with _ledger(home) as led:
        refresh(led, env)
        data = Path(manifest_path(str(led.path))).read_bytes()
        layout = manifest.layout(data, manifest.env_key(env), os.stat(led.path).st_ino)
        assert layout is not None
        start = layout[1]
        assert manifest_unchanged(data, start, len(data)) is True
        assert pure.entries_unchanged(data, start, len(data)) is True
        (proj / "a.jsonl").write_bytes(b"\n")
        assert manifest_unchanged(data, start, len(data)) is False
        assert pure.entries_unchanged(data, start, len(data)) is False


@pytest.mark.parametrize(("compiled", "pure"), twins.pair("manifest"))
@given(st.lists(st.sampled_from(["/a", "/a/b", "/a/bc", "/ab", "/a/b/c", "/\u00e9", "/a/"]),
                max_size=8), st.sampled_from(["/a/", "/a/b/", "/", "/ab/", "/x/", ""]),
       st.integers(0, 40))
@settings(max_examples=200)
def test_compiled_and_pure_names_under_agree(compiled: Any, pure: Any, paths: list[str],
                                             prefix: str, cut: int) -> None:
    """Entries' paths under a directory, also from a manifest cut short."""
    manifest_names_under = twins.built(compiled).names_under
    entries: list[manifest.Entry] = [(b"f", 1, 2, 3, p) for p in paths]
    data = manifest.encode(b"k", 1, entries, now_ns=10**18)
    start = manifest.layout(data, b"k", 1)[1]  # type: ignore[index]
    end = max(start, len(data) - cut)
    want = pure.names_under(data, start, end, prefix.encode())
    assert manifest_names_under(data, start, end, prefix.encode()) == want
    if cut == 0:
        assert want == {p.encode() for p in paths if p.startswith(prefix)}


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(None, "{home}/.local/share/tokline/ledger.sqlite3", id="unset"),
    pytest.param("", "{home}/.local/share/tokline/ledger.sqlite3", id="empty"),
    pytest.param("rela/tive", "{home}/.local/share/tokline/ledger.sqlite3", id="relative"),
    pytest.param("/abs/data", "/abs/data/tokline/ledger.sqlite3", id="absolute"),
])
def test_fast_and_slow_paths_agree_on_the_ledger(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                 value: str | None, expected: str) -> None:
    if value is None:
        monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_DATA_HOME", value)
    want = expected.format(home=home)
    assert uptodate.ledger_path() == want
    assert str(paths.ledger_file()) == want


@pytest.mark.parametrize(("group", "member"), [
    ("msg_01AjAtmphJjr4oSLfTyzk8LA", "req_011CY4Jzjjv1AvJJJhrqsAMj"), ("", ""), ("é☃🔥", "x"),
])
@pytest.mark.parametrize(("compiled", "pure"), twins.pair("keys"))
def test_key_twins_agree(compiled: Any, pure: Any, group: str, member: str) -> None:
    low, high = keys.group_range(group)
    assert low <= pure.key64_py(group, member) <= high
    ext = twins.built(compiled)
    assert ext.key64(group, member) == pure.key64_py(group, member)


def test_new_session_in_an_idle_project_is_seen_at_once(home: Path) -> None:
    proj, _, env = _idle_project(home)
    _seen_at_once(home, env, proj / "new.jsonl", _line(2, 4), 5)


@pytest.mark.parametrize("value", [None, "", "rel/ative", "/abs/xdg"])
def test_state_and_config_mirrors_agree(home: Path, monkeypatch: pytest.MonkeyPatch,
                                        value: str | None) -> None:
    from tokline.prompt import statefiles

    for variable in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
    assert statefiles.state_dir() == str(paths.state_dir())
    assert statefiles.data_dir() == str(paths.data_dir())
    assert statefiles.config_path() == str(paths.config_file())
