"""Owns SDTM ISO 8601 dates that may be partial ("2014", "2014-03", "2014-03-05T10:20")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

# SDTM IG 3.x section 4.4: --DTC variables are ISO 8601 and may be reduced-precision by right truncation
# ("2014-03"). Interior omission with hyphens ("2014---05") is also allowed by the IG but is not produced
# by the EDC systems this service talks to; it is refused with a reason rather than guessed.
_ISO_DTC = re.compile(
    r"^(?P<year>\d{4})"
    r"(?:-(?P<month>\d{2})"
    r"(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2})(?::(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?)?)?"
    r")?)?$"
)


class InvalidDate(ValueError):
    """An --DTC value that is not an ISO 8601 date SDTM allows."""


@dataclass(frozen=True, slots=True, order=True)
class PartialDate:
    """An SDTM date, possibly truncated on the right; `text` is kept exactly as the site sent it."""

    year: int
    month: int | None = None
    day: int | None = None
    text: str = ""

    @staticmethod
    def parse(text: str) -> PartialDate:
        return _parse(text)

    @classmethod
    def _parse_uncached(cls, text: str) -> PartialDate:
        match = _ISO_DTC.match(text.strip())
        if match is None:
            raise InvalidDate(
                f"{text!r} is not an ISO 8601 date; SDTM expects YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss]"
            )
        year = int(match["year"])
        month = int(match["month"]) if match["month"] else None
        day = int(match["day"]) if match["day"] else None
        if month is not None and not 1 <= month <= 12:
            raise InvalidDate(f"{text!r}: month {month} does not exist")
        if day is not None:
            assert month is not None
            try:
                date(year, month, day)
            except ValueError as exc:
                raise InvalidDate(f"{text!r}: {exc}") from None
        if match["hour"] is not None:
            hour, minute = int(match["hour"]), int(match["minute"] or 0)
            second = int(match["second"] or 0)
            if hour > 23 or minute > 59 or second > 59:
                raise InvalidDate(f"{text!r}: time of day out of range")
        return cls(year, month, day, text.strip())

    @property
    def is_complete(self) -> bool:
        return self.day is not None

    def as_date(self) -> date | None:
        """The calendar date when the day is known, else None."""
        if self.month is None or self.day is None:
            return None
        return date(self.year, self.month, self.day)

    def on_or_after(self, reference: date) -> bool | None:
        """Whether this date is on or after `reference`, compared at the precision given; None if undecidable."""
        if self.year != reference.year:
            return self.year > reference.year
        if self.month is None:
            return None
        if self.month != reference.month:
            return self.month > reference.month
        if self.day is None:
            return None
        return self.day >= reference.day


@lru_cache(maxsize=65536)
def _parse(text: str) -> PartialDate:
    # Values are immutable and the same dates are read again and again (histories, baselines): parse once.
    return PartialDate._parse_uncached(text)
