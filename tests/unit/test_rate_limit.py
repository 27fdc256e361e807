"""The per-site token bucket: a burst, a steady refill with the time passed in, a refusal that says when the same
request fits and costs nothing, and one site's flood leaving another's allowance whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from safety_monitor.domain.rate_limit import Allowance, SiteRateLimiter, Verdict

T0 = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)


def test_a_burst_then_a_refusal_that_says_when_the_request_fits() -> None:
    limiter = SiteRateLimiter(Allowance(per_second=10, burst=100))
    assert limiter.take("012", 100, T0) == Verdict(True)
    assert limiter.take("012", 25, T0) == Verdict(False, 3)  # 25 messages at 10 a second: 2.5 s, rounded up
    assert limiter.take("012", 25, T0 + timedelta(seconds=2)) == Verdict(False, 1)  # the refusal cost nothing
    assert limiter.take("012", 25, T0 + timedelta(seconds=2.5)) == Verdict(True)
    assert limiter.take("012", 1, T0 + timedelta(seconds=2.5)) == Verdict(False, 1)


def test_refill_stops_at_the_burst_and_a_clock_stepping_back_refills_nothing() -> None:
    limiter = SiteRateLimiter(Allowance(per_second=10, burst=50))
    assert limiter.take("012", 50, T0).allowed
    assert limiter.take("012", 50, T0 + timedelta(hours=1)).allowed
    assert not limiter.take("012", 1, T0 + timedelta(hours=1)).allowed
    assert not limiter.take("012", 1, T0).allowed  # the clock went back an hour: no tokens for it
    assert limiter.take("012", 10, T0 + timedelta(hours=1, seconds=1)).allowed


def test_one_sites_flood_does_not_touch_another_sites_allowance() -> None:
    limiter = SiteRateLimiter(Allowance(per_second=1, burst=5))
    assert limiter.take("012", 5, T0).allowed
    for _ in range(10):
        assert not limiter.take("012", 1, T0).allowed
    assert limiter.take("034", 5, T0).allowed


def test_a_request_beyond_the_burst_never_fits_and_an_empty_one_costs_one() -> None:
    limiter = SiteRateLimiter(Allowance(per_second=4, burst=8))
    assert limiter.take("012", 9, T0) == Verdict(False, 2)
    for _ in range(8):
        assert limiter.take("012", 0, T0).allowed
    assert not limiter.take("012", 0, T0).allowed


@pytest.mark.parametrize(("per_second", "burst"), [(0, 10), (-1, 10), (1, 0)])
def test_an_allowance_that_lets_nothing_through_is_refused(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError, match="per_second > 0 and burst >= 1"):
        Allowance(per_second, burst)
