#!/usr/bin/env python3
"""Prompt cost of the shell hooks: time per call over 1000 calls, and processes spawned.

    python bench/shell.py [--venv VENV]

Builds a snapshot from the bundled demo sample in a temporary home, sources
`tokline init bash|zsh`, then times 1000 calls of the hook inside the shell itself
(bash $EPOCHREALTIME, zsh zsh/datetime) and counts, with strace, the processes the
shell starts while sourcing the init script and running the calls (it should be none).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import private_env, venv_programs

CALLS = 1000
BASH = f"""
source "$INIT"
start=$EPOCHREALTIME
for ((i = 0; i < {CALLS}; i++)); do __tokline_update; done
end=$EPOCHREALTIME
echo "per-call-us $(( (${{end/./}} - ${{start/./}}) / {CALLS} ))"
echo "status [$TOKLINE_STATUS]"
"""
ZSH = f"""
zmodload zsh/datetime
source "$INIT"
start=$EPOCHREALTIME
repeat {CALLS} __tokline_update
end=$EPOCHREALTIME
echo "per-call-us $(( (end - start) * 1e6 / {CALLS} ))"
echo "status [$TOKLINE_STATUS]"
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", type=Path, default=Path(sys.prefix))
    args = ap.parse_args()
    python, tokline = venv_programs(args.venv)
    home = Path(tempfile.mkdtemp(prefix="tokline-shell-bench-"))
    env = private_env(home, home, TOKLINE=tokline)
    subprocess.run([python, "-c",
                    "import sys; from pathlib import Path; "
                    "from tokline.commands.demo import install_sample; "
                    "install_sample(Path(sys.argv[1]))", str(home)], env=env, check=True)
    subprocess.run([tokline, "scan", "-q"], env=env, check=True)
    strace = shutil.which("strace")
    print(f"{'shell':<6}{'per call':>12}{'processes in ' + str(CALLS) + ' calls':>28}")
    for shell, script in (("bash", BASH), ("zsh", ZSH)):
        program = shutil.which(shell)
        if program is None:
            print(f"{shell:<6}{'not installed':>12}")
            continue
        init = home / f"init.{shell}"
        init.write_text(subprocess.run([tokline, "init", shell], env=env, capture_output=True,
                                       text=True, check=True).stdout)
        env["INIT"] = str(init)
        subprocess.run([tokline, "refresh"], env=env, check=True)  # measure a fresh status
        out = subprocess.run([program, "-c", script], env=env, capture_output=True, text=True,
                             check=True).stdout
        per_call = float(re.search(r"per-call-us (\S+)", out).group(1))  # type: ignore[union-attr]
        spawned = "strace missing"
        if strace:
            subprocess.run([strace, "-f", "-qq", "-e", "trace=fork,vfork,clone,clone3",
                            "-o", str(home / f"{shell}.strace"), program, "-c", script],
                           env=env, capture_output=True, text=True, check=True)
            lines = (home / f"{shell}.strace").read_text().splitlines()
            spawned = str(sum(1 for ln in lines if re.search(r"\b(clone3?|v?fork)\(", ln)))
        print(f"{shell:<6}{per_call / 1000:>10.3f}ms{spawned:>28}")
        print(f"       {out.splitlines()[-1]}")
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
