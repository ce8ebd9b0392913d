#!/usr/bin/env python3
"""Dashboard and graph figures on a long history.

    python bench/pictures.py [--corpus DIR] [--size 1G] [--days 365] [--venv VENV] [--runs 11]

Builds (or reuses) a gencorpus history of ``--days`` days, scans it into a ledger once,
then times whole processes: ``tokline dashboard --first-frame`` (start, read the ledger,
draw the first frame into a pseudo-terminal of 80x24, exit), ``tokline graph`` and
``tokline graph --svg``, against the floor ``VENV/bin/python -c pass``.  Medians.
"""

from __future__ import annotations

import fcntl
import os
import pty
import shutil
import statistics
import struct
import subprocess
import tempfile
import termios
import time
from pathlib import Path

from common import corpus_parser, generate, private_env, venv_programs, wall

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def wall_in_terminal(cmd: list[str], env: dict[str, str]) -> float:
    """wall, in a real terminal of 80x24 for the TUI, as a user has."""
    start = time.perf_counter()
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(cmd, env=env, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    while True:
        try:
            if not os.read(leader, 65536):
                break
        except OSError:
            break
    proc.wait()
    os.close(leader)
    if proc.returncode:
        raise SystemExit(f"{cmd} failed ({proc.returncode})")
    return time.perf_counter() - start


def main() -> int:
    ap = corpus_parser(11)
    ap.add_argument("--days", type=int, default=365)
    args = ap.parse_args()
    python, tokline = venv_programs(args.venv)
    work = Path(tempfile.mkdtemp(prefix="tokline-pictures-bench-"))
    corpus = args.corpus or work / "corpus"
    if not (corpus / ".claude").exists():
        generate(corpus, args.size, 11, args.days)
    env = private_env(corpus, work, TERM="xterm-256color", COLUMNS="80", LINES="24")
    started = time.perf_counter()
    subprocess.run([tokline, "scan", "-q"], env=env, check=True)
    print(f"ledger built in {time.perf_counter() - started:.1f}s "
          f"({(work / 'data' / 'tokline' / 'ledger.sqlite3').stat().st_size >> 20} MiB)")

    def median(cmd: list[str], tty: bool = False) -> float:
        timer = wall_in_terminal if tty else wall
        timer(cmd, env)  # warm the page cache
        return statistics.median(timer(cmd, env) for _ in range(args.runs))

    floor = median([python, "-c", "pass"])
    figures = [
        ("tokline dashboard, first frame (pty 80x24)",
         median([tokline, "dashboard", "--first-frame"], tty=True)),
        ("tokline graph (terminal)", median([tokline, "graph"])),
        ("tokline graph --svg", median([tokline, "graph", "--svg", str(work / "g.svg")])),
    ]
    floor = min(floor, median([python, "-c", "pass"]))
    print(f"\ncorpus {corpus} ({args.days} days); interpreter {python}")
    print(f"{'measure':<46}{'seconds':>10}{'x floor':>10}")
    print(f"{'floor (python -c pass)':<46}{floor:>10.4f}{1:>10.2f}")
    for label, seconds in figures:
        print(f"{label:<46}{seconds:>10.4f}{seconds / floor:>10.2f}")
    shutil.rmtree(work if args.corpus is None else work / "data", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
