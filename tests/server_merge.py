"""Waiting for the team server's merger (tokline/server/merger.py): a push is answered
once its segment is stored, and its rows reach the person's sums a moment later, so a
test that pushes and then reads the sums waits for this first."""

from __future__ import annotations

import json
import time
import urllib.request


def wait_merged(base: str, timeout: float = 60) -> None:
    """Wait until the server at ``base`` (http://127.0.0.1:PORT) has no pushed segment
    waiting to be merged (its ``/healthz`` says how many wait)."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(base + "/healthz", timeout=5) as answer:
            health = json.loads(answer.read())
        if health["merge_backlog"] == 0:
            return
        assert time.monotonic() < deadline, f"segments still wait to be merged: {health}"
        time.sleep(0.05)
