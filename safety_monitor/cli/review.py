"""Owns the `safety-monitor review` commands: the alert queue, one alert with its audit trail, and the review
actions (acknowledge, adjudicate, causality, expectedness, comment)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from safety_monitor.bootstrap import App
from safety_monitor.cli.common import app_for, as_user_option, run_app, settings_from_env
from safety_monitor.domain.conditions.ae import DRUGS
from safety_monitor.domain.conditions.deadline import DeadlineCondition, SaeClock, describe_clock
from safety_monitor.domain.review import (
    ActionKind,
    Adjudication,
    Causality,
    Expectedness,
    ReviewAction,
    ReviewDecision,
    ReviewRefused,
)
from safety_monitor.domain.rules import Ruleset
from safety_monitor.domain.users import AccountRefused
from safety_monitor.service.review import (
    AlertReview,
    UnknownAlert,
    alert_review,
    most_overdue,
    record_review_as,
    review_queue,
)


@click.group()
def review() -> None:
    """Review alerts: the queue, one alert's audit trail, and the actions a reviewer records.

    ALERT is the alert key as `review queue` prints it, e.g. 'sae-reporting-clock|STUDY|SUBJECT|AE:AE-1' (quote it:
    it contains '|').
    """


def _run(work: Callable[[App], Any]) -> Any:
    app = app_for(settings_from_env())
    try:
        return run_app(app, work)
    except (UnknownAlert, ReviewRefused, AccountRefused) as exc:
        raise click.ClickException(str(exc)) from None


def _clock_text(clock: SaeClock, ruleset: Ruleset, now: datetime) -> str:
    rule = ruleset.by_id(clock.rule_id)
    if rule is None or not isinstance(rule.condition, DeadlineCondition):
        return "open (its rule is no longer in force)" if clock.is_open else f"closed: {clock.closed_reason}"
    return describe_clock(clock, rule.condition, now)


def _item(review: AlertReview, ruleset: Ruleset, now: datetime) -> dict[str, Any]:
    a, s = review.alert, review.state
    late = most_overdue(review, ruleset, now)
    return {
        "alert_key": a.key,
        "review_status": s.status.value,
        "rule_id": a.rule_id,
        "severity": a.severity,
        "subject_id": a.subject_id,
        "term": a.term,
        "grade": a.grade,
        "alert_status": a.status.value,
        "raised_at": a.raised_at.isoformat(),
        "adjudication": s.adjudication_text,
        "causality": dict(s.causality),
        "expectedness": s.expectedness.value if s.expectedness else None,
        "clocks": [_clock_text(c, ruleset, now) for c in review.clocks],
        "overdue_seconds": int(late.total_seconds()) if late is not None else None,
    }


def _action(action: ReviewAction) -> dict[str, Any]:
    return {
        "at": action.at.isoformat(),
        "reviewer": action.reviewer,
        "role": action.role.value,
        "kind": action.kind.value,
        "subject": action.subject,
        "old": action.old_value,
        "new": action.new_value,
        "duplicate_of": action.duplicate_of,
        "reason": action.reason,
        "clock_effect": action.clock_effect.value if action.clock_effect else None,
        "clock_reason": action.clock_reason,
    }


@review.command("queue")
@click.option("--new-since-last-review", is_flag=True, help="Only alerts that changed since the last review action.")
@click.option("--reviewer", default=None, help="Whose last review counts (default: anyone).")
@click.option("--rule", "rule_id", default=None, help="Only the alerts of this rule (its id).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "keys"]),
    default="table",
    show_default=True,
    help="keys: one alert key a line, for scripts.",
)
def queue(new_since_last_review: bool, reviewer: str | None, rule_id: str | None, fmt: str) -> None:
    """Open alerts with their review status: overdue reporting clocks first, then new ones, then by severity,
    grade and age."""

    async def work(app: App) -> tuple[list[dict[str, Any]], str | None]:
        now = app.clock.now()
        found = await review_queue(
            app.store,
            new_since_last_review=new_since_last_review,
            reviewer=reviewer,
            ruleset=app.pipeline.ruleset,
            now=now,
        )
        since = found.since.isoformat(timespec="minutes") if found.since else None
        for notice in found.overdue_emails:
            click.echo(
                f"OVERDUE: alert email {notice.notice_id} for {notice.alert_key} not delivered since "
                f"{notice.created_at.isoformat(timespec='minutes')} ({notice.attempts} attempts; still retrying): "
                f"{notice.last_error or 'not tried yet'}",
                err=True,
            )
        for notice, refused in found.undeliverable_emails:
            for recipient, reply in sorted(refused.items()):
                click.echo(
                    f"UNDELIVERABLE: alert email {notice.notice_id} for {notice.alert_key} refused for "
                    f"{recipient}: {reply}",
                    err=True,
                )
        items = [i for i in found.items if rule_id is None or i.alert.rule_id == rule_id]
        return [_item(i, app.pipeline.ruleset, now) for i in items], since

    rows, since = _run(work)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if fmt == "keys":
        for r in rows:
            click.echo(r["alert_key"])
        return
    if new_since_last_review:
        who = reviewer or "anyone"
        click.echo(f"changed since the last review by {who}: {since}" if since else f"no review by {who} yet: all")
    if not rows:
        click.echo("no open alerts to review")
        return
    overdue = sum(1 for r in rows if r["overdue_seconds"] is not None)
    if overdue:
        click.secho(f"{overdue} alert(s) with an OVERDUE expedited report, first below", fg="red", bold=True)
    click.echo(f"{'review':<12} {'severity':<8} {'raised':<16} {'grade':>5}  {'term':<30} alert")
    for r in rows:
        click.echo(
            f"{r['review_status']:<12} {r['severity']:<8} {r['raised_at'][:16]:<16} {r['grade']:>5}  "
            f"{str(r['term'])[:30]:<30} {r['alert_key']}"
        )
        for clock in r["clocks"]:
            click.secho(f"{'':<12} reporting clock {clock}", fg="red" if clock.startswith("OVERDUE") else None)


@review.command("show")
@click.argument("alert")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def show(alert: str, fmt: str) -> None:
    """One alert, its review state, the reporting clock of its case and the whole audit trail."""

    async def work(app: App) -> dict[str, Any]:
        found = await alert_review(app.store, alert)
        item = _item(found, app.pipeline.ruleset, app.clock.now())
        item["detail"] = found.alert.detail
        item["rule_title"] = found.alert.rule_title
        item["audit_trail"] = [_action(a) for a in found.actions]
        item["audit_lines"] = [a.describe() for a in found.actions]
        return item

    item = _run(work)
    if fmt == "json":
        item.pop("audit_lines")
        click.echo(json.dumps(item, indent=2))
        return
    click.echo(f"alert      {item['alert_key']}")
    click.echo(f"rule       {item['rule_id']}: {item['rule_title']} ({item['severity']})")
    click.echo(f"subject    {item['subject_id']}: {item['term']} grade {item['grade']} ({item['alert_status']})")
    click.echo(f"detail     {item['detail']}")
    click.echo(f"raised     {item['raised_at']}")
    click.echo(f"review     {item['review_status']}" + (f"; {item['adjudication']}" if item["adjudication"] else ""))
    causality = ", ".join(f"{drug} {value}" for drug, value in sorted(item["causality"].items()))
    click.echo(f"causality  {causality or 'not recorded'} (the reviewer's assessment, per drug)")
    click.echo(f"expected?  {item['expectedness'] or 'not recorded'} (against the reference safety information)")
    for clock in item["clocks"]:
        click.secho(f"clock      {clock}", fg="red" if clock.startswith("OVERDUE") else None)
    click.echo("audit trail:" if item["audit_lines"] else "audit trail: no review actions yet")
    for line in item["audit_lines"]:
        click.echo(f"  {line}")


def _reviewer_options(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option("--reason", required=True, help="Why: recorded in the audit trail.")(command)
    command = as_user_option(command)
    return click.argument("alert")(command)


def _record(alert: str, kind: ActionKind, user_name: str, reason: str, **values: Any) -> None:
    async def work(app: App) -> ReviewDecision:
        return await record_review_as(app.store, user_name, alert, kind, reason, app.clock.now(), **values)

    decision: ReviewDecision = _run(work)
    click.echo(f"recorded: {decision.action.describe()}")
    if decision.clock_effect is not None:
        click.echo(f"reporting clock {decision.clock_effect.value}: {decision.clock_reason}")


@review.command("ack")
@_reviewer_options
def ack(alert: str, user_name: str, reason: str) -> None:
    """Acknowledge a new alert: you have seen it and taken it on."""
    _record(alert, ActionKind.ACKNOWLEDGE, user_name, reason)


@review.command("adjudicate")
@_reviewer_options
@click.argument("outcome", type=click.Choice([a.value for a in Adjudication]))
@click.option("--duplicate-of", default=None, help="With `duplicate`: the alert key this one repeats.")
def adjudicate(alert: str, outcome: str, duplicate_of: str | None, user_name: str, reason: str) -> None:
    """Adjudicate: confirmed-signal, not-clinically-significant, or duplicate --duplicate-of ALERT."""
    _record(alert, ActionKind.ADJUDICATE, user_name, reason, value=outcome, duplicate_of=duplicate_of)


@review.command("causality")
@_reviewer_options
@click.argument("drug", type=click.Choice(list(DRUGS)))
@click.argument("assessment", type=click.Choice([c.value for c in Causality]))
def causality(alert: str, drug: str, assessment: str, user_name: str, reason: str) -> None:
    """Record causality to one study drug (anlotinib, ici = the checkpoint inhibitor): related or not-related."""
    _record(alert, ActionKind.CAUSALITY, user_name, reason, value=assessment, drug=drug)


@review.command("expectedness")
@_reviewer_options
@click.argument("assessment", type=click.Choice([e.value for e in Expectedness]))
def expectedness(alert: str, assessment: str, user_name: str, reason: str) -> None:
    """Record expectedness against the reference safety information. `expected` (not a SUSAR) stops the
    expedited-reporting clock of the alert's AE case; `unexpected` after `expected` runs it again."""
    _record(alert, ActionKind.EXPECTEDNESS, user_name, reason, value=assessment)


@review.command("comment")
@_reviewer_options
def comment(alert: str, user_name: str, reason: str) -> None:
    """Add a comment (the --reason text) to the alert's audit trail; the review status does not change."""
    _record(alert, ActionKind.COMMENT, user_name, reason)
