"""Owns cohort stopping boundaries: Bayesian beta-binomial and Wald SPRT tables, status and exact OCs.

Two monitoring designs used by DSMB charters for a cohort toxicity rate (docs/clinical-decisions.md, "The trial's
signals"):

- Bayesian beta-binomial monitoring after Thall, Simon & Estey (1995), "Bayesian sequential monitoring designs
  for single-arm clinical trials with multiple outcomes", Stat Med 14:357-379: with a Beta(a, b) prior on the
  toxicity rate, x events in n evaluable subjects give the posterior Beta(a + x, b + n - x); the cohort stops
  when Pr(rate > theta | x, n) > cutoff.
- Wald's sequential probability ratio test (Wald 1945, "Sequential tests of statistical hypotheses", Ann Math
  Stat 16:117-186) for a binomial rate, H0: p = p0 against H1: p = p1 > p0, with the boundaries
  A = log((1 - beta) / alpha) (stop: the rate is unacceptable) and B = log(beta / (1 - alpha)) (accept H0).

Operating characteristics are computed exactly, by dynamic programming over the binomial increments between
looks, never by simulation. Everything here is pure standard-library Python and deterministic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Values within this distance of a boundary are treated as lying on it, so that a tie that is exact in real
# arithmetic is not lost (or gained) by one rounding step. Both statistics are computed to ~1e-12 or better.
TIE_TOLERANCE = 1e-12

_CF_EPSILON = 1e-15  # relative change at which the continued fraction is taken as converged
_CF_TINY = 1e-300  # stands in for a zero denominator in the modified Lentz algorithm
_CF_MAX_TERMS = 100_000


# --- values -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoppingRow:
    """One look of a stopping table: at n evaluable subjects, stop when events >= stop_at (None: never)."""

    n: int
    stop_at: int | None

    def as_dict(self) -> dict[str, int | None]:
        return {"n": self.n, "stop_at": self.stop_at}


@dataclass(frozen=True, slots=True)
class LookCharacteristics:
    """Probability of stopping exactly at one look, and at or before it, under one true rate."""

    n: int
    p_stop_at: float
    p_stop_by: float


@dataclass(frozen=True, slots=True)
class OperatingCharacteristics:
    """Exact operating characteristics of a stopping table under one true event rate."""

    true_rate: float
    looks: tuple[LookCharacteristics, ...]
    p_stop: float  # probability of stopping at any look
    expected_n: float  # expected evaluable subjects when monitoring ends: at the stopping look, else the last look


@dataclass(frozen=True, slots=True)
class BoundaryStatus:
    """Where a cohort stands against its boundary: the statistic, the boundary it meets, and the verdict.

    For the beta-binomial design the statistic is Pr(rate > theta | data) and the boundary the cutoff; for the
    SPRT the statistic is the log-likelihood ratio, the boundary the upper (stop) boundary, and `lower` the
    accept-H0 boundary, which is reported but never stops safety monitoring.
    """

    statistic: float
    boundary: float
    crossed: bool
    lower: float | None = None

    @property
    def below_lower(self) -> bool:
        """SPRT only: the data favour H0 (the acceptable rate) at the test's error rates."""
        return self.lower is not None and self.statistic <= self.lower + TIE_TOLERANCE


# --- validation ---------------------------------------------------------------------------------------------


