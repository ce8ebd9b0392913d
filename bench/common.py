"""What the benchmarks share: the interpreter and launcher of a venv, a generated corpus,
and an environment that points tokline at a private home and state."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GENCORPUS = SHARED / "tools" / "gencorpus.py"


def venv_programs(venv: Path) -> tuple[str, str]:
    """(the venv's real interpreter, its tokline launcher)."""
    return str(venv / "bin" / "python"), str(venv / "bin" / "tokline")


def generate(corpus: Path, size: str, seed: int, days: int | None = None) -> None:
    extra = ["--days", str(days)] if days is not None else []
    subprocess.run([sys.executable, str(GENCORPUS), "--out", str(corpus), "--size", size,
                    "--seed", str(seed), *extra], check=True, stdout=subprocess.DEVNULL)


def private_env(home: Path, work: Path, **extra: str) -> dict[str, str]:
    """This environment without tokline's or XDG settings, HOME at ``home`` and tokline's
    data, state and config under ``work``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKLINE_", "XDG_"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(work / "data"),
               XDG_STATE_HOME=str(work / "state"), XDG_CONFIG_HOME=str(work / "config"),
               **extra)
    return env


def corpus_parser(runs: int) -> argparse.ArgumentParser:
    """The options of a benchmark over a generated history: --corpus (reuse one), --size,
    --venv (whose interpreter and tokline are timed), --runs (per median)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, help="existing gencorpus directory (default: make one)")
    ap.add_argument("--size", default="1G")
    ap.add_argument("--venv", type=Path, default=Path(sys.prefix))
    ap.add_argument("--runs", type=int, default=runs)
    return ap


def wall(cmd: list[str], env: dict[str, str], stdin: bytes | None = None) -> float:
    """Seconds one whole process takes, its output discarded; a failure stops the bench."""
    start = time.perf_counter()
    subprocess.run(cmd, env=env, input=stdin, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start
