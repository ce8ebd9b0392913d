"""``tokline demo``: every view on a bundled sample history, in a temporary home.

The sample (tokline/data/demo.tar.gz, written by ../shared/tools/gencorpus.py) is moved
in time so that its last activity was a few minutes ago; nothing of the user's is
read or written: HOME and the XDG directories point into a temporary directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shlex
import shutil
import sys
import tarfile
import tempfile
import time
from importlib import resources
from pathlib import Path

from tokline.errors import ToklineError

SAMPLE_END = dt.datetime(2026, 11, 20, 16, 40, tzinfo=dt.timezone.utc)
_ISO = re.compile(rb'"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?Z"')
_RESETS = re.compile(rb'"resets_at":(\d+)')


def _shift_file(path: Path, delta: dt.timedelta) -> None:
    def iso(m: re.Match[bytes]) -> bytes:
        moved = dt.datetime.strptime(m.group(1).decode(), "%Y-%m-%dT%H:%M:%S") + delta
        return b'"' + moved.strftime("%Y-%m-%dT%H:%M:%S").encode() + (m.group(2) or b"") + b'Z"'

    def resets(m: re.Match[bytes]) -> bytes:
        return b'"resets_at":' + str(int(m.group(1)) + int(delta.total_seconds())).encode()

    data = path.read_bytes()
    path.write_bytes(_RESETS.sub(resets, _ISO.sub(iso, data)))


def install_sample(home: Path, now: dt.datetime | None = None) -> None:
    """Unpack the sample into ``home`` with its last activity five minutes before ``now``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    delta = now - dt.timedelta(minutes=5) - SAMPLE_END
    delta = dt.timedelta(seconds=int(delta.total_seconds()))
    archive = resources.files("tokline").joinpath("data/demo.tar.gz")
    with resources.as_file(archive) as path, tarfile.open(path) as tar:
        if sys.version_info >= (3, 12):
            tar.extractall(home, filter="data")
        else:
            for member in tar.getmembers():
                if member.name.startswith(("/", "..")) or ".." in Path(member.name).parts:
                    continue
                tar.extract(member, home)
    stamp = time.time()
    for log in home.rglob("*.jsonl"):
        _shift_file(log, delta)
        os.utime(log, (stamp, stamp))


def demo_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOKLINE_LEDGER", "TOKLINE_CONFIG", "CLAUDE_CONFIG_DIR",
                                "CODEX_HOME", "XDG_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local" / "share"),
               XDG_STATE_HOME=str(home / ".local" / "state"),
               XDG_CACHE_HOME=str(home / ".cache"))
    return env


VIEWS: list[tuple[str, list[str]]] = [
    ("Status line (prompt, tmux, editors)", ["status"]),
    ("Quota view", ["status", "--format",
                    "Claude [5h {quota.claude.5h} (resets {quota.claude.5h.reset})]"
                    "[ · 7d {quota.claude.7d}] | Codex [5h {quota.codex.5h}]"
                    "[ · 7d {quota.codex.7d} (resets {quota.codex.7d.reset})]"]),
    ("Daily report (last 7 days)", ["daily", "--since", "{week_ago}"]),
    ("Models", ["models"]),
    ("5-hour blocks (last 3 days)", ["blocks", "--recent"]),
    ("Contribution graph (tokline graph; --svg/--html for pictures)", ["graph"]),
]
DEMO_CONFIG = """# written by tokline demo
[budget]
daily_usd = 5
plan = "max5"
[status]
notify = false
"""


def _claude_code_payload(now: float) -> bytes:
    """What Claude Code pipes to its statusLine command, with its official quota."""
    import json  # noqa: PLC0415

    return json.dumps({
        "session_id": "demo", "model": {"id": "claude-sonnet-4-5", "display_name": "Sonnet 4.5"},
        "cost": {"total_cost_usd": 0.42}, "context_window": {"used_percentage": 31},
        "rate_limits": {"five_hour": {"used_percentage": 38, "resets_at": int(now) + 7700},
                        "seven_day": {"used_percentage": 61, "resets_at": int(now) + 260000}},
    }).encode()


def _prepare(home: Path) -> str:
    """Scan the sample, pass Claude Code's quota through the statusline as Claude Code
    would, publish the snapshot; returns the statusline Claude Code would show."""
    from tokline.cli import main  # noqa: PLC0415
    from tokline.commands import statusline  # noqa: PLC0415
    from tokline.ledger.store import Ledger  # noqa: PLC0415
    from tokline.prompt.fields import as_of  # noqa: PLC0415
    from tokline.prompt.statefiles import state_dir  # noqa: PLC0415
    from tokline.prompt.uptodate import ledger_path  # noqa: PLC0415
    from tokline.snapshot.publish import publish  # noqa: PLC0415

    config = home / ".config" / "tokline" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(DEMO_CONFIG, encoding="utf-8")
    if main(["scan", "-q"]) != 0:
        raise ToklineError("the demo could not scan its sample")
    now = time.time()
    payload = statusline.read_payload(_claude_code_payload(now))
    statusline.remember(payload, state_dir(), now)
    with Ledger(ledger_path()) as ledger:
        snap = publish(ledger)
    return statusline.line(payload, as_of(snap, now), now)


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline demo", description=__doc__)
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary home and print its path")
    parser.add_argument("--dashboard", action="store_true",
                        help="then open `tokline dashboard` on the sample (q quits)")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="tokline-demo-"))
    saved = dict(os.environ)
    try:
        install_sample(home)
        os.environ.clear()
        os.environ.update(demo_env(home))
        from tokline.cli import main  # noqa: PLC0415

        week_ago = (dt.date.today() - dt.timedelta(days=6)).isoformat()
        print(f"tokline demo: a sample history of Claude Code and Codex logs in {home}\n"
              "(your own logs and settings are not touched)\n")
        claude_line = _prepare(home)
        print(f"== Claude Code's status line: tokline statusline\n{claude_line}\n")
        for title, command in VIEWS:
            argv = [part.replace("{week_ago}", week_ago) for part in command]
            shown = " ".join(shlex.quote(part) for part in argv)
            print(f"== {title}: tokline {shown}")
            sys.stdout.flush()
            code = main(argv)
            if code != 0:
                return code
            print()
        if args.dashboard:
            code = main(["dashboard"])
            if code != 0:
                return code
        if args.keep:
            print(f"sample home kept: HOME={home} (try: HOME={home} tokline daily)")
        return 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
