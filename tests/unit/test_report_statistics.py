"""The report's statistics against published values, a hand-worked Kaplan-Meier and an independent computation."""

from __future__ import annotations

import pytest

from safety_monitor.adapters.statistics import ScipyStatistics
from tests.report_oracle import clopper_pearson, kaplan_meier, km_median, poisson_exact

STATS = ScipyStatistics()

# Exact 95 % Poisson limits for an observed count (Garwood 1936; tabulated e.g. in Ulm K, Am J Epidemiol
# 1990;131:373-5, and in the Geigy Scientific Tables).
PUBLISHED_POISSON = {
    0: (0.0, 3.689),
    1: (0.0253, 5.572),
    2: (0.2422, 7.225),
    5: (1.6235, 11.668),
    10: (4.7954, 18.390),
}

# Clopper-Pearson 95 % intervals (Clopper & Pearson, Biometrika 1934;26:404-13; the values every exact binomial
# table gives).
PUBLISHED_CLOPPER_PEARSON = {
    (0, 10): (0.0, 0.3085),
    (5, 20): (0.0866, 0.4910),
    (10, 10): (0.6915, 1.0),
    (1, 30): (0.0008, 0.1722),
}


@pytest.mark.parametrize(("k", "published"), PUBLISHED_POISSON.items())
def test_exact_poisson_interval_matches_published_values(k: int, published: tuple[float, float]) -> None:
    low, high = STATS.poisson_interval(k)
    assert low == pytest.approx(published[0], abs=6e-4)
    assert high == pytest.approx(published[1], abs=6e-4)
    # and the chi-square form equals inverting the Poisson tails directly
    assert (low, high) == pytest.approx(poisson_exact(k), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("counts", "published"), PUBLISHED_CLOPPER_PEARSON.items())
def test_clopper_pearson_matches_published_values(counts: tuple[int, int], published: tuple[float, float]) -> None:
    low, high = STATS.clopper_pearson(*counts)
    assert (low, high) == pytest.approx(published, abs=6e-5)
    assert (low, high) == pytest.approx(clopper_pearson(*counts), rel=1e-9, abs=1e-12)


def test_kaplan_meier_steps_against_a_hand_worked_example() -> None:
    # Six subjects: events at 1, 2, 3, 5; censored at 2 and 4. By hand (product limit, a censoring at an event time
    # is still at risk there): S(1) = 5/6; S(2) = 5/6 * 4/5 = 2/3; S(3) = 2/3 * 2/3 = 4/9; S(4) = 4/9 (censored);
    # S(5) = 0. Median: the first time S <= 0.5, day 3.
    km = STATS.kaplan_meier([1, 2, 2, 3, 4, 5], [True, True, False, True, False, True])
    steps = {t: (s, n, d, c) for t, s, n, d, c in km.steps}
    assert steps[1] == pytest.approx((5 / 6, 6, 1, 0))
    assert steps[2] == pytest.approx((2 / 3, 5, 1, 1))
    assert steps[3] == pytest.approx((4 / 9, 3, 1, 0))
    assert steps[4] == pytest.approx((4 / 9, 2, 0, 1))
    assert steps[5] == pytest.approx((0.0, 1, 1, 0))
    assert (km.median, km.events, km.censored) == (3.0, 4, 2)


def test_kaplan_meier_on_the_published_6_mp_arm() -> None:
    # Freireich et al., Blood 1963 (6-MP arm, weeks in remission; + = censored), the classic worked example
    # (Kleinbaum & Klein, Survival Analysis, ch. 2): S(6) 0.857, S(7) 0.807, S(10) 0.753, S(13) 0.690,
    # S(16) 0.627, S(22) 0.538, S(23) 0.448; median 23 weeks.
    times = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
    observed = [True, True, True, False, True, False, True, False, False, True, True, False, False, False, True, True]
    observed += [False] * 5
    km = STATS.kaplan_meier(times, observed)
    steps = {t: s for t, s, _n, d, _c in km.steps if d}
    published = {6: 0.857, 7: 0.807, 10: 0.753, 13: 0.690, 16: 0.627, 22: 0.538, 23: 0.448}
    assert steps == pytest.approx(published, abs=5e-4)
    assert km.median == 23.0
    by_hand = kaplan_meier(times, observed)
    assert {float(t): s for t, s, _ in by_hand} == pytest.approx(steps)
    assert km_median(by_hand) == km.median


def test_kaplan_meier_without_events_has_no_median() -> None:
    km = STATS.kaplan_meier([0, 0, 30], [False, False, False])
    assert (km.median, km.median_ci, km.events, km.censored) == (None, (None, None), 0, 3)
    assert STATS.kaplan_meier([], []).steps == ()
