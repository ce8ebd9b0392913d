"""`tokline watch --json`: JSON lines on change, and no orphans."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tokline import cli
from tokline.commands.demo import install_sample


@pytest.fixture
def sample(home: Path) -> Path:
    install_sample(home)
    assert cli.main(["scan", "-q"]) == 0
    return home


@contextmanager
def watching(*extra: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "tokline", "watch", "--json", *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()


def read_line(proc: subprocess.Popen[str], timeout: float = 15) -> dict[str, object] | None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return None
    line = proc.stdout.readline()
    return json.loads(line) if line else None


def append(home: Path, n: int, tokens: int = 1000) -> None:
    log = next((home / ".claude").rglob("*.jsonl"))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    with log.open("a") as fh:
        fh.write(json.dumps({"type": "assistant", "timestamp": stamp, "requestId": f"w{n}",
                             "sessionId": "s", "message": {"id": f"w{n}",
                                                           "model": "claude-opus-4-5",
                                                           "usage": {"input_tokens": tokens}}})
                 + "\n")


@pytest.mark.parametrize("mode", [(), ("--poll", "--interval", "0.3")])
def test_emits_at_start_and_on_change(sample: Path, mode: tuple[str, ...]) -> None:
    with watching(*mode) as proc:
        first = read_line(proc)
        assert first is not None and {"today", "week", "block", "quota"} <= set(first)
        before = first["today"]["total_tokens"]  # type: ignore[index]
        append(sample, 1)
        second = read_line(proc, 5)
        assert second is not None
        assert second["today"]["total_tokens"] == before + 1000  # type: ignore[index]


def test_a_burst_of_writes_is_one_update(sample: Path) -> None:
    with watching() as proc:
        assert read_line(proc) is not None
        for n in range(20):
            append(sample, 100 + n, 10)
        update = read_line(proc, 5)
        assert update is not None
        more = read_line(proc, 1.0)
        total = (more or update)["today"]["total_tokens"]  # type: ignore[index]
        assert more is None or more["today"] != update["today"]
        first_total = update["today"]["total_tokens"]  # type: ignore[index]
        assert total - first_total in (0, 200) and more is None


def test_exits_on_sigterm_sighup_and_stdin_close(sample: Path) -> None:
    for how in ("term", "hup", "stdin"):
        with watching() as proc:
            assert read_line(proc) is not None
            if how == "term":
                proc.send_signal(signal.SIGTERM)
            elif how == "hup":
                proc.send_signal(signal.SIGHUP)
            else:
                assert proc.stdin is not None
                proc.stdin.close()
            assert proc.wait(10) == 0, how


def test_exits_when_its_parent_dies(sample: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'tokline', 'watch', '--json'],"
        " stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n")])
    deadline = time.time() + 10
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail("tokline watch outlived its parent")


def test_rendered_text_follows_the_template_and_the_clock(sample: Path) -> None:
    """Each line carries what `tokline status` would print; time alone (here: the status
    going stale) sends a new line without a new snapshot."""
    from tokline.prompt import statefiles

    template = "{today.cost} today[ · 7d {quota.7d}]"
    expected = subprocess.run([sys.executable, "-m", "tokline", "status", "--target", "plain",
                               "--format", template], capture_output=True, text=True,
                              check=True).stdout.strip()
    with watching("--no-refresh", "--format", template) as proc:
        first = read_line(proc)
        assert first is not None
        rendered = first["rendered"]
        assert isinstance(rendered, dict) and rendered["text"] == expected
        assert str(rendered["fields"]["today.cost"]).startswith("$") and rendered["stale"] == ""  # type: ignore[index]
        path = Path(statefiles.state_dir()) / statefiles.LINES
        head, rest = path.read_text().split("\n", 1)
        parts = head.split()
        parts[6] = str(int(parts[6]) - 2 * 3600 - 60)
        path.write_text(" ".join(parts) + "\n" + rest)
        later = read_line(proc, 10)
        assert later is not None
        assert later["rendered"]["text"] == expected + " (stale 2h)"  # type: ignore[index]
        assert later["rendered"]["stale"] == "stale 2h"  # type: ignore[index]
    bad = subprocess.run([sys.executable, "-m", "tokline", "watch", "--json", "--format",
                          "{today.price}"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "today.price" in bad.stderr


def test_a_project_crush_lists_while_watching_is_watched(home: Path) -> None:
    """Crush keeps a database per project, listed in its projects.json: a project listed
    while ``tokline watch`` runs is read, and its later changes wake the watch."""
    from test_sources_totals import CrushDB, _crush_projects

    glob = home / ".local" / "share" / "crush"
    one, two = home / "p1", home / "p2"
    _crush_projects(glob, (one, ".crush"))
    first = CrushDB(one / ".crush" / "crush.db")
    first.session("a")
    first.step("a", 0.5)
    assert cli.main(["scan", "-q"]) == 0
    with watching() as proc:
        start = read_line(proc)
        assert start is not None and start["today"]["cost_usd"] == 0.5  # type: ignore[index]
        second = CrushDB(two / ".crush" / "crush.db")
        second.session("b")
        _crush_projects(glob, (one, ".crush"), (two, ".crush"))
        seen = read_line(proc, 10)
        while seen is not None and seen["today"]["cost_usd"] != 0.5:  # type: ignore[index]
            seen = read_line(proc, 10)
        second.step("b", 0.25)  # only the new project's database changes
        seen = read_line(proc, 10)
        while seen is not None and seen["today"]["cost_usd"] != 0.75:  # type: ignore[index]
            seen = read_line(proc, 10)
        assert seen is not None, "the new project's change did not wake the watch"
