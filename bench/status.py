#!/usr/bin/env python3
"""Status-path benchmark: ``tokline status`` and ``tokline statusline`` against the floor.

    python bench/status.py [--corpus DIR] [--size 1G] [--venv VENV] [--runs 31]

Figures: ``tokline status`` with a fresh snapshot; ``tokline statusline`` (Claude Code's
hook, the shared payload fixture on stdin) in steady state on the corpus; and how many
refreshes 50 concurrent ``tokline status`` calls start on a stale snapshot; then, with the
resident refresher running (``tokline service run``), how soon the bash prompt shows an
appended line and how many refreshes prompts start (none expected).  The floor
is ``VENV/bin/python -c pass``.  Medians of whole processes, all in one run.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import corpus_parser, generate, private_env, venv_programs, wall

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main() -> int:
    args = corpus_parser(31).parse_args()
    python, tokline = venv_programs(args.venv)
    work = Path(tempfile.mkdtemp(prefix="tokline-status-bench-"))
    corpus = args.corpus or work / "corpus"
    if args.corpus is None:
        generate(corpus, args.size, 7)
    env = private_env(corpus, work)
    started = time.perf_counter()
    subprocess.run([tokline, "scan", "-q"], env=env, check=True)
    print(f"ledger and snapshot built in {time.perf_counter() - started:.2f}s")
    payload = json.loads((SHARED / "fixtures" / "claude-statusline" / "payload.example.json")
                         .read_text())
    payload["rate_limits"]["five_hour"]["resets_at"] = int(time.time()) + 3 * 3600
    payload["rate_limits"]["seven_day"]["resets_at"] = int(time.time()) + 5 * 86400
    raw = json.dumps(payload).encode()
    subprocess.run([tokline, "statusline"], env=env, input=raw, stdout=subprocess.DEVNULL,
                   check=True)
    time.sleep(1.0)  # the refresh the new rate limits started
    subprocess.run([tokline, "refresh"], env=env, check=True)

    def median(cmd: list[str], stdin: bytes | None = None) -> float:
        return statistics.median(wall(cmd, env, stdin) for _ in range(args.runs))

    floor = median([python, "-c", "pass"])
    status = median([tokline, "status"])
    statusline = median([tokline, "statusline"], raw)
    floor_again = median([python, "-c", "pass"])
    floor = min(floor, floor_again)

    state = work / "state" / "tokline"
    then = time.time() - 600
    # Ten minutes old: the head's CHECKED (what readers measure the age from) and the
    # files' mtimes (what older installs measured it from).
    lines = state / "status.lines"
    head, rest = lines.read_text().split("\n", 1)
    fields = head.split()
    fields[6] = str(int(float(fields[6])) - 600)
    lines.write_text(" ".join(fields) + "\n" + rest)
    for name in ("status.lines", "snapshot.json"):
        os.utime(state / name, (then, then))
    log = work / "refreshes.log"
    stale_env = {**env, "TOKLINE_REFRESH_LOG": str(log)}
    procs = [subprocess.Popen([tokline, "status"], env=stale_env, stdout=subprocess.DEVNULL)
             for _ in range(50)]
    for proc in procs:
        proc.wait()
    deadline = time.time() + 30
    while time.time() < deadline and (state / "refresh.lock").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    refreshes = len(log.read_text().splitlines()) if log.exists() else 0

    resident = resident_figures(tokline, env, corpus, work, log)

    print(f"\ncorpus {corpus}; interpreter {python}")
    print(f"{'measure':<44}{'seconds':>10}{'x floor':>10}")
    print(f"{'floor (python -c pass)':<44}{floor:>10.4f}{1:>10.2f}")
    print(f"{'tokline status, fresh snapshot':<44}{status:>10.4f}{status / floor:>10.2f}")
    print(f"{'tokline statusline, steady state':<44}{statusline:>10.4f}"
          f"{statusline / floor:>10.2f}")
    print(f"50 concurrent status calls on a stale snapshot started {refreshes} refresh(es)")
    lags = sorted(resident["lags"])
    print(f"resident refresher: {len(lags)} appends shown by the bash prompt after "
          f"p50 {statistics.median(lags):.3f}s, max {lags[-1]:.3f}s; refreshes started by "
          f"prompts over {resident['seconds']:.0f}s: {resident['prompt_refreshes']}")
    shutil.rmtree(work if args.corpus is None else work / "data", ignore_errors=True)
    ok = refreshes == 1 and lags[-1] < 1.0 and resident["prompt_refreshes"] == 0
    return 0 if ok else 1


def resident_figures(tokline: str, env: dict[str, str], corpus: Path, work: Path,
                     log: Path) -> dict[str, object]:
    """With ``tokline service run`` going: how long after a line is appended the bash
    hook shows its spend, and how many refreshes prompts start meanwhile (none, if the
    resident refresher keeps the status current)."""
    # only today's cost on the line: it changes with new spend alone (the default one
    # also has the block's time left, which changes by the minute)
    config = work / "config" / "tokline" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[status]\ntemplate = "{today.cost}"\n')
    hook = work / "init.bash"
    hook.write_text(subprocess.run([tokline, "init", "bash"], env=env, capture_output=True,
                                   text=True, check=True).stdout)
    env = {**env, "TOKLINE_REFRESH_LOG": str(log)}

    def shown() -> str:
        return subprocess.run(["bash", "--norc", "--noprofile", "-c",
                               f'source "{hook}"; __tokline_update; printf %s "$TOKLINE_STATUS"'],
                              env=env, capture_output=True, text=True, check=True).stdout

    service = subprocess.Popen([tokline, "service", "run"], env=env)
    session = corpus / ".claude" / "projects" / "bench-resident" / "resident.jsonl"
    session.parent.mkdir(parents=True, exist_ok=True)
    lags = []
    try:
        deadline = time.time() + 60
        while "running (pid" not in subprocess.run(
                [tokline, "service", "status"], env=env, capture_output=True, text=True).stdout:
            if time.time() > deadline:
                raise SystemExit("the resident refresher did not start")
            time.sleep(0.1)
        log.unlink(missing_ok=True)
        started = time.time()
        before = shown()
        for n in range(20):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            line = {"type": "assistant", "timestamp": stamp, "requestId": f"bench-r{n}",
                    "sessionId": "bench-resident",
                    "message": {"id": f"bench-r{n}", "model": "claude-sonnet-4-5",
                                "usage": {"input_tokens": 2_000_000, "output_tokens": 9000}}}
            with session.open("a") as fh:
                fh.write(json.dumps(line) + "\n")
            appended = time.perf_counter()
            while (now := shown()) == before and time.perf_counter() - appended < 10:
                time.sleep(0.01)
            lags.append(time.perf_counter() - appended)
            before = now
            time.sleep(1.5)  # prompts in between: 30 s in all, three refresh intervals
        seconds = time.time() - started
    finally:
        service.terminate()
        service.wait(30)
        shutil.rmtree(session.parent, ignore_errors=True)
        config.unlink()
    prompt_refreshes = len(log.read_text().splitlines()) if log.exists() else 0
    return {"lags": lags, "seconds": seconds, "prompt_refreshes": prompt_refreshes}


if __name__ == "__main__":
    raise SystemExit(main())
