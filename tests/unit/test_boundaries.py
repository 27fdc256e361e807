"""Tests the cohort stopping boundaries: incomplete beta, beta-binomial and SPRT tables, status, exact OCs."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from fractions import Fraction

import pytest

from safety_monitor.domain.boundaries import (
    BoundaryStatus,
    StoppingRow,
    beta_binomial_posterior_exceeds,
    beta_binomial_stop_at,
    beta_binomial_table,
    check_looks,
    evaluate_beta_binomial,
    evaluate_sprt,
    operating_characteristics,
    regularized_incomplete_beta,
    sprt_boundaries,
    sprt_llr,
    sprt_stop_at,
    sprt_table,
)

LOOKS = (5, 10, 15, 20, 25, 30, 35, 40)

# Issue 4 worked values: beta-binomial theta=0.10, Beta(0.2, 1.8), cutoff 0.90, looks every 5 to 40.
BETA_BINOMIAL_WORKED = (2, 3, 4, 5, 5, 6, 7, 7)
# Issue 4 worked values: SPRT p0=0.10, p1=0.25, alpha=0.05, beta=0.20, looks every 5 to 40.
SPRT_WORKED = (4, 5, 6, 6, 7, 8, 9, 10)


def exact_integer_beta_cdf(x: Fraction, a: int, b: int) -> float:
    """I_x(a, b) for whole a, b: Pr(Binomial(a + b - 1, x) >= a), summed in exact rational arithmetic."""
    m = a + b - 1
    return float(sum(math.comb(m, j) * x**j * (1 - x) ** (m - j) for j in range(a, m + 1)))


# --- regularized incomplete beta ----------------------------------------------------------------------------


@pytest.mark.parametrize("a", [1, 2, 3, 5, 10, 30, 100, 400])
@pytest.mark.parametrize("b", [1, 2, 7, 20, 50, 300])
@pytest.mark.parametrize("x", ["0.001", "0.01", "0.1", "0.25", "0.5", "0.75", "0.9", "0.999"])
def test_incomplete_beta_matches_binomial_sum_for_whole_parameters(a: int, b: int, x: str) -> None:
    exact = exact_integer_beta_cdf(Fraction(x), a, b)
    assert regularized_incomplete_beta(float(Fraction(x)), a, b) == pytest.approx(exact, rel=0, abs=1e-12)


@pytest.mark.parametrize("a", [0.05, 0.2, 0.5, 1.5, 7.25, 60.5, 250.5])
def test_incomplete_beta_is_one_half_at_the_centre_of_a_symmetric_beta(a: float) -> None:
    assert regularized_incomplete_beta(0.5, a, a) == pytest.approx(0.5, rel=0, abs=1e-12)


@pytest.mark.parametrize("x", [1e-6, 0.01, 0.3, 0.5, 0.77, 0.99])
def test_incomplete_beta_arcsine_law(x: float) -> None:
    # Beta(1/2, 1/2) is the arcsine distribution: I_x(1/2, 1/2) = (2/pi) asin(sqrt(x)).
    expected = 2.0 / math.pi * math.asin(math.sqrt(x))
    assert regularized_incomplete_beta(x, 0.5, 0.5) == pytest.approx(expected, rel=0, abs=1e-12)


@pytest.mark.parametrize("a", [0.1, 0.2, 1.7, 13.3])
@pytest.mark.parametrize("x", [1e-6, 0.01, 0.3, 0.5, 0.77, 0.99])
def test_incomplete_beta_closed_forms_with_a_unit_parameter(a: float, x: float) -> None:
    # I_x(a, 1) = x^a and I_x(1, b) = 1 - (1 - x)^b.
    assert regularized_incomplete_beta(x, a, 1.0) == pytest.approx(x**a, rel=0, abs=1e-12)
    assert regularized_incomplete_beta(x, 1.0, a) == pytest.approx(-math.expm1(a * math.log1p(-x)), rel=0, abs=1e-12)


@pytest.mark.parametrize(("a", "b"), [(0.2, 1.8), (2.2, 38.8), (7.2, 33.8), (0.5, 3.0), (45.0, 2.5)])
@pytest.mark.parametrize("x", [0.05, 0.1, 0.4, 0.9])
def test_incomplete_beta_reflection_and_recurrence(a: float, b: float, x: float) -> None:
    value = regularized_incomplete_beta(x, a, b)
    assert value + regularized_incomplete_beta(1.0 - x, b, a) == pytest.approx(1.0, rel=0, abs=1e-12)
    # DLMF 8.17.20: I_x(a + 1, b) = I_x(a, b) - x^a (1 - x)^b / (a B(a, b)).
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    step = math.exp(a * math.log(x) + b * math.log1p(-x) - log_beta) / a
    assert regularized_incomplete_beta(x, a + 1.0, b) == pytest.approx(value - step, rel=0, abs=1e-12)


def test_incomplete_beta_end_points() -> None:
    assert regularized_incomplete_beta(0.0, 0.2, 1.8) == 0.0
    assert regularized_incomplete_beta(1.0, 0.2, 1.8) == 1.0


# --- Bayesian beta-binomial (Thall, Simon & Estey 1995) -----------------------------------------------------


def test_beta_binomial_worked_table_from_issue_4() -> None:
    table = beta_binomial_table(0.10, 0.2, 1.8, 0.90, LOOKS)
    assert [row.as_dict() for row in table] == [
        {"n": n, "stop_at": stop_at} for n, stop_at in zip(LOOKS, BETA_BINOMIAL_WORKED, strict=True)
    ]


@pytest.mark.parametrize(("n", "stop_at"), list(zip(LOOKS, BETA_BINOMIAL_WORKED, strict=True)), ids=str)
def test_beta_binomial_worked_look_is_the_fewest_events_that_stop(n: int, stop_at: int) -> None:
    assert beta_binomial_stop_at(0.10, 0.2, 1.8, 0.90, n) == stop_at
    assert beta_binomial_posterior_exceeds(0.10, 0.2, 1.8, stop_at, n) > 0.90
    assert beta_binomial_posterior_exceeds(0.10, 0.2, 1.8, stop_at - 1, n) <= 0.90


def test_beta_binomial_posterior_with_a_uniform_prior_is_a_binomial_sum() -> None:
    # Uniform prior, 3 events in 12: posterior Beta(4, 10); Pr(rate > 0.2) = 1 - I_0.2(4, 10).
    expected = 1.0 - exact_integer_beta_cdf(Fraction(1, 5), 4, 10)
    assert beta_binomial_posterior_exceeds(0.2, 1.0, 1.0, 3, 12) == pytest.approx(expected, rel=0, abs=1e-12)


def test_beta_binomial_posterior_without_data_is_the_prior_tail() -> None:
    assert beta_binomial_posterior_exceeds(0.3, 1.0, 1.0, 0, 0) == pytest.approx(0.7, rel=0, abs=1e-12)


def test_beta_binomial_cannot_stop_when_even_all_events_do_not_cross() -> None:
    # Beta(0.2, 1.8), one subject who had the event: posterior Beta(1.2, 1.8), Pr(rate > 0.10) = 0.88 < 0.99.
    assert beta_binomial_stop_at(0.10, 0.2, 1.8, 0.99, 1) is None


def test_beta_binomial_tie_with_the_cutoff_does_not_stop() -> None:
    # Uniform prior, no data: Pr(rate > 0.1) = 0.9 exactly; the convention is "> cutoff": 0.9 does not stop.
    assert evaluate_beta_binomial(0.1, 1.0, 1.0, 0.9, 0, 0).crossed is False
    assert evaluate_beta_binomial(0.1, 1.0, 1.0, 0.89, 0, 0).crossed is True


def test_evaluate_beta_binomial_reports_posterior_beside_the_cutoff() -> None:
    status = evaluate_beta_binomial(0.10, 0.2, 1.8, 0.90, 2, 5)
    assert status == BoundaryStatus(
        statistic=beta_binomial_posterior_exceeds(0.10, 0.2, 1.8, 2, 5), boundary=0.90, crossed=True
    )
    assert status.statistic == pytest.approx(0.91959395, abs=1e-8)
    assert evaluate_beta_binomial(0.10, 0.2, 1.8, 0.90, 1, 5).crossed is False
    assert status.lower is None
    assert status.below_lower is False


# --- Wald SPRT (Wald 1945) ----------------------------------------------------------------------------------


def test_sprt_worked_table_from_issue_4() -> None:
    table = sprt_table(0.10, 0.25, 0.05, 0.20, LOOKS)
    assert table == tuple(StoppingRow(n, s) for n, s in zip(LOOKS, SPRT_WORKED, strict=True))


@pytest.mark.parametrize(("n", "stop_at"), list(zip(LOOKS, SPRT_WORKED, strict=True)), ids=str)
def test_sprt_worked_look_is_the_fewest_events_reaching_the_upper_boundary(n: int, stop_at: int) -> None:
    _, upper = sprt_boundaries(0.05, 0.20)
    assert sprt_stop_at(0.10, 0.25, 0.05, 0.20, n) == stop_at
    assert sprt_llr(0.10, 0.25, stop_at, n) >= upper
    assert sprt_llr(0.10, 0.25, stop_at - 1, n) < upper


@pytest.mark.parametrize(
    ("x", "n", "expected"),
    [
        (0, 0, 0.0),
        (4, 5, 4 * math.log(2.5) + math.log(0.75 / 0.9)),
        (0, 10, 10 * math.log(0.75 / 0.9)),
        (10, 40, 10 * math.log(2.5) + 30 * math.log(0.75 / 0.9)),
    ],
    ids=["no data", "4/5", "0/10", "10/40"],
)
def test_sprt_llr_values(x: int, n: int, expected: float) -> None:
    assert sprt_llr(0.10, 0.25, x, n) == pytest.approx(expected, rel=1e-14, abs=1e-14)


def test_sprt_boundaries_are_walds() -> None:
    lower, upper = sprt_boundaries(0.05, 0.20)
    assert upper == pytest.approx(math.log(16.0), rel=1e-15)
    assert lower == pytest.approx(math.log(0.20 / 0.95), rel=1e-15)


def test_sprt_tie_with_the_upper_boundary_stops() -> None:
    # p0=0.25, p1=0.5: two events in two subjects give LLR = 2 log 2 = log 4 = log((1 - 0.2) / 0.2) exactly.
    assert sprt_stop_at(0.25, 0.5, 0.2, 0.2, 2) == 2


def test_sprt_cannot_stop_on_too_few_subjects() -> None:
    assert [sprt_stop_at(0.10, 0.25, 0.05, 0.20, n) for n in (1, 2, 3)] == [None, None, None]


def test_evaluate_sprt_reports_llr_and_both_boundaries() -> None:
    lower, upper = sprt_boundaries(0.05, 0.20)
    status = evaluate_sprt(0.10, 0.25, 0.05, 0.20, 4, 5)
    assert status == BoundaryStatus(statistic=sprt_llr(0.10, 0.25, 4, 5), boundary=upper, crossed=True, lower=lower)
    assert status.below_lower is False
    quiet = evaluate_sprt(0.10, 0.25, 0.05, 0.20, 0, 10)
    assert quiet.crossed is False
    assert quiet.below_lower is True  # LLR -1.82 <= log(0.2 / 0.95) = -1.56


# --- operating characteristics ------------------------------------------------------------------------------


def brute_force_oc(table: tuple[StoppingRow, ...], rate: float) -> tuple[list[float], float]:
    """Probability of stopping at each look and the expected n, by enumerating every outcome sequence."""
    total = table[-1].n
    p_at = [0.0] * len(table)
    expected_n = 0.0
    for outcome in itertools.product((0, 1), repeat=total):
        weight = rate ** sum(outcome) * (1.0 - rate) ** (total - sum(outcome))
        end = total
        for index, row in enumerate(table):
            if row.stop_at is not None and sum(outcome[: row.n]) >= row.stop_at:
                p_at[index] += weight
                end = row.n
                break
        expected_n += end * weight
    return p_at, expected_n


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.2, 0.5, 0.9, 1.0])
@pytest.mark.parametrize(
    "table",
    [
        (StoppingRow(2, 2), StoppingRow(4, 2), StoppingRow(7, 3), StoppingRow(10, 4)),
        (StoppingRow(1, None), StoppingRow(3, 2), StoppingRow(6, None), StoppingRow(9, 3)),
        sprt_table(0.10, 0.25, 0.05, 0.20, (4, 8, 12)),
    ],
    ids=["every-look", "some-looks-cannot-stop", "sprt-4-8-12"],
)
def test_operating_characteristics_match_brute_force_enumeration(table: tuple[StoppingRow, ...], rate: float) -> None:
    p_at, expected_n = brute_force_oc(table, rate)
    oc = operating_characteristics(table, rate)
    assert [look.p_stop_at for look in oc.looks] == pytest.approx(p_at, rel=0, abs=1e-12)
    assert [look.p_stop_by for look in oc.looks] == pytest.approx(list(itertools.accumulate(p_at)), rel=0, abs=1e-12)
    assert oc.p_stop == pytest.approx(sum(p_at), rel=0, abs=1e-12)
    assert oc.expected_n == pytest.approx(expected_n, rel=0, abs=1e-10)
    assert [look.n for look in oc.looks] == [row.n for row in table]


RATES = [0.0, 0.01, 0.05, 0.10, 0.15, 0.20, 0.30, 0.50, 0.80, 1.0]


@pytest.mark.parametrize(
    "table",
    [beta_binomial_table(0.10, 0.2, 1.8, 0.90, LOOKS), sprt_table(0.10, 0.25, 0.05, 0.20, LOOKS)],
    ids=["beta-binomial", "sprt"],
)
def test_operating_characteristics_are_probabilities_monotone_in_the_true_rate(
    table: tuple[StoppingRow, ...],
) -> None:
    ocs = [operating_characteristics(table, rate) for rate in RATES]
    for oc in ocs:
        assert all(0.0 <= look.p_stop_at <= 1.0 and 0.0 <= look.p_stop_by <= 1.0 for look in oc.looks)
        by = [look.p_stop_by for look in oc.looks]
        assert by == sorted(by)
        assert oc.p_stop == pytest.approx(by[-1], abs=1e-15)
        assert table[0].n <= oc.expected_n <= table[-1].n
    p_stop = [oc.p_stop for oc in ocs]
    assert p_stop == sorted(p_stop)
    expected_n = [oc.expected_n for oc in ocs]
    assert expected_n == sorted(expected_n, reverse=True)
    assert ocs[0].p_stop == 0.0  # no events ever: nothing stops
    assert ocs[0].expected_n == LOOKS[-1]
    assert ocs[-1].p_stop == 1.0  # every subject has the event: the first look stops
    assert ocs[-1].expected_n == LOOKS[0]


def test_beta_binomial_worked_design_operating_characteristics() -> None:
    table = beta_binomial_table(0.10, 0.2, 1.8, 0.90, LOOKS)
    # Spot values of the exact computation, to 1e-6 (computed with this module, checked against brute_force_oc
    # at smaller sizes and by the monotonicity above).
    assert operating_characteristics(table, 0.05).p_stop == pytest.approx(0.034869, abs=1e-6)
    assert operating_characteristics(table, 0.10).p_stop == pytest.approx(0.208297, abs=1e-6)
    assert operating_characteristics(table, 0.20).p_stop == pytest.approx(0.789236, abs=1e-6)
    # The first look stops on 2 or more events in 5: 1 - 0.95^5 - 5 * 0.05 * 0.95^4.
    first = operating_characteristics(table, 0.05).looks[0].p_stop_at
    assert first == pytest.approx(1 - 0.95**5 - 5 * 0.05 * 0.95**4, rel=0, abs=1e-15)


# --- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: beta_binomial_posterior_exceeds(1.5, 0.2, 1.8, 1, 5),
            "theta must be strictly between 0 and 1, got 1.5",
        ),
        (
            lambda: beta_binomial_posterior_exceeds(0.0, 0.2, 1.8, 1, 5),
            "theta must be strictly between 0 and 1, got 0.0",
        ),
        (
            lambda: beta_binomial_posterior_exceeds(0.1, 0.0, 1.8, 1, 5),
            "prior Beta(a, b) needs a > 0 and b > 0, got Beta(0.0, 1.8)",
        ),
        (
            lambda: beta_binomial_stop_at(0.1, 0.2, -1.0, 0.9, 5),
            "prior Beta(a, b) needs a > 0 and b > 0, got Beta(0.2, -1.0)",
        ),
        (
            lambda: beta_binomial_stop_at(0.1, 0.2, 1.8, 1.0, 5),
            "cutoff must be strictly between 0 and 1, got 1.0",
        ),
        (
            lambda: beta_binomial_posterior_exceeds(0.1, 0.2, 1.8, 6, 5),
            "events must be a whole number between 0 and the 5 evaluable subjects, got 6",
        ),
        (
            lambda: evaluate_beta_binomial(0.1, 0.2, 1.8, 0.9, 1, -2),
            "evaluable subjects must be a whole number >= 0, got -2",
        ),
        (
            lambda: sprt_llr(0.25, 0.10, 1, 5),
            "p0 must be below p1 (H0 is the acceptable rate), got p0=0.25, p1=0.1",
        ),
        (lambda: sprt_stop_at(0.10, 0.25, 0.0, 0.2, 5), "alpha must be strictly between 0 and 1, got 0.0"),
        (lambda: sprt_stop_at(0.10, 0.25, 0.05, 1.2, 5), "beta must be strictly between 0 and 1, got 1.2"),
        (lambda: sprt_boundaries(0.6, 0.5), "alpha + beta must be below 1, got alpha=0.6, beta=0.5"),
        (lambda: evaluate_sprt(0.10, 1.0, 0.05, 0.2, 1, 5), "p1 must be strictly between 0 and 1, got 1.0"),
        (lambda: check_looks([]), "looks must name at least one look"),
        (lambda: check_looks([10, 5]), "looks must be strictly increasing, got [10, 5]"),
        (lambda: check_looks([5, 5]), "looks must be strictly increasing, got [5, 5]"),
        (lambda: check_looks([0, 5]), "looks must be positive whole numbers, got [0, 5]"),
        (
            lambda: sprt_table(0.1, 0.25, 0.05, 0.2, [5, 7.5]),  # type: ignore[list-item]
            "looks must be positive whole numbers, got [5, 7.5]",
        ),
        (
            lambda: operating_characteristics((StoppingRow(5, 2),), 1.5),
            "true rate must be between 0 and 1, got 1.5",
        ),
        (
            lambda: operating_characteristics((StoppingRow(10, 2), StoppingRow(5, 2)), 0.1),
            "looks must be strictly increasing, got [10, 5]",
        ),
        (lambda: regularized_incomplete_beta(1.2, 1.0, 1.0), "x must be between 0 and 1, got 1.2"),
    ],
    ids=[
        "theta>1",
        "theta=0",
        "prior-a",
        "prior-b",
        "cutoff=1",
        "events>n",
        "n<0",
        "p0>=p1",
        "alpha=0",
        "beta>1",
        "alpha+beta>=1",
        "p1=1",
        "no-looks",
        "looks-decreasing",
        "looks-repeated",
        "look-zero",
        "look-fraction",
        "true-rate",
        "oc-looks",
        "x>1",
    ],
)
def test_invalid_parameters_raise_plain_messages(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call()
