"""The revision mark of `hys_law` and `persistent`: results collected on or after a day change no occurrence placed
before the mark, and the occurrences from the mark on are those of the stretch read from `lookback_days` before.

This is the proof the batch evaluation rests on (service/patterns.py reads only that stretch), checked over random
liver histories with long runs above 5 x ULN, cholestatic ALP and late results of every kind.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from safety_monitor.domain.conditions.pattern import (
    GradedFinding,
    PatternCondition,
    PatternMatch,
    occurrence_mark,
)
from tests.unit.test_patterns import HYS, PERSIST, result

START = date(2026, 3, 2)
ULN = {"ALT": 40.0, "AST": 35.0, "BILI": 20.5, "ALP": 100.0}
# x ULN: below every limit, between them, and above (Hy's law 3 / 2 / 2, persisting > 5).
RATIOS = (0.6, 1.5, 2.2, 3.2, 5.5, 7.0)


@st.composite
def results(draw: st.DrawFn, days: int) -> list[GradedFinding]:
    """Draws of a subject over `days` days: ALT always, AST, bilirubin and ALP sometimes; times vary within a day."""
    rows: list[GradedFinding] = []
    day = draw(st.integers(0, 6))
    while day < days:
        on = START + timedelta(days=day)
        at = f"{on.isoformat()}T{draw(st.sampled_from(['07:30', '08:00', '14:00']))}"
        for test in ("ALT", "AST", "BILI", "ALP"):
            if test == "ALT" or draw(st.booleans()):
                ratio = draw(st.sampled_from(RATIOS))
                rows.append((result(test, round(ratio * ULN[test], 1), at, uln=ULN[test]), ()))
        day += draw(st.integers(1, 12))
    return rows


def _placed(matches: list[PatternMatch]) -> dict[str, PatternMatch]:
    return {m.occurrence: m for m in matches}


def _check(condition: PatternCondition, history: list[GradedFinding], late: list[GradedFinding], first: date) -> None:
    before = _placed(condition.evaluate(history))
    now = [*history, *late]
    after = _placed(condition.evaluate(now))
    since = first - timedelta(days=condition.lookback_days)
    stretch = [r for r in now if (day := r[0].collected_at.as_date()) is not None and day >= since]
    mark = condition.revision_mark(stretch, first)
    if mark is None:
        return  # the whole history is evaluated then: nothing to prove
    settled = {o for o in after if (placed := occurrence_mark(o)) is not None and placed < mark}
    # Before the mark nothing changed: the same occurrences, with the same evidence and detail.
    assert {o: after[o] for o in settled} == {o: m for o, m in before.items() if occurrence_mark(o) < mark}  # type: ignore[operator]
    # From the mark on, the stretch gives exactly what the whole history gives.
    from_stretch = _placed(condition.evaluate(stretch))
    revised = {o: m for o, m in after.items() if o not in settled}
    assert {o: m for o, m in from_stretch.items() if not occurrence_mark(o) < mark} == revised  # type: ignore[operator]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), condition=st.sampled_from([HYS, PERSIST]))
def test_results_collected_from_a_day_on_change_nothing_before_the_mark(
    data: st.DataObject, condition: PatternCondition
) -> None:
    history = data.draw(results(160))
    offset = timedelta(days=data.draw(st.integers(20, 170)))
    late: list[GradedFinding] = []  # results of up to 60 days, arriving after the history, from `offset` on
    for f, grades in data.draw(results(60)):
        day = f.collected_at.as_date()
        assert day is not None
        on = (day + offset).isoformat() + f.collected_at.text[10:]
        late.append((result(f.test_code, f.value or 0.0, on, uln=f.uln), grades))
    first = min((d for f, _ in late if (d := f.collected_at.as_date()) is not None), default=START + offset)
    _check(condition, history, late, first)


def test_hys_law_marks_the_first_changed_day_and_persistent_the_last_break_before_it() -> None:
    history: list[GradedFinding] = [
        (result("ALT", 300, "2026-04-01T08:00", uln=40), ()),  # > 5 x ULN
        (result("ALT", 100, "2026-04-08T08:00", uln=40), ()),  # breaks the run
        (result("ALT", 300, "2026-04-15T08:00", uln=40), ()),
        (result("ALT", 300, "2026-04-29T08:00", uln=40), ()),
    ]
    assert HYS.revision_mark(history, date(2026, 4, 29)) == (date(2026, 4, 29), "")
    assert PERSIST.revision_mark(history, date(2026, 4, 29)) == (date(2026, 4, 8), "2026-04-08T08:00")
    # Without a break before the day, the run may reach further back than what was read.
    assert PERSIST.revision_mark(history[2:], date(2026, 4, 29)) is None
    assert PERSIST.revision_mark(history, date(2026, 4, 8)) is None  # a break on the day itself does not count


def test_a_late_bilirubin_finds_the_aminotransferase_elevation_exactly_a_window_before() -> None:
    """The edge of the stretch: ALT >= 3 x ULN on 1 April and a bilirubin >= 2 x ULN of 15 April (14 days, the
    window's last day) that arrives after later results: the stretch from 14 days before still holds the ALT."""
    history: list[GradedFinding] = [
        (result("ALT", 130, "2026-04-01T08:00", uln=40), ()),
        (result("ALT", 30, "2026-04-20T08:00", uln=40), ()),
    ]
    late: list[GradedFinding] = [(result("BILI", 45, "2026-04-15T08:00", uln=20.5), ())]
    _check(HYS, history, late, date(2026, 4, 15))
    stretch = [r for r in [*history, *late] if r[0].collected_at.text >= "2026-04-01"]
    assert [m.occurrence for m in HYS.evaluate(stretch)] == ["2026-04-15T08:00"]
    assert HYS.lookback_days == 14
