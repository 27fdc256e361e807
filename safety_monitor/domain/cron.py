"""Owns what the domain knows of a cron schedule: its expression, its time zone and its latest firing time."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message says what to write instead."""


class CronSchedule(Protocol):
    """`minute hour day-of-month month day-of-week`, read as wall-clock time in `time_zone` (parsed and evaluated
    at the edge, in `ruleset/cron.py`: the domain only asks when it last fired)."""

    @property
    def expression(self) -> str: ...

    @property
    def time_zone(self) -> str: ...

    def latest_at_or_before(self, now: datetime) -> datetime | None:
        """The most recent firing time (UTC) at or before `now`, or None if it never fired in the past year."""
        ...
