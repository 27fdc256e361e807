"""SDTM partial dates: what is accepted, what is refused, how they compare with a first-dose date."""

from datetime import date

import pytest

from safety_monitor.domain.dates import InvalidDate, PartialDate


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("1977", (1977, None, None)),
        ("2014-03", (2014, 3, None)),
        ("2014-03-05", (2014, 3, 5)),
        ("2026-04-30T07:45", (2026, 4, 30)),
        ("2026-04-30T07:45:12", (2026, 4, 30)),
        ("2024-02-29", (2024, 2, 29)),
    ],
)
def test_accepts_what_sdtm_allows(text: str, parts: tuple[int, int | None, int | None]) -> None:
    parsed = PartialDate.parse(text)
    assert (parsed.year, parsed.month, parsed.day) == parts
    assert parsed.text == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-13-45", "month 13 does not exist"),
        ("2023-02-29", "day is out of range for month"),
        ("05/03/2026", "not an ISO 8601 date"),
        ("2014---05", "not an ISO 8601 date"),
        ("2026-04-30T25:00", "time of day out of range"),
        ("", "not an ISO 8601 date"),
    ],
)
def test_refuses_what_sdtm_does_not_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidDate, match=reason):
        PartialDate.parse(text)


@pytest.mark.parametrize(
    ("onset", "expected"),
    [
        ("2026-03-10", True),
        ("2026-03-09", False),
        ("2026-03-11", True),
        ("2026-03", None),  # same month: cannot tell
        ("2026-02", False),
        ("2026-04", True),
        ("2026", None),
        ("2025", False),
    ],
)
def test_on_or_after_compares_at_the_precision_given(onset: str, expected: bool | None) -> None:
    assert PartialDate.parse(onset).on_or_after(date(2026, 3, 10)) is expected
