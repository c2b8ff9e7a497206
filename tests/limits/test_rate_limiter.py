"""The token bucket behind every abuse limit, on a clock the test moves."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubgate.limits import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refused_with_the_wait_then_refilled() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") is None  # keys are independent
    clock.now += 0.5
    assert limiter.take("a") is None
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 100
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]  # never above the burst


def test_spend_and_blocked_count_failures_without_taking_more() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1 / 20, burst=3, clock=clock)
    for _ in range(2):
        limiter.spend("10.0.0.1")
        assert limiter.blocked("10.0.0.1") is None
    limiter.spend("10.0.0.1")
    assert limiter.blocked("10.0.0.1") == pytest.approx(20.0)
    limiter.spend("10.0.0.1")  # a failure while refused does not deepen the hole
    assert limiter.blocked("10.0.0.1") == pytest.approx(20.0)
    clock.now += 20
    assert limiter.blocked("10.0.0.1") is None


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=10)
    for key in range(1000):
        limiter.take(key)
    assert len(limiter._buckets) == 10


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (1, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimiter(rate=rate, burst=burst)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.1, 100),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 5), min_size=1, max_size=200),
)
def test_never_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = Clock()
    limiter = RateLimiter(rate=rate, burst=burst, clock=clock)
    granted = 0
    for gap in gaps:
        clock.now += gap
        wait = limiter.take("k")
        if wait is None:
            granted += 1
        else:
            assert 0 < wait <= 1 / rate + 1e-9
    assert granted <= burst + rate * sum(gaps) + 1e-6
