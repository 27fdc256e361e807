"""Owns reading digest schedules: five-field cron expressions in a time zone, evaluated by cronsim.

cronsim (a small, typed, maintained cron evaluator, written to behave like Debian's cron) decides what an
expression means and when it fires: lists, ranges, steps, names, `L`, `LW` and `#`; when both day fields are
restricted either may match; a wall-clock time skipped by a daylight-saving change fires at the first minute
after the change (so a daily digest is never lost to it) and a time that occurs twice fires at its first
occurrence. This module only refuses what cron would not run, with a plain message naming the field at fault.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from safety_monitor.domain.cron import CronError

# (name, low, high) of the five fields, as cron numbers them (day of week: 0 and 7 are both Sunday)
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_NAMES = {
    "month": {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m},
    "day of week": {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}
_LOOKBACK = timedelta(days=400)  # every valid expression fires within a year


@dataclass(frozen=True, slots=True)
class Cron:
    """A digest schedule: a cron expression read in `time_zone` (the domain's CronSchedule)."""

    expression: str
    time_zone: str

    @classmethod
    def parse(cls, expression: str, time_zone: str) -> Cron:
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
        try:
            CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError:
            raise CronError(_why(expression, parts)) from None
        return cls(expression, time_zone)

    def latest_at_or_before(self, now: datetime) -> datetime | None:
        zone = ZoneInfo(self.time_zone)
        # cronsim going backwards yields firing times strictly before its start: start one second after `now`.
        start = now.astimezone(zone).replace(microsecond=0) + timedelta(seconds=1)
        for firing in CronSim(self.expression, start, reverse=True):
            instant = firing.astimezone(UTC)
            if now - instant > _LOOKBACK:
                return None
            if instant <= now:  # (a time moved past a daylight-saving gap may lie after `now`: go on back)
                return instant
        return None


def _why(expression: str, parts: list[str]) -> str:
    """The plain reason cron refuses `expression`: the first field at fault, or the day no month listed has."""
    for text, (name, low, high) in zip(parts, _FIELDS, strict=True):
        reason = _field_fault(text, name, low, high)
        if reason is not None:
            return f"{name} field: {reason}"
    try:
        months = sorted(_values(parts[3], "month", 1, 12))
        first_day = min(_values(parts[2], "day of month", 1, 31))
    except ValueError:  # an L, W or # form cronsim refuses for a reason not worded here
        return f"{expression!r} is not an expression cron can run: see crontab(5)"
    which = " or ".join(calendar.month_name[m] for m in months)
    return f"{expression!r} never fires: {which} has no day {first_day}"


def _number(text: str, name: str) -> int | str:
    """The field value `text` names (a number, or a month or weekday name), or why it is none."""
    if text.lower() in _NAMES.get(name, {}):
        return _NAMES[name][text.lower()]
    return int(text) if text.isdigit() else f"{text!r} is not a number"


def _field_fault(text: str, name: str, low: int, high: int) -> str | None:
    """Why cron refuses one field, or None. cronsim's L, W and # forms are not written out here: a field using
    them that cronsim refuses reads as "not a number"."""
    for part in text.split(","):
        body, slash, step = part.partition("/")
        if slash and (not step.isdigit() or int(step) == 0):
            return f"step {step!r} must be a whole number above 0"
        if body == "*":
            continue
        numbers = [_number(end, name) for end in body.split("-", 1)]
        for value in numbers:
            if isinstance(value, str):
                return value
            if not low <= value <= high:
                return f"{value} is out of range {low}-{high}"
        first, last = numbers[0], numbers[-1]
        if isinstance(first, int) and isinstance(last, int) and first > last:
            return f"range {body!r} runs backwards"
    return None


def _values(text: str, name: str, low: int, high: int) -> set[int]:
    """The values of a field `_field_fault` found nothing wrong with."""
    values: set[int] = set()
    for part in text.split(","):
        body, _, step = part.partition("/")
        if body == "*":
            start, end = low, high
        else:
            ends = [int(_number(end, name)) for end in body.split("-", 1)]
            start, end = ends[0], ends[-1]
            if step and len(ends) == 1:
                end = high
        values.update(range(start, end + 1, int(step or 1)))
    return values
