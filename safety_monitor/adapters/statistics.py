"""Owns the numerical statistics of the DSMB report: exact intervals (scipy) and Kaplan-Meier estimates (lifelines)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

from safety_monitor.service.ports import KaplanMeier

with warnings.catch_warnings():  # lifelines and its plotting stack may warn at import on newer Python versions
    warnings.simplefilter("ignore")
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times
    from scipy.stats import beta, chi2


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


class ScipyStatistics:
    """Statistics port over scipy (chi-square and beta quantiles) and lifelines (Kaplan-Meier)."""

    def poisson_interval(self, events: int, confidence: float = 0.95) -> tuple[float, float]:
        # Exact Poisson limits (Garwood 1936), chi-square form: [chi2(a/2; 2k)/2, chi2(1-a/2; 2k+2)/2].
        tail = (1.0 - confidence) / 2.0
        low = 0.0 if events == 0 else float(chi2.ppf(tail, 2 * events)) / 2.0
        high = float(chi2.ppf(1.0 - tail, 2 * events + 2)) / 2.0
        return low, high

    def clopper_pearson(self, successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
        # Clopper & Pearson (1934) through beta quantiles: [B(a/2; x, n-x+1), B(1-a/2; x+1, n-x)].
        if trials == 0:
            return 0.0, 1.0
        tail = (1.0 - confidence) / 2.0
        low = 0.0 if successes == 0 else float(beta.ppf(tail, successes, trials - successes + 1))
        high = 1.0 if successes == trials else float(beta.ppf(1.0 - tail, successes + 1, trials - successes))
        return low, high

    def kaplan_meier(self, durations: Sequence[float], observed: Sequence[bool]) -> KaplanMeier:
        events = sum(1 for o in observed if o)
        if not durations:
            return KaplanMeier((), None, (None, None), 0, 0)
        fitter = KaplanMeierFitter()
        fitter.fit(list(durations), event_observed=[bool(o) for o in observed])
        table = fitter.event_table
        survival = fitter.survival_function_.iloc[:, 0]
        steps = tuple(
            (
                float(t),
                float(survival.loc[t]),
                int(table.loc[t, "at_risk"]),
                int(table.loc[t, "observed"]),
                int(table.loc[t, "censored"]),
            )
            for t in table.index
        )
        median = _finite(float(fitter.median_survival_time_))
        interval = median_survival_times(fitter.confidence_interval_)
        low, high = (_finite(float(v)) for v in interval.iloc[0])
        return KaplanMeier(steps, median, (low, high), events, len(durations) - events)
