"""Owns the scheduled side of the expedited-reporting clock: reminders before due, overdue escalation, closure.

The clock starts in the batch that applies the first serious, suspected-related report (service/evaluation.py);
this module walks the open clocks at a time it is given, writes the reminder or overdue change of each clock's
alert once (the clock records what was sent, and each change has a stable notice id, so a re-run job writes
nothing twice), and closes clocks on a report-submitted record or a reviewer's decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from safety_monitor.domain.alerts import AlertChange, AlertStatus, ChangeKind
from safety_monitor.domain.conditions.deadline import (
    ClockKey,
    ClockStep,
    DeadlineCondition,
    SaeClock,
    close,
    due_step,
    reopen,
    span,
)
from safety_monitor.domain.rules import Ruleset
from safety_monitor.service.notifications import plan_notifications
from safety_monitor.service.pipeline import PipelineConfig, alert_notice
from safety_monitor.service.ports import UnitOfWork, UnitOfWorkFactory
from safety_monitor.service.scheduler import ScheduledJob

DEADLINE_CHECK_EVERY = timedelta(minutes=15)


def clock_alert_key(clock: SaeClock) -> str:
    # The clock's alert is the deadline rule's AE alert: rule + subject + AE record (rules.ae_alert_key).
    return f"{clock.rule_id}|{clock.study_id}|{clock.subject_id}|AE:{clock.ae_spid}"


@dataclass(slots=True)
class DeadlineReport:
    reminders: int = 0
    overdue: int = 0
    skipped: int = 0  # clocks whose rule is no longer in force (kept, reported)


def _condition(ruleset: Ruleset, rule_id: str) -> DeadlineCondition | None:
    rule = ruleset.by_id(rule_id)
    return rule.condition if rule is not None and isinstance(rule.condition, DeadlineCondition) else None


async def check_deadlines(uow_factory: UnitOfWorkFactory, config: PipelineConfig, now: datetime) -> DeadlineReport:
    """Send what the open clocks owe at `now` (one transaction); idempotent for the same `now`."""
    report = DeadlineReport()
    async with uow_factory() as uow:
        clocks = await uow.sae_clocks.open()
        alerts = await uow.alerts.get({clock_alert_key(c) for c in clocks})
        changes: list[AlertChange] = []
        updated: list[SaeClock] = []
        for clock in clocks:
            condition = _condition(config.ruleset, clock.rule_id)
            if condition is None:
                report.skipped += 1
                continue
            step = due_step(clock, condition, now)
            alert = alerts.get(clock_alert_key(clock))
            if step is None or alert is None:
                continue
            kind, number = step
            due = clock.due_at(condition).isoformat(timespec="minutes")
            if kind is ClockStep.REMINDER:
                left = clock.due_at(condition) - now
                detail = f"reminder {number}: expedited report due {due} ({_days(left)} left); {alert.detail}"
                clock = replace(clock, reminders_sent=number)
                change_kind = ChangeKind.REMINDER
                report.reminders += 1
            else:
                late = span(now - clock.due_at(condition))
                detail = (
                    f"OVERDUE by {late}: the expedited report was due {due} and no submission is recorded; "
                    f"{alert.detail}"
                )
                clock = replace(clock, overdue_sent=True)
                change_kind = ChangeKind.ESCALATED
                report.overdue += 1
            new_alert = replace(alert, detail=detail, updated_at=now, status=AlertStatus.OPEN)
            msg_id = f"sae-clock:{kind.value}:{number}"
            changes.append(AlertChange(new_alert, change_kind, alert.grade, msg_id, now))
            alerts[new_alert.key] = new_alert
            updated.append(clock)
        if changes:
            await _publish(uow, config, changes, now)
            await uow.sae_clocks.put(updated)
        await uow.commit()
    return report


async def _publish(uow: UnitOfWork, config: PipelineConfig, changes: list[AlertChange], now: datetime) -> None:
    """Store the changes and route their notices, as the batch pipeline does for alert changes."""
    await uow.alerts.put([c.alert for c in changes])
    await uow.alerts.add_changes(changes)
    notices = [alert_notice(change, config.alert_recipients, config.ruleset) for change in changes]
    await plan_notifications(
        uow, config.effective_routing(), config.ruleset, list(zip(changes, notices, strict=True)), now
    )


def _days(left: timedelta) -> str:
    hours = left.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 24 else f"{hours:.0f} hours"


async def close_clocks(uow_factory: UnitOfWorkFactory, case: ClockKey, reason: str, at: datetime) -> list[SaeClock]:
    """Close every open clock of a case (report submitted, or the reviewer's decision, e.g. expected per the
    RSI); returns the clocks as stored. A case without a clock yet is left alone (nothing is due)."""
    async with uow_factory() as uow:
        closed = await close_case_clocks(uow, case, reason, at)
        await uow.commit()
    return closed


async def close_case_clocks(uow: UnitOfWork, case: ClockKey, reason: str, at: datetime) -> list[SaeClock]:
    """`close_clocks` inside the caller's transaction (a review action closes the clock in its own): an open
    clock is stopped, so `check_deadlines` owes it no reminder or overdue any more; closed ones keep their
    first closure. Nothing is notified: the closure is recorded on the clock (and in the review trail)."""
    clocks = await uow.sae_clocks.for_case(case)
    closed = [close(c, reason, at) for c in clocks]
    await uow.sae_clocks.put(closed)
    return closed


async def reopen_case_clocks(uow: UnitOfWork, case: ClockKey, which: Callable[[SaeClock], bool]) -> list[SaeClock]:
    """Run the case's closed clocks chosen by `which` again (a reviewer withdrew the decision that closed them),
    inside the caller's transaction; `check_deadlines` picks them up at its next pass."""
    clocks = [reopen(c) for c in await uow.sae_clocks.for_case(case) if which(c)]
    await uow.sae_clocks.put(clocks)
    return clocks


def deadline_job(
    store: UnitOfWorkFactory,
    config: PipelineConfig | Callable[[], PipelineConfig],
    every: timedelta = DEADLINE_CHECK_EVERY,
) -> ScheduledJob:
    """The scheduler job (service/scheduler.py) that runs `check_deadlines` once per slot across workers.

    `config` may be a function returning the pipeline's current config, so a hot-reloaded ruleset is used.
    """

    async def run(now: datetime) -> object:
        current = config if isinstance(config, PipelineConfig) else config()
        report = await check_deadlines(store, current, now)
        return {"reminders": report.reminders, "overdue": report.overdue, "skipped": report.skipped}

    return ScheduledJob("sae-deadlines", every, run, lease=max(every * 4, timedelta(minutes=5)))
