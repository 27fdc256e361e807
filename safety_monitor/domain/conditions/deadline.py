"""Owns the `deadline` condition: the expedited-reporting clock of a potential SUSAR, and what is due when.

ICH E2A (Clinical Safety Data Management: Definitions and Standards for Expedited Reporting) and EU CT-3
(2011/C 172/01) section 7.2.3: a suspected unexpected serious adverse reaction is reported to the authorities
no later than 7 calendar days after the sponsor first knows of it when it is fatal or life-threatening, and no
later than 15 days otherwise. Here day 0 is the receipt of the first serious report of the case that is
suspected related to either study drug (the site's `sent_at`); expectedness against the reference safety
information is the reviewer's call, and an expected event closes the clock (docs/clinical-decisions.md,
"Expedited reporting clock"). A case that
becomes fatal or life-threatening in a follow-up is due 7 days after that follow-up's receipt, or at the 15-day
date, whichever is earlier. The clock closes on a report-submitted record or a review action.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from safety_monitor.domain.conditions.ae import DRUGS, causality, is_fatal
from safety_monitor.domain.messages import AdverseEvent

# Causality values that mean "suspected related" (the reasonable-possibility standard of ICH E2A).
DEFAULT_RELATED = frozenset({"POSSIBLE", "PROBABLE", "RELATED", "DEFINITE", "POSSIBLY RELATED", "PROBABLY RELATED"})

ClockKey = tuple[str, str, str]  # study_id, subject_id, AESPID: the case


class ClockStep(StrEnum):
    REMINDER = "reminder"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class DeadlineCondition:
    """Starts a clock for a serious AE suspected related to either drug; due after `fatal_days` / `other_days`."""

    related: frozenset[str] = DEFAULT_RELATED
    fatal_days: int = 7
    other_days: int = 15
    remind_days_before: tuple[int, ...] = (3, 1)  # descending: a reminder 3 days and 1 day before due

    kind = "deadline"

    def starts(self, event: AdverseEvent) -> bool:
        """Serious and suspected related to either study drug: a potential SUSAR whose clock runs."""
        return (event.serious or "").upper() == "Y" and any(causality(event, d) in self.related for d in DRUGS)

    @staticmethod
    def is_short(event: AdverseEvent) -> bool:
        """Fatal or life-threatening: the 7-day clock."""
        return is_fatal(event) or (event.life_threatening or "").upper() == "Y"


@dataclass(frozen=True, slots=True)
class SaeClock:
    """The reporting clock of one case, as stored: when it started, what is known, and what was sent."""

    study_id: str
    subject_id: str
    ae_spid: str
    rule_id: str
    started_at: datetime  # day 0: receipt of the first serious, suspected-related report
    start_msg_id: str
    short_known_at: datetime | None = None  # receipt of the first fatal / life-threatening version
    reminders_sent: int = 0
    overdue_sent: bool = False
    closed_at: datetime | None = None
    closed_reason: str | None = None  # "report submitted", "expected (RSI)", ...

    @property
    def key(self) -> ClockKey:
        return (self.study_id, self.subject_id, self.ae_spid)

    def due_at(self, condition: DeadlineCondition) -> datetime:
        due = self.started_at + timedelta(days=condition.other_days)
        if self.short_known_at is not None:
            due = min(due, self.short_known_at + timedelta(days=condition.fatal_days))
        return due

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


def on_report(
    clock: SaeClock | None, condition: DeadlineCondition, rule_id: str, event: AdverseEvent
) -> SaeClock | None:
    """The clock after a version of the case is applied; None when no clock runs (not a potential SUSAR yet).

    Receipt time is the site's `sent_at`, so a replay gives the same clock as the live run.
    """
    received = event.envelope.sent_at
    if clock is None:
        if not condition.starts(event):
            return None
        short = received if condition.is_short(event) else None
        return SaeClock(
            event.envelope.study_id,
            event.envelope.subject_id,
            event.ae_spid,
            rule_id,
            received,
            event.envelope.msg_id,
            short_known_at=short,
        )
    if clock.is_open and clock.short_known_at is None and condition.is_short(event):
        return replace(clock, short_known_at=max(received, clock.started_at))
    return clock


def due_step(clock: SaeClock, condition: DeadlineCondition, now: datetime) -> tuple[ClockStep, int] | None:
    """What the clock owes at `now`: the next reminder (with its number), overdue, or nothing."""
    if not clock.is_open:
        return None
    due = clock.due_at(condition)
    if now >= due:
        return None if clock.overdue_sent else (ClockStep.OVERDUE, 0)
    owed = sum(1 for days in condition.remind_days_before if now >= due - timedelta(days=days))
    if owed > clock.reminders_sent:
        return ClockStep.REMINDER, owed
    return None


def overdue_by(clock: SaeClock, condition: DeadlineCondition, now: datetime) -> timedelta | None:
    """How long past its due date an open clock is at `now` (None: closed, or not due yet)."""
    if not clock.is_open:
        return None
    late = now - clock.due_at(condition)
    return late if late >= timedelta(0) else None


def span(length: timedelta) -> str:
    """A duration as a reviewer reads it: "224 days", "3 days 4 hours", "5 hours", "12 minutes"."""
    minutes = int(length.total_seconds() // 60)
    days, hours = divmod(minutes // 60, 24)
    if days >= 7:
        return f"{days} days"
    if days:
        return f"{days} day{'s' if days > 1 else ''}" + (f" {hours} hour{'s' if hours != 1 else ''}" if hours else "")
    if hours:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def describe_clock(clock: SaeClock, condition: DeadlineCondition, now: datetime) -> str:
    """The clock as every output shows it: OVERDUE with how long, open with the time left, or closed and why."""
    due = clock.due_at(condition)
    due_text = due.strftime("%Y-%m-%d %H:%M UTC") if due.utcoffset() == timedelta(0) else due.isoformat("T", "minutes")
    if not clock.is_open:
        closed = clock.closed_at.strftime("%Y-%m-%d %H:%M") if clock.closed_at else "?"
        return f"closed {closed}: {clock.closed_reason}"
    late = overdue_by(clock, condition, now)
    if late is not None:
        return f"OVERDUE by {span(late)} (the expedited report was due {due_text})"
    return f"open, due {due_text} ({span(due - now)} left)"


def close(clock: SaeClock, reason: str, at: datetime) -> SaeClock:
    """Stop the clock (report submitted, or the reviewer's decision); closing twice keeps the first closure."""
    if not clock.is_open:
        return clock
    return replace(clock, closed_at=at, closed_reason=reason)


def reopen(clock: SaeClock) -> SaeClock:
    """Run a closed clock again from its original day 0 (the reviewer withdrew the decision that closed it).

    Reminders and the overdue escalation already sent stay recorded, so none is sent twice.
    """
    if clock.is_open:
        return clock
    return replace(clock, closed_at=None, closed_reason=None)