def _check_open_unit(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")


def _check_prior(a: float, b: float) -> None:
    if not (a > 0.0 and b > 0.0 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"prior Beta(a, b) needs a > 0 and b > 0, got Beta({a}, {b})")


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_counts(x: int, n: int) -> None:
    if not _is_whole(n) or n < 0:
        raise ValueError(f"evaluable subjects must be a whole number >= 0, got {n}")
    if not _is_whole(x) or not 0 <= x <= n:
        raise ValueError(f"events must be a whole number between 0 and the {n} evaluable subjects, got {x}")


def _check_sprt(p0: float, p1: float, alpha: float, beta: float) -> None:
    _check_open_unit("p0", p0)
    _check_open_unit("p1", p1)
    if not p0 < p1:
        raise ValueError(f"p0 must be below p1 (H0 is the acceptable rate), got p0={p0}, p1={p1}")
    _check_open_unit("alpha", alpha)
    _check_open_unit("beta", beta)
    if not alpha + beta < 1.0:
        raise ValueError(f"alpha + beta must be below 1, got alpha={alpha}, beta={beta}")


def check_looks(looks: Iterable[int]) -> tuple[int, ...]:
    """The looks as a tuple; ValueError unless they are strictly increasing positive whole numbers."""
    result = tuple(looks)
    if not result:
        raise ValueError("looks must name at least one look")
    if not all(_is_whole(n) and n > 0 for n in result):
        raise ValueError(f"looks must be positive whole numbers, got {list(result)}")
    if any(later <= earlier for earlier, later in itertools.pairwise(result)):
        raise ValueError(f"looks must be strictly increasing, got {list(result)}")
    return result


def check_true_rate(rate: float) -> None:
    """Raise ValueError unless rate is a probability in [0, 1]."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"true rate must be between 0 and 1, got {rate}")


# --- the regularized incomplete beta function ---------------------------------------------------------------


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _beta_continued_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of DLMF 8.17.22, 1/(1+ d1/(1+ d2/(1+ ...))), by the modified Lentz algorithm.

    d(2m+1) = -(a+m)(a+b+m)x / ((a+2m)(a+2m+1)),  d(2m) = m(b-m)x / ((a+2m-1)(a+2m)).
    It converges fast for x < (a+1)/(a+b+2); elsewhere the caller uses I_x(a,b) = 1 - I_(1-x)(b,a).
    """
    # Terms of the fraction as b0 + a1/(b1 + a2/(b2 + ...)) with b0 = 0, a1 = 1, a(j+1) = d(j), b(j) = 1.
    value = _CF_TINY
    c = value
    d = 0.0
    for j in range(1, _CF_MAX_TERMS):
        if j == 1:
            numerator = 1.0
        else:
            m = j - 1  # index of d
            k = m // 2
            if m % 2:
                numerator = -(a + k) * (a + b + k) * x / ((a + 2 * k) * (a + 2 * k + 1))
            else:
                numerator = k * (b - k) * x / ((a + 2 * k - 1) * (a + 2 * k))
        d = 1.0 + numerator * d
        if d == 0.0:
            d = _CF_TINY
        c = 1.0 + numerator / c
        if c == 0.0:
            c = _CF_TINY
        d = 1.0 / d
        delta = c * d
        value *= delta
        if abs(delta - 1.0) < _CF_EPSILON:
            return value
    raise ArithmeticError(f"incomplete beta continued fraction did not converge for x={x}, a={a}, b={b}")


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b): the Beta(a, b) distribution function at x, accurate to about 1e-12 absolute."""
    _check_prior(a, b)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be between 0 and 1, got {x}")
    if x == 0.0:
        return 0.0
    if x == 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - regularized_incomplete_beta(1.0 - x, b, a)
    front = math.exp(a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b)) / a
    return front * _beta_continued_fraction(x, a, b)


# --- Bayesian beta-binomial (Thall, Simon & Estey 1995) -----------------------------------------------------


def beta_binomial_posterior_exceeds(theta: float, a: float, b: float, x: int, n: int) -> float:
    """Pr(rate > theta | x events in n evaluable subjects) under a Beta(a, b) prior."""
    _check_open_unit("theta", theta)
    _check_prior(a, b)
    _check_counts(x, n)
    # The posterior is Beta(a + x, b + n - x); its upper tail at theta is I_(1-theta)(b + n - x, a + x).
    return regularized_incomplete_beta(1.0 - theta, b + n - x, a + x)


def _beta_binomial_crossed(posterior: float, cutoff: float) -> bool:
    # Convention (Thall, Simon & Estey 1995): stop when the posterior probability is strictly greater than the
    # cutoff; a value within TIE_TOLERANCE of the cutoff counts as equal to it and does not stop.
    return posterior > cutoff + TIE_TOLERANCE


def beta_binomial_stop_at(theta: float, a: float, b: float, cutoff: float, n: int) -> int | None:
    """Fewest events in n evaluable subjects that stop the cohort; None if even n events do not."""
    _check_open_unit("theta", theta)
    _check_prior(a, b)
    _check_open_unit("cutoff", cutoff)
    _check_counts(0, n)
    # Pr(rate > theta | x, n) increases with x, so the stopping region at a look is {x >= stop_at}.
    for x in range(n + 1):
        if _beta_binomial_crossed(beta_binomial_posterior_exceeds(theta, a, b, x, n), cutoff):
            return x
    return None


def beta_binomial_table(
    theta: float, a: float, b: float, cutoff: float, looks: Iterable[int]
) -> tuple[StoppingRow, ...]:
    """The stopping table of the beta-binomial design, one row per look."""
    return tuple(StoppingRow(n, beta_binomial_stop_at(theta, a, b, cutoff, n)) for n in check_looks(looks))


def evaluate_beta_binomial(
    theta: float, a: float, b: float, cutoff: float, events: int, evaluable: int
) -> BoundaryStatus:
    """The cohort's current posterior Pr(rate > theta) against the cutoff."""
    _check_open_unit("cutoff", cutoff)
    posterior = beta_binomial_posterior_exceeds(theta, a, b, events, evaluable)
    return BoundaryStatus(statistic=posterior, boundary=cutoff, crossed=_beta_binomial_crossed(posterior, cutoff))


# --- Wald SPRT for a binomial rate (Wald 1945) --------------------------------------------------------------


