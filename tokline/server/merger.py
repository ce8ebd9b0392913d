"""The merger: one thread per server process merging pushed segments into the people's
rows and sums (tokline/server/ingest.py ``merge_next``), so that a push is answered as
soon as its segment is stored.

It wakes when a push of this process was stored, and every ``POLL_S`` besides (for
segments another server process took and left: it stopped, or it runs no merger), and
merges until nothing waits.  At start it merges what an earlier run left.  A failed
merge rolls back whole and is tried again after a pause that doubles up to a minute;
the segment waits, stored, meanwhile.  Stopping waits for the merge in hand to commit.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from sqlalchemy.engine import Engine

from tokline.server import ingest
from tokline.server.db import writer

log = logging.getLogger("tokline.server")
POLL_S = 5.0
MAX_PAUSE_S = 60.0


class Merger:
    def __init__(self, engine: Engine, cost_of: ingest.CostFn) -> None:
        self.writer = writer(engine)
        self.cost_of = cost_of
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tokline-merger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        """A segment was stored: merge it now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def drain(self) -> int:
        """Merge until nothing waits (or stopping); how many segments were merged."""
        merged = 0
        while not self._stopping:
            started = time.perf_counter()
            with self.writer.begin() as conn:
                done = ingest.merge_next(conn, self.cost_of)
            if done is None:
                break
            merged += done["segments"]
            for reason in done.pop("refused"):
                log.error(json.dumps({"event": "merge_refused", "segment": reason}))
            log.info(json.dumps({"event": "merge", **done,
                                 "ms": round(1000 * (time.perf_counter() - started), 1)}))
        return merged

    def _run(self) -> None:
        pause = 1.0
        while not self._stopping:
            self._wake.clear()  # a push from now on wakes the wait below at once
            try:
                self.drain()
                pause = 1.0
            except Exception as exc:  # the database may be away a while: try again
                log.error(json.dumps({"event": "merge_failed",
                                      "error": f"{type(exc).__name__}: {exc}"[:300],
                                      "retry_s": pause}))
                self._wake.wait(pause)
                pause = min(2 * pause, MAX_PAUSE_S)
                continue
            self._wake.wait(POLL_S)
