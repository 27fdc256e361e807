"""Owns the per-site rate limit on publishing: a token bucket per site, refilled with the time passed in."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Allowance:
    """How many messages a site may send: `burst` at once, refilled at `per_second` (both whole messages)."""

    per_second: float = 2000.0
    burst: int = 20_000

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs per_second > 0 and burst >= 1")


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after_s: int = 0  # whole seconds (HTTP Retry-After) after which the same request fits; 0 when allowed


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: datetime


@dataclass
class SiteRateLimiter:
    """One token bucket per site, so a site that floods the endpoint uses up its own allowance, not the others'.

    A request of n messages takes n tokens or nothing: a refused request costs nothing, and its answer says when it
    would fit. A request larger than `burst` can never fit: the endpoint caps the batch size below it.
    """

    allowance: Allowance = field(default_factory=Allowance)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, site_id: str, messages: int, now: datetime) -> Verdict:
        cost = max(messages, 1)
        bucket = self._buckets.get(site_id)
        if bucket is None:
            bucket = self._buckets[site_id] = _Bucket(float(self.allowance.burst), now)
        elapsed = max((now - bucket.at).total_seconds(), 0.0)  # a clock stepping back refills nothing
        bucket.tokens = min(float(self.allowance.burst), bucket.tokens + elapsed * self.allowance.per_second)
        bucket.at = max(now, bucket.at)
        if cost > self.allowance.burst:
            return Verdict(False, math.ceil(self.allowance.burst / self.allowance.per_second))
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return Verdict(True)
        wait = (cost - bucket.tokens) / self.allowance.per_second
        return Verdict(False, max(1, math.ceil(wait)))