def sprt_llr(p0: float, p1: float, x: int, n: int) -> float:
    """Log-likelihood ratio of H1 (p1) to H0 (p0) after x events in n subjects."""
    _check_open_unit("p0", p0)
    _check_open_unit("p1", p1)
    if not p0 < p1:
        raise ValueError(f"p0 must be below p1 (H0 is the acceptable rate), got p0={p0}, p1={p1}")
    _check_counts(x, n)
    return x * math.log(p1 / p0) + (n - x) * (math.log1p(-p1) - math.log1p(-p0))


def sprt_boundaries(alpha: float, beta: float) -> tuple[float, float]:
    """Wald's (lower, upper) boundaries: (log(beta / (1 - alpha)), log((1 - beta) / alpha))."""
    _check_open_unit("alpha", alpha)
    _check_open_unit("beta", beta)
    if not alpha + beta < 1.0:
        raise ValueError(f"alpha + beta must be below 1, got alpha={alpha}, beta={beta}")
    return math.log(beta) - math.log1p(-alpha), math.log1p(-beta) - math.log(alpha)


def _sprt_crossed(llr: float, upper: float) -> bool:
    # Convention (Wald 1945): sampling continues while B < LLR < A and stops for H1 once LLR >= A; a value
    # within TIE_TOLERANCE below A counts as reaching it. The worked table of issue 4 has no ties (the closest
    # non-stopping count, 5 events in 15, is 0.014 below A), so >= and > give the same table there.
    return llr >= upper - TIE_TOLERANCE


def sprt_stop_at(p0: float, p1: float, alpha: float, beta: float, n: int) -> int | None:
    """Fewest events in n subjects with LLR >= log((1 - beta) / alpha); None if even n events fall short."""
    _check_sprt(p0, p1, alpha, beta)
    _check_counts(0, n)
    _, upper = sprt_boundaries(alpha, beta)
    # With p1 > p0 the LLR increases with x, so the stopping region at a look is {x >= stop_at}.
    for x in range(n + 1):
        if _sprt_crossed(sprt_llr(p0, p1, x, n), upper):
            return x
    return None


def sprt_table(p0: float, p1: float, alpha: float, beta: float, looks: Iterable[int]) -> tuple[StoppingRow, ...]:
    """The stopping table of the SPRT (upper boundary only), one row per look."""
    return tuple(StoppingRow(n, sprt_stop_at(p0, p1, alpha, beta, n)) for n in check_looks(looks))


def evaluate_sprt(p0: float, p1: float, alpha: float, beta: float, events: int, evaluable: int) -> BoundaryStatus:
    """The cohort's log-likelihood ratio against Wald's upper boundary, with the accept-H0 boundary."""
    _check_sprt(p0, p1, alpha, beta)
    lower, upper = sprt_boundaries(alpha, beta)
    llr = sprt_llr(p0, p1, events, evaluable)
    return BoundaryStatus(statistic=llr, boundary=upper, crossed=_sprt_crossed(llr, upper), lower=lower)


# --- operating characteristics ------------------------------------------------------------------------------


def _binomial_pmf(size: int, rate: float) -> list[float]:
    return [math.comb(size, k) * rate**k * (1.0 - rate) ** (size - k) for k in range(size + 1)]


def operating_characteristics(table: Sequence[StoppingRow], true_rate: float) -> OperatingCharacteristics:
    """Exact probability of stopping at each look, overall, and the expected sample size, under true_rate.

    Dynamic programming over the cumulative event count of the cohorts still being monitored: between looks
    the count grows by a Binomial(n_k - n_(k-1), true_rate) increment; at a look the mass at or above stop_at
    stops. Only the upper (stopping) boundary is applied: the SPRT's accept-H0 boundary does not end safety
    monitoring.
    """
    check_true_rate(true_rate)
    check_looks(row.n for row in table)
    continuing = [1.0]  # continuing[x]: Pr(not stopped yet and x events so far)
    previous_n = 0
    looks: list[LookCharacteristics] = []
    stopped_by = 0.0
    expected_n = 0.0
    for row in table:
        increment = _binomial_pmf(row.n - previous_n, true_rate)
        after = [0.0] * (row.n + 1)
        for x, p_x in enumerate(continuing):
            if p_x == 0.0:
                continue
            for k, p_k in enumerate(increment):
                after[x + k] += p_x * p_k
        p_stop_here = 0.0
        if row.stop_at is not None:
            p_stop_here = math.fsum(after[row.stop_at :])
            after[row.stop_at :] = [0.0] * (row.n + 1 - row.stop_at)
        stopped_by += p_stop_here
        expected_n += row.n * p_stop_here
        looks.append(LookCharacteristics(n=row.n, p_stop_at=p_stop_here, p_stop_by=min(stopped_by, 1.0)))
        continuing = after
        previous_n = row.n
    p_stop = min(stopped_by, 1.0)
    expected_n += previous_n * (1.0 - p_stop)
    return OperatingCharacteristics(true_rate=true_rate, looks=tuple(looks), p_stop=p_stop, expected_n=expected_n)
