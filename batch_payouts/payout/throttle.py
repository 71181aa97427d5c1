"""One rate limit shared by every worker.

Conekta limits requests per account, not per connection, so the limit must be
shared: a token bucket all workers draw from (``--rate-limit``), and a 429 that
pauses *every* worker until its ``Retry-After`` has passed and lowers the rate
for a while (multiplicative decrease, slow recovery), instead of letting the
other workers keep hammering the API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# After a 429 the rate drops to this share of what it was, never below MIN_SHARE
# of the configured rate; each granted request wins back RECOVERY of the gap.
DECREASE = 0.7
MIN_SHARE = 0.25
RECOVERY = 0.02


class RateLimiter:
    """Token bucket (``rate`` requests per second, bursts up to ``burst``).

    ``rate=None`` means no client-side limit; the shared pause after a 429
    still applies.  Clock and sleep are injectable for tests.
    """

    def __init__(
        self,
        rate: float | None = None,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.configured = rate
        self.rate = rate
        self.burst = burst if burst is not None else (max(1.0, rate / 10) if rate else 1.0)
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until this request may go out."""
        while True:
            with self._lock:
                wait = self._reserve()
            if wait <= 0:
                return
            self._sleep(wait)

    def _reserve(self) -> float:
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        if self.rate is None:
            return 0.0
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1 - 1e-9:  # tolerance: float sums of waits land just short of 1
            self._tokens = max(0.0, self._tokens - 1)
            self.rate += (self.configured - self.rate) * RECOVERY
            return 0.0
        return (1 - self._tokens) / self.rate

    def penalize(self, seconds: float) -> None:
        """A 429 arrived: pause every worker for ``seconds`` and slow down."""
        with self._lock:
            now = self._clock()
            self._paused_until = max(self._paused_until, now + seconds)
            if self.rate is not None:
                self.rate = max(self.configured * MIN_SHARE, self.rate * DECREASE)
                self._tokens = 0.0
                self._updated = self._paused_until
