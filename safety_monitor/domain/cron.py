"""Owns cron schedules in a time zone: five-field expressions and the latest firing time at or before an instant."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_MONTHS = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_LOOKBACK_DAYS = 400  # every valid expression fires within a year (29 February within 8: refused below)


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message says what to write instead."""


def _number(text: str, name: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise CronError(f"{name} field: {text!r} is not a number")
    return int(text)


def _parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    names = _MONTHS if name == "month" else _DAYS if name == "day of week" else {}
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name} field: step {step_text!r} must be a whole number above 0")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _number(first, name, names), _number(last, name, names)
        else:
            start = _number(body, name, names)
            end = high if step_text else start
        for value in (start, end):
            if not low <= value <= high:
                raise CronError(f"{name} field: {value} is out of range {low}-{high}")
        if start > end:
            raise CronError(f"{name} field: range {body!r} runs backwards")
        values.update(range(start, end + 1, step))
    if name == "day of week" and 7 in values:  # 0 and 7 are both Sunday
        values = (values - {7}) | {0}
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """`minute hour day-of-month month day-of-week` (cron's rules: lists, ranges, steps, names; when both day
    fields are restricted either may match), read as wall-clock time in `time_zone`."""

    expression: str
    time_zone: str
    minutes: frozenset[int] = field(compare=False, repr=False)
    hours: frozenset[int] = field(compare=False, repr=False)
    days: frozenset[int] = field(compare=False, repr=False)
    months: frozenset[int] = field(compare=False, repr=False)
    weekdays: frozenset[int] = field(compare=False, repr=False)
    any_day: bool = field(compare=False, repr=False)
    any_weekday: bool = field(compare=False, repr=False)

    @classmethod
    def parse(cls, expression: str, time_zone: str) -> CronSchedule:
        """Raises CronError naming the field at fault, or the unknown time zone."""
        parts = expression.split()
        if len(parts) != 5:
            raise CronError(
                f"{expression!r} has {len(parts)} field(s); cron needs 5: minute hour day-of-month month "
                "day-of-week (e.g. '0 8 * * *' for 08:00 every day)"
            )
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CronError(f"unknown time zone {time_zone!r}: use an IANA name such as 'Asia/Shanghai'") from None
        sets = [_parse_field(p, n, lo, hi) for p, (n, lo, hi) in zip(parts, _FIELDS, strict=True)]
        if sets[2] and min(sets[2]) > 29 and sets[3] <= {2}:
            raise CronError(f"{expression!r} never fires: February has no day {min(sets[2])}")
        minutes, hours, days, months, weekdays = sets
        return cls(expression, time_zone, minutes, hours, days, months, weekdays, parts[2] == "*", parts[4] == "*")

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def latest_at_or_before(self, now: datetime) -> datetime | None:
        """The most recent firing time (UTC) at or before `now`. A wall-clock time skipped by a daylight-saving
        change does not fire that day; one that occurs twice fires at its first occurrence."""
        zone = ZoneInfo(self.time_zone)
        local_now = now.astimezone(zone)
        day = local_now.date()
        for _ in range(_LOOKBACK_DAYS):
            if self._day_matches(day):
                for hour in sorted(self.hours, reverse=True):
                    for minute in sorted(self.minutes, reverse=True):
                        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                        if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
                            continue  # does not exist on this day (clocks moved forward)
                        instant = local.astimezone(UTC)
                        if instant <= now:
                            return instant
            day -= timedelta(days=1)
        return None
