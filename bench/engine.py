#!/usr/bin/env python3
"""Engine benchmark: cold scan, no-change refresh and 5 MiB-append refresh on a generated corpus.

    python bench/engine.py [--corpus DIR] [--size 1G] [--venv VENV] [--runs 21]

"refresh" is ``tokline refresh``, what a prompt starts in the background; ``tokline
scan -q`` (every file stat-ed) is shown beside it.  Every figure is a whole process
timed from outside (median of several runs), printed
with its ratio to the floor (``<venv>/bin/python -c pass``, the real interpreter) and,
for the cold scan, to ``cat`` of the corpus, in wall and in CPU seconds (user + system:
steadier than wall on a busy machine; the load average is printed).  The cold scan runs
side by side with the ledger's rows written by the compiled writer (SQLite's C API) and
by its twin (``executemany``, TOKLINE_WRITER=python), and beside ccusage, the peer tool
(``ccusage daily --json --offline``, which reads the Claude and Codex logs too; pinned,
installed by npm into --peer-dir on first use; --no-peer skips it); then
bench/ledger_write.py times the cold write alone.  The corpus comes from
../shared/tools/gencorpus.py; its directories are given the mtime of their newest file,
as a real history has (the generator leaves them at creation time), and each file the
time of its newest line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import corpus_parser, generate, private_env, venv_programs

ROOT = Path(__file__).resolve().parents[1]
GENCORPUS = ROOT.parent / "shared" / "tools" / "gencorpus.py"
# The newest ccusage whose native binary (@ccusage/ccusage-linux-x64, an optional
# dependency) is on the npm registry: 20.0.26's is not, and without it ccusage refuses to
# run; the pure-JavaScript 18.x line takes over ten times longer, so it is not the peer.
CCUSAGE = "ccusage@20.0.24"


def install_peer(directory: Path) -> Path:
    """ccusage's launcher under ``directory``, installed there by npm when missing."""
    launcher = directory / "node_modules" / ".bin" / "ccusage"
    if not launcher.exists():
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix",
                        str(directory), CCUSAGE], check=True, stdout=subprocess.DEVNULL)
    return launcher


def timed(cmd: list[str], env: dict[str, str], stdout: int | None = subprocess.DEVNULL
          ) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (KiB) and CPU seconds (user + system) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err}")
    return wall, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def median(cmd: list[str], env: dict[str, str], runs: int) -> float:
    return statistics.median(timed(cmd, env)[0] for _ in range(runs))


def age_files(root: Path) -> None:
    """Give each log the mtime of its newest line, as a real history has (the generator
    writes a year in seconds, so every file would look like a live session)."""
    for path in root.rglob("*.jsonl"):
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 65536))
            tail = fh.read()
        found = re.findall(rb'"timestamp":"([0-9T:.\-]+)Z?"', tail)
        if found:
            stamp = dt.datetime.fromisoformat(found[-1].decode()[:19]).replace(
                tzinfo=dt.timezone.utc).timestamp()
            os.utime(path, (stamp, stamp))


def age_directories(root: Path) -> None:
    for directory, dirs, files in os.walk(root, topdown=False):
        times = [os.stat(os.path.join(directory, n)).st_mtime_ns for n in files + dirs]
        if times:
            os.utime(directory, ns=(max(times), max(times)))


