"""The shared rate limiter, on a fake clock."""

import threading

import pytest

from batch_payouts.payout.throttle import RateLimiter


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_no_limit_never_waits():
    clock = FakeClock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        limiter.acquire()
    assert clock.slept == []


def test_rate_is_respected_over_time():
    clock = FakeClock()
    limiter = RateLimiter(10, burst=1, clock=clock, sleep=clock.sleep)
    for _ in range(101):
        limiter.acquire()
    assert clock.now == pytest.approx(10.0, rel=0.01)  # 100 intervals of 0.1 s


def test_429_pauses_everyone_and_slows_down():
    clock = FakeClock()
    limiter = RateLimiter(10, burst=1, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.penalize(2.0)
    limiter.acquire()
    assert clock.now >= 2.0
    assert limiter.rate == pytest.approx(7.0, abs=0.1)  # decreased, then one grant of recovery
    for _ in range(5):
        limiter.penalize(0)
    assert limiter.rate == pytest.approx(2.5)  # never below a quarter of the configured rate


def test_pause_applies_without_a_configured_rate():
    clock = FakeClock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    limiter.penalize(3.0)
    limiter.acquire()
    assert clock.now == pytest.approx(3.0)


def test_rate_recovers_after_429():
    clock = FakeClock()
    limiter = RateLimiter(10, burst=1, clock=clock, sleep=clock.sleep)
    limiter.penalize(0)
    for _ in range(300):
        limiter.acquire()
    assert limiter.rate > 9.9


def test_threads_share_one_bucket():
    limiter = RateLimiter(200, burst=1)
    granted = []
    lock = threading.Lock()

    def worker():
        for _ in range(10):
            limiter.acquire()
            with lock:
                granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 80


def test_rejects_non_positive_rate():
    with pytest.raises(ValueError):
        RateLimiter(0)
