"""The cohort condition evaluated on many looks at once gives what it gives look by look, whatever the dates."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from safety_monitor.domain.conditions.cohort import BetaBinomial, CohortCondition, Sprt, _counted_from, _on_or_before
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.incidence import AeFact

START = date(2025, 11, 20)
TERMS = ("pneumonitis", "haemoptysis", "rash")


def _partial(day: date, precision: int) -> PartialDate:
    if precision == 0:
        return PartialDate(day.year, text=f"{day.year}")
    if precision == 1:
        return PartialDate(day.year, day.month, text=f"{day.year}-{day.month:02d}")
    return PartialDate(day.year, day.month, day.day, text=day.isoformat())


partial_dates = st.one_of(
    st.none(),
    st.builds(_partial, st.integers(0, 500).map(lambda n: START + timedelta(days=n)), st.integers(0, 2)),
)


@given(partial_dates, st.integers(-40, 540))
@settings(max_examples=3000)
def test_a_date_counts_from_one_day_on(value: PartialDate | None, offset: int) -> None:
    on = START + timedelta(days=offset)
    assert _on_or_before(value, on) == (on >= _counted_from(value))


def test_a_truncated_date_counts_from_the_day_before_its_period_begins() -> None:
    # Compared with the day after the look at the precision given, "2026-03" is undecidable against 2026-03-01,
    # so a look on 2026-02-28 counts it; a look on 2026-02-27 does not.
    assert _counted_from(PartialDate(2026, 3, text="2026-03")) == date(2026, 2, 28)
    assert _counted_from(PartialDate(2026, text="2026")) == date(2025, 12, 31)
    assert _counted_from(PartialDate(2026, 3, 5, text="2026-03-05")) == date(2026, 3, 5)


facts = st.lists(
    st.builds(
        AeFact,
        study_id=st.sampled_from(("S1", "S2")),
        subject_id=st.sampled_from([f"{n:03d}" for n in range(25)]),
        soc=st.just("Respiratory"),
        pt=st.sampled_from((*TERMS, "Pneumonitis")),
        grade=st.integers(1, 5),
        onset_date=partial_dates,
    ),
    max_size=60,
)
first_doses = st.dictionaries(
    st.tuples(st.sampled_from(("S1", "S2")), st.sampled_from([f"{n:03d}" for n in range(30)])),
    st.one_of(st.none(), st.integers(0, 400).map(lambda n: START + timedelta(days=n))),
    max_size=40,
)
boundaries = st.sampled_from((BetaBinomial(0.2, 1, 1, 0.9), Sprt(0.1, 0.3, 0.05, 0.2)))


@given(
    facts,
    first_doses,
    st.lists(st.integers(-30, 520).map(lambda n: START + timedelta(days=n)), max_size=12),
    st.integers(0, 60),
    st.integers(1, 4),
    boundaries,
)
@settings(max_examples=400, deadline=None)
def test_many_looks_at_once_equal_each_look_alone(
    ae_facts: list[AeFact],
    doses: dict[tuple[str, str], date | None],
    looks: list[date],
    min_days: int,
    grade: int,
    boundary: BetaBinomial | Sprt,
) -> None:
    condition = CohortCondition(frozenset({"pneumonitis", "haemoptysis"}), grade, boundary, min_days)
    for study in ("S1", "S2"):
        many = condition.evaluate_many(study, looks, ae_facts, doses)
        assert set(many) == set(looks)
        for on in looks:
            assert many[on] == condition.evaluate(study, on, ae_facts, doses)
