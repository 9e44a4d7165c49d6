"""A token bucket shared by every worker: ``rate_per_second`` and ``rate_per_hour`` both hold."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens a second, at most ``capacity`` saved up. ``rate`` 0 means unlimited."""

    def __init__(self, rate: float, capacity: float, *, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self.tokens = self.capacity
        self.clock = clock
        self.stamp = clock()

    def wait_time(self, count: int) -> float:
        """Seconds until ``count`` tokens may be taken (0: now). Call with the limiter's lock held."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        needed = min(count, self.capacity)
        return 0.0 if self.tokens >= needed else (needed - self.tokens) / self.rate

    def take(self, count: int) -> None:
        if self.rate > 0:
            self.tokens -= count  # may go below zero for a batch larger than the bucket: the next wait is longer


class RateLimiter:
    """Blocks a worker until its batch fits under every limit. Thread-safe."""

    def __init__(self, per_second: float = 0.0, per_hour: float = 0.0, *, clock: Callable[[], float] = time.monotonic):
        self.buckets = [
            TokenBucket(per_second, per_second, clock=clock),
            TokenBucket(per_hour / 3600.0, per_hour / 60.0, clock=clock),  # an hour's limit, spread evenly
        ]
        self.lock = threading.Lock()

    @property
    def unlimited(self) -> bool:
        return all(bucket.rate <= 0 for bucket in self.buckets)

    def burst(self) -> int:
        """The largest batch that never outruns the per-second limit (0: no such limit)."""
        per_second = self.buckets[0]
        return int(per_second.capacity) if per_second.rate > 0 else 0

    def acquire(self, count: int, stop: threading.Event | None = None) -> bool:
        """Wait until ``count`` messages may go; False if ``stop`` was set while waiting."""
        if self.unlimited:
            return True
        while True:
            with self.lock:
                wait = max(bucket.wait_time(count) for bucket in self.buckets)
                if wait <= 0:
                    for bucket in self.buckets:
                        bucket.take(count)
                    return True
            if stop is not None:
                if stop.wait(min(wait, 1.0)):
                    return False
            else:
                time.sleep(min(wait, 1.0))