def main() -> int:
    ap = corpus_parser(21)
    ap.add_argument("--keep", action="store_true", help="keep the generated corpus")
    ap.add_argument("--peer-dir", type=Path,
                    default=Path.home() / ".cache" / "tokline-bench" / CCUSAGE.replace("@", "-"),
                    help="where ccusage is installed (default: %(default)s)")
    ap.add_argument("--no-peer", action="store_true", help="do not time ccusage")
    args = ap.parse_args()

    python, tokline = venv_programs(args.venv)
    work = Path(tempfile.mkdtemp(prefix="tokline-bench-"))
    corpus = args.corpus or work / "corpus"
    if args.corpus is None:
        print(f"generating a {args.size} corpus in {corpus} ...", flush=True)
        generate(corpus, args.size, 7)
    age_files(corpus)
    age_directories(corpus)
    files = [str(p) for p in corpus.rglob("*.jsonl")]
    corpus_bytes = sum(os.path.getsize(f) for f in files)
    env = private_env(corpus, work)
    ledger = work / "data" / "tokline" / "ledger.sqlite3"

    subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)  # warm the cache
    floor = median([python, "-c", "pass"], env, args.runs)
    cats = [timed(["sh", "-c", 'cat "$@" > /dev/null', "cat", *files], env) for _ in range(5)]
    cat, cat_cpu = statistics.median(c[0] for c in cats), statistics.median(c[2] for c in cats)

    # The cold scan, its rows written by the compiled writer and by the twin, in turn.
    writers = {"C API writer": env, "executemany (twin)": {**env, "TOKLINE_WRITER": "python"}}
    colds: dict[str, list[tuple[float, int, float]]] = {name: [] for name in writers}
    for _ in range(5):
        for name, writer_env in writers.items():
            shutil.rmtree(ledger.parent, ignore_errors=True)
            colds[name].append(timed([tokline, "scan", "-q"], writer_env))
    cold = statistics.median(c[0] for c in colds["C API writer"])
    cold_rss = max(c[1] for c in colds["C API writer"]) / 1024
    peer: list[tuple[float, int, float]] = []
    if not args.no_peer:
        launcher = str(install_peer(args.peer_dir))
        peer_cmd = [launcher, "daily", "--json", "--offline"]
        timed(peer_cmd, env)  # its first run, as tokline's first cold scan is not timed
        for _ in range(5):
            peer.append(timed(peer_cmd, env))
    shutil.rmtree(ledger.parent, ignore_errors=True)
    subprocess.run([tokline, "scan", "-q"], env=env, check=True, stderr=subprocess.DEVNULL)

    subprocess.run([tokline, "refresh"], env=env, check=True)
    nochange = median([tokline, "refresh"], env, args.runs)
    nochange_full = median([tokline, "scan", "-q"], env, args.runs)

    # The appends go to the newest sessions, which a user has open: make them live first
    # (a refresh stats live files every time and the rest at most once a minute, see
    # tokline/prompt/manifest.py), as they are when someone is working in them.
    # Twice: the generator squeezes an append's lines between its last run and now, so
    # after hours away the first one can leave a session's newest line (and mtime) over an
    # hour old, and a refresh stats such a finished session only once a minute.
    for _ in range(2):
        subprocess.run([sys.executable, str(GENCORPUS), "--out", str(corpus), "--append-mb",
                        "1"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([tokline, "scan", "-q"], env=env, check=True)
    appends: list[float] = []
    for _ in range(5):
        subprocess.run([sys.executable, str(GENCORPUS), "--out", str(corpus), "--append-mb", "5"],
                       check=True, stdout=subprocess.DEVNULL)
        appends.append(timed([tokline, "refresh"], env)[0])
    append = statistics.median(appends)

    # No scan before the totals: the timed refreshes must have taken in every append.
    truth = json.loads((corpus / "ground_truth.json").read_text())

    def totals(source: str) -> dict[str, int]:
        out = subprocess.run([tokline, "daily", "--json", "--offline", "--tz", "UTC",
                              "--source", source], env=env, capture_output=True, text=True,
                             check=True)
        result: dict[str, int] = json.loads(out.stdout)["totals"]
        return result

    claude, codex = totals("claude"), totals("codex")
    want, want_codex = truth["claude"]["totals"], truth["codex"]["totals"]
    exact = (claude["input_tokens"], claude["output_tokens"], claude["cache_creation_tokens"],
             claude["cache_read_tokens"]) == (want["input"], want["output"],
                                              want["cache_creation"], want["cache_read"]) and (
        codex["input_tokens"] + codex["cache_read_tokens"], codex["cache_read_tokens"],
        codex["output_tokens"]) == (want_codex["input"], want_codex["cached_input"],
                                    want_codex["output"])

    print(f"\ncorpus: {corpus_bytes / 1e9:.2f} GB in {len(files)} files; interpreter {python};"
          f" load average {os.getloadavg()[0]:.2f}")
    print(f"{'measure':<34}{'seconds':>10}{'x floor':>10}{'x cat':>8}")
    print(f"{'floor (python -c pass)':<34}{floor:>10.4f}{1:>10.2f}")
    print(f"{'cat of the corpus':<34}{cat:>10.4f}{cat / floor:>10.2f}{1:>8.2f}"
          f"   CPU {cat_cpu:.3f} s")
    print(f"{'cold scan':<34}{cold:>10.4f}{cold / floor:>10.2f}{cold / cat:>8.2f}"
          f"   peak RSS {cold_rss:.1f} MiB")
    for name, runs in colds.items():
        wall = statistics.median(c[0] for c in runs)
        cpu = statistics.median(c[2] for c in runs)
        print(f"{'  ' + name:<34}{wall:>10.4f}{'':>10}{wall / cat:>8.2f}   CPU {cpu:.3f} s"
              f" ({cpu / cat_cpu:.2f} x cat's), peak RSS {max(c[1] for c in runs) / 1024:.1f}"
              " MiB")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cold_cpu = statistics.median(c[2] for c in colds["C API writer"])
    # No schedule of the cold scan's CPU seconds over this machine's cores is shorter.
    print(f"{'  its CPU over ' + str(cores) + ' cores':<34}{cold_cpu / (cores or 1):>10.4f}"
          f"{'':>10}{cold_cpu / (cores or 1) / cat:>8.2f}   (the wall time of a perfect"
          " overlap)")
    if peer:
        wall = statistics.median(c[0] for c in peer)
        cpu = statistics.median(c[2] for c in peer)
        print(f"{'  ' + CCUSAGE + ' daily':<34}{wall:>10.4f}{'':>10}{wall / cat:>8.2f}   CPU"
              f" {cpu:.3f} s, peak RSS {max(c[1] for c in peer) / 1024:.1f} MiB;"
              f" tokline's cold scan takes {cold / wall:.2f} x its time")
    print(f"{'refresh, nothing changed':<34}{nochange:>10.4f}{nochange / floor:>10.2f}")
    print(f"{'  (scan -q, every file stat-ed)':<34}{nochange_full:>10.4f}"
          f"{nochange_full / floor:>10.2f}")
    print(f"{'refresh after 5 MiB appended':<34}{append:>10.4f}{append / floor:>10.2f}")
    print(f"Claude and Codex totals equal ground truth: {exact}")
    if not exact:
        print(f"  claude counted {claude} against {want}\n  codex counted {codex} against"
              f" {want_codex}")
    subprocess.run([python, str(ROOT / "bench" / "ledger_write.py"), "--corpus", str(corpus),
                    "--venv", str(args.venv), "--runs", "5"], check=True)
    if not args.keep and args.corpus is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        shutil.rmtree(work / "data", ignore_errors=True)
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
