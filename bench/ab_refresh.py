#!/usr/bin/env python3
"""Two installs side by side on the prompt's refresh after 5 MiB appended.

    python bench/ab_refresh.py --a OLD_VENV --b NEW_VENV [--corpus DIR] [--rounds 12]

Each install keeps its own ledger and state over the same corpus; after every append both
refresh, in alternating order, so cache warmth and WAL checkpoints fall on both alike.  A
noisy machine moves absolute figures between runs of bench/engine.py; this puts a change
and its parent in one run.  Medians, with ratios to the floor of --b's interpreter.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import GENCORPUS, generate, private_env, venv_programs, wall
from engine import age_directories, age_files


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", type=Path, required=True, help="venv of the first install")
    ap.add_argument("--b", type=Path, required=True, help="venv of the second install")
    ap.add_argument("--corpus", type=Path, help="existing gencorpus directory (default: make one)")
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tokline-ab-"))
    corpus = args.corpus or work / "corpus"
    if args.corpus is None:
        print(f"generating a 1G corpus in {corpus} ...", flush=True)
        generate(corpus, "1G", 7)
    age_files(corpus)  # as bench/engine.py: a history's files carry their newest line's time
    age_directories(corpus)
    installs = {"a": args.a, "b": args.b}
    envs = {tag: private_env(corpus, work / tag) for tag in installs}
    programs = {tag: venv_programs(venv)[1] for tag, venv in installs.items()}
    for tag in installs:
        subprocess.run([programs[tag], "scan", "-q"], env=envs[tag], check=True)
        subprocess.run([programs[tag], "refresh"], env=envs[tag], check=True)
    python = venv_programs(args.b)[0]
    floor = statistics.median(wall([python, "-c", "pass"], envs["b"]) for _ in range(21))
    times: dict[str, list[float]] = {tag: [] for tag in installs}
    for round_ in range(args.rounds):
        subprocess.run([sys.executable, str(GENCORPUS), "--out", str(corpus), "--append-mb", "5"],
                       check=True, stdout=subprocess.DEVNULL)
        for tag in (("a", "b") if round_ % 2 == 0 else ("b", "a")):
            times[tag].append(wall([programs[tag], "refresh"], envs[tag]))
    print(f"floor (python -c pass)   {floor * 1000:7.1f} ms")
    for tag, venv in installs.items():
        mid = statistics.median(times[tag])
        print(f"{tag} {venv!s:<40} {mid * 1000:7.1f} ms  {mid / floor:5.2f} x floor")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
