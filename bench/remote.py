#!/usr/bin/env python3
"""Remote-quota figures against local fake providers on 127.0.0.1.

    python bench/remote.py [--venv VENV] [--runs 31] [--refreshes 100]

1. A provider answering 429 (``Retry-After: 120``): ``--refreshes`` background refreshes
   (``tokline refresh --remote``, what a stale prompt starts), counting the requests that
   reach the server.  At most one may.
2. A hung provider (accepts, never answers) while its fetch is in flight:
   ``tokline status`` medians against the floor, ``VENV/bin/python -c pass``.
Runs on a small gencorpus history in a temporary home; keys come from env variables.
"""

from __future__ import annotations

import argparse
import http.server
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import generate, private_env, venv_programs, wall

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


class Limited(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = b'{"error":{"code":429,"message":"Rate limit exceeded"}}'
        self.send_response(429)
        self.send_header("Retry-After", "120")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Hung(Limited):
    def do_GET(self) -> None:
        type(self).hits += 1
        time.sleep(30)


def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.HTTPServer:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", type=Path, default=Path(sys.prefix))
    ap.add_argument("--runs", type=int, default=31)
    ap.add_argument("--refreshes", type=int, default=100)
    args = ap.parse_args()
    python, tokline = venv_programs(args.venv)
    work = Path(tempfile.mkdtemp(prefix="tokline-remote-bench-"))
    generate(work / "home", "5M", 3)
    limited, hung = serve(Limited), serve(Hung)
    env = private_env(work / "home", work, TOKLINE_OPENROUTER_KEY="sk-or-v1-bench",
                      TOKLINE_OPENROUTER_BASE_URL=f"http://127.0.0.1:{limited.server_port}/api/v1")
    subprocess.run([tokline, "scan", "-q"], env=env, check=True)

    started = time.perf_counter()
    for _ in range(args.refreshes):
        subprocess.run([tokline, "refresh", "--remote"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spent = time.perf_counter() - started
    limited_hits = Limited.hits

    hung_env = {**env, "TOKLINE_OPENROUTER_BASE_URL":
                f"http://127.0.0.1:{hung.server_port}/api/v1",
                "XDG_STATE_HOME": str(work / "state-hung")}
    subprocess.run([tokline, "scan", "-q"], env=hung_env, check=True)
    fetcher = subprocess.Popen([tokline, "refresh", "--remote"], env=hung_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while Hung.hits == 0 and fetcher.poll() is None:
        time.sleep(0.01)
    floor = statistics.median(wall([python, "-c", "pass"], hung_env) for _ in range(args.runs))
    status = statistics.median(wall([tokline, "status"], hung_env) for _ in range(args.runs))
    in_flight = fetcher.poll() is None
    fetcher.wait()

    print(f"{args.refreshes} refreshes in {spent:.1f}s against a provider answering 429 "
          f"(Retry-After 120): {limited_hits} request(s) reached it")
    print(f"{'measure':<52}{'seconds':>10}{'x floor':>10}")
    print(f"{'floor (python -c pass)':<52}{floor:>10.4f}{1:>10.2f}")
    print(f"{'tokline status, a provider hung mid-fetch':<52}{status:>10.4f}"
          f"{status / floor:>10.2f}")
    print("the hung fetch was still in flight when the timing ended" if in_flight
          else "the hung fetch had already given up (5 s timeout) when the timing ended")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if limited_hits == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
