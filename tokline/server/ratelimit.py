"""Token buckets per key (a client address, a user): the limits on sign-in, device codes
and pushes.  Kept in the process: behind a balancer each app server limits on its own
(README "Scaling")."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the call may go on, else the seconds until it could."""
        now = time.monotonic()
        with self.lock:
            tokens, then = self.buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self.buckets[key] = (tokens - 1, now)
                if len(self.buckets) > 100_000:  # forget the idle ones
                    self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < 600}
                return 0.0
            self.buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
