"""What the benchmarks share: the interpreter and launcher of a venv, a generated corpus,
and an environment that points tokline at a private home and state."""

from __future__ import annotations

import os
import subprocess
import sys
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
