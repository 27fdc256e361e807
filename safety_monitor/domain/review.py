"""Owns the review of an alert: the actions a reviewer records, who may record which, the allowed transitions,
the review status derived from the actions, and their effect on the expedited-reporting clock.

Acknowledge / adjudicate (confirmed signal, not clinically significant, duplicate; causality per drug; comment),
an append-only audit trail (who, when, old, new, reason), roles (medical monitor, DSMB member, admin); see
docs/clinical-decisions.md, "The expedited-reporting clock": the reviewer records expectedness against the reference
safety information (RSI), and an
expected event stops the expedited-reporting clock. Every function here is pure; the time is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from safety_monitor.domain import access
from safety_monitor.domain.access import Action, Role
from safety_monitor.domain.alerts import Alert
from safety_monitor.domain.audit import AuditEvent, AuditRecord
from safety_monitor.domain.conditions.ae import DRUGS
from safety_monitor.domain.conditions.deadline import ClockKey, SaeClock

E = TypeVar("E", bound=StrEnum)


class ActionKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ADJUDICATE = "adjudicate"
    CAUSALITY = "causality"
    EXPECTEDNESS = "expectedness"
    COMMENT = "comment"
    REPORT_SUBMITTED = "report-submitted"  # the expedited report of the case went to the authorities


class Adjudication(StrEnum):
    CONFIRMED_SIGNAL = "confirmed-signal"
    NOT_CLINICALLY_SIGNIFICANT = "not-clinically-significant"
    DUPLICATE = "duplicate"  # of another alert, named in `duplicate_of`


class Causality(StrEnum):
    RELATED = "related"
    NOT_RELATED = "not-related"


class Expectedness(StrEnum):
    EXPECTED = "expected"  # listed in the RSI (investigator's brochure / SmPC section 4.8): not a SUSAR
    UNEXPECTED = "unexpected"


class ReviewStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    ADJUDICATED = "adjudicated"


class ClockEffect(StrEnum):
    CLOSED = "closed"
    REOPENED = "reopened"


# The closing reason of a clock stopped by an "expected" assessment starts with this, so a later "unexpected"
# knows which closures were its own to undo (a submitted report is never undone).
EXPECTED_CLOSURE = "expected per the reference safety information"
SUBMITTED_CLOSURE = "report submitted"


class ReviewRefused(Exception):
    """A review action that the rules do not allow; the message says why in plain words."""


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """What a reviewer asks to record on an alert. `value` is the adjudication, causality or expectedness."""

    alert_key: str
    kind: ActionKind
    reviewer: str
    role: Role
    reason: str
    at: datetime
    value: str | None = None
    drug: str | None = None  # causality: "anlotinib" or "ici"
    duplicate_of: str | None = None  # adjudication "duplicate": the alert this one repeats
    submitted_at: datetime | None = None  # report-submitted: when the report went out (default: `at`)


@dataclass(frozen=True, slots=True)
class ReviewAction:
    """One row of the append-only audit trail: who, in which role, when, what changed (old -> new) and why."""

    alert_key: str
    kind: ActionKind
    reviewer: str
    role: Role
    reason: str
    at: datetime
    old_value: str | None = None
    new_value: str | None = None
    drug: str | None = None
    duplicate_of: str | None = None
    clock_effect: ClockEffect | None = None
    clock_reason: str | None = None  # the closing reason written on the clock, or why it reopened

    @property
    def subject(self) -> str:
        """What the action changed, in words: "review status", "causality (anlotinib)", ..."""
        return {
            ActionKind.ACKNOWLEDGE: "review status",
            ActionKind.ADJUDICATE: "adjudication",
            ActionKind.CAUSALITY: f"causality ({self.drug})",
            ActionKind.EXPECTEDNESS: "expectedness",
            ActionKind.COMMENT: "comment",
            ActionKind.REPORT_SUBMITTED: "expedited report",
        }[self.kind]

    def describe(self) -> str:
        """The audit-trail line: `2026-05-04T09:00+00:00 Dr Li (medical-monitor) expectedness: none -> expected;
        reporting clock closed; reason: listed in the IB`."""
        change = "" if self.kind is ActionKind.COMMENT else f": {self.old_value or 'none'} -> {self._shown_new()}"
        effect = f"; reporting clock {self.clock_effect.value}" if self.clock_effect else ""
        when = self.at.isoformat(timespec="minutes")
        return f"{when} {self.reviewer} ({self.role.value}) {self.subject}{change}{effect}; reason: {self.reason}"

    def _shown_new(self) -> str:
        if self.kind is ActionKind.ADJUDICATE and self.duplicate_of:
            return f"duplicate of {self.duplicate_of}"
        return self.new_value or "none"


@dataclass(frozen=True, slots=True)
class ReviewState:
    """An alert's review as its actions leave it (derived, never stored)."""

    status: ReviewStatus = ReviewStatus.NEW
    adjudication: Adjudication | None = None
    duplicate_of: str | None = None
    causality: Mapping[str, Causality] = field(default_factory=dict)  # per drug
    expectedness: Expectedness | None = None
    report_submitted_at: datetime | None = None

    @property
    def adjudication_text(self) -> str | None:
        if self.adjudication is Adjudication.DUPLICATE:
            return f"duplicate of {self.duplicate_of}"
        return self.adjudication.value if self.adjudication else None


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    """The action to append, and what it does to the reporting clock of the alert's case (None: nothing)."""

    action: ReviewAction
    clock_effect: ClockEffect | None = None
    clock_reason: str | None = None
    clock_at: datetime | None = None  # when the clock stops: the review time, or the report's submission time


def may(role: Role, kind: ActionKind) -> bool:
    """Whether `role` may record `kind`: the workspace's one policy table (domain/access.py) decides."""
    return access.may(role, Action(kind.value))


def review_state(actions: Sequence[ReviewAction]) -> ReviewState:
    """Fold the audit trail (in the order recorded) into the alert's review state.

    Only acknowledging and adjudicating move the status: a comment, an assessment of causality or expectedness
    and a submitted report are recorded without it, so "new" keeps meaning that nobody has taken the alert on.
    """
    status = ReviewStatus.NEW
    adjudication: Adjudication | None = None
    duplicate_of: str | None = None
    causality: dict[str, Causality] = {}
    expectedness: Expectedness | None = None
    submitted: datetime | None = None
    for action in actions:
        if action.kind is ActionKind.ACKNOWLEDGE and status is ReviewStatus.NEW:
            status = ReviewStatus.ACKNOWLEDGED
        elif action.kind is ActionKind.ADJUDICATE and action.new_value:
            status = ReviewStatus.ADJUDICATED
            adjudication, duplicate_of = Adjudication(action.new_value), action.duplicate_of
        elif action.kind is ActionKind.CAUSALITY and action.drug and action.new_value:
            causality[action.drug] = Causality(action.new_value)
        elif action.kind is ActionKind.EXPECTEDNESS and action.new_value:
            expectedness = Expectedness(action.new_value)
        elif action.kind is ActionKind.REPORT_SUBMITTED and submitted is None:
            submitted = action.at
    return ReviewState(status, adjudication, duplicate_of, causality, expectedness, submitted)


def _choice(enum: type[E], value: str | None, what: str) -> E:
    allowed = ", ".join(e.value for e in enum)
    if value is None:
        raise ReviewRefused(f"{what} needs a value: one of {allowed}")
    try:
        return enum(value.strip().lower().replace(" ", "-").replace("_", "-"))
    except ValueError:
        raise ReviewRefused(f"{value!r} is not a valid {what}: use one of {allowed}") from None


def _check_request(request: ReviewRequest) -> None:
    if request.at.tzinfo is None:
        raise ReviewRefused("the time of a review action must carry a UTC offset")
    if not request.reviewer.strip():
        raise ReviewRefused("a review action needs the reviewer's name")
    if not request.reason.strip():
        raise ReviewRefused(f"{request.kind.value} needs a reason: the audit trail records why")
    if not may(request.role, request.kind):
        allowed = ", ".join(sorted(r.value for r in Role if may(r, request.kind)))
        raise ReviewRefused(f"a {request.role.value} may not record {request.kind.value} (allowed: {allowed})")


def decide(history: Sequence[ReviewAction], request: ReviewRequest, clocks: Sequence[SaeClock] = ()) -> ReviewDecision:
    """The action to append for `request`, given the alert's audit trail so far and the reporting clocks of its
    case (empty when the alert is not about an AE under a clock); raises ReviewRefused with a plain reason."""
    _check_request(request)
    state = review_state(history)
    base = ReviewAction(
        request.alert_key, request.kind, request.reviewer.strip(), request.role, request.reason.strip(), request.at
    )
    match request.kind:
        case ActionKind.ACKNOWLEDGE:
            return ReviewDecision(_acknowledge(state, base))
        case ActionKind.ADJUDICATE:
            return ReviewDecision(_adjudicate(state, base, request))
        case ActionKind.CAUSALITY:
            return ReviewDecision(_causality(state, base, request))
        case ActionKind.EXPECTEDNESS:
            return _expectedness(state, base, request, clocks)
        case ActionKind.REPORT_SUBMITTED:
            return _report_submitted(base, request.submitted_at or request.at, clocks)
        case ActionKind.COMMENT:
            return ReviewDecision(base)


def _acknowledge(state: ReviewState, base: ReviewAction) -> ReviewAction:
    if state.status is not ReviewStatus.NEW:
        raise ReviewRefused(f"the alert is already {state.status.value}; acknowledging is for new alerts")
    return _with(base, old_value=ReviewStatus.NEW.value, new_value=ReviewStatus.ACKNOWLEDGED.value)


def _adjudicate(state: ReviewState, base: ReviewAction, request: ReviewRequest) -> ReviewAction:
    outcome = _choice(Adjudication, request.value, "adjudication")
    duplicate_of = (request.duplicate_of or "").strip() or None
    if outcome is Adjudication.DUPLICATE:
        if duplicate_of is None:
            raise ReviewRefused("a duplicate adjudication names the alert it duplicates")
        if duplicate_of == request.alert_key:
            raise ReviewRefused("an alert cannot be a duplicate of itself")
    elif duplicate_of is not None:
        raise ReviewRefused(f"only a duplicate adjudication names another alert (got {outcome.value})")
    if (state.adjudication, state.duplicate_of) == (outcome, duplicate_of):
        raise ReviewRefused(f"the alert is already adjudicated as {state.adjudication_text}")
    # A re-adjudication with a reason is allowed: the trail keeps the earlier outcome as `old`.
    return _with(base, old_value=state.adjudication_text, new_value=outcome.value, duplicate_of=duplicate_of)


def _causality(state: ReviewState, base: ReviewAction, request: ReviewRequest) -> ReviewAction:
    drug = (request.drug or "").strip().lower()
    if drug not in DRUGS:
        raise ReviewRefused(f"causality is recorded per drug: use one of {', '.join(DRUGS)} (got {request.drug!r})")
    value = _choice(Causality, request.value, "causality")
    old = state.causality.get(drug)
    if old is value:
        raise ReviewRefused(f"causality to {drug} is already recorded as {value.value}")
    return _with(base, drug=drug, old_value=old.value if old else None, new_value=value.value)


def _expectedness(
    state: ReviewState, base: ReviewAction, request: ReviewRequest, clocks: Sequence[SaeClock]
) -> ReviewDecision:
    value = _choice(Expectedness, request.value, "expectedness")
    old = state.expectedness
    if old is value:
        raise ReviewRefused(f"expectedness is already recorded as {value.value}")
    action = _with(base, old_value=old.value if old else None, new_value=value.value)
    if value is Expectedness.EXPECTED:
        # docs/clinical-decisions.md, "The expedited-reporting clock": an expected event is not a SUSAR, so its
        # expedited-reporting clock stops.
        if not clocks:
            return ReviewDecision(action)  # no clock runs for the case (not serious, or not suspected related)
        _refuse_if_closed(clocks)
        reason = f"{EXPECTED_CLOSURE} ({action.reviewer}, {action.role.value}): {action.reason}"
        return _decision(action, ClockEffect.CLOSED, reason)
    # Unexpected after an "expected" closure: the case is a potential SUSAR again and its report is still owed, so
    # the clock runs again from its original day 0 (the earlier due date is the safe one). A missed expedited
    # report is worse than an early one. Clocks closed by a submitted report stay closed.
    if any(closed_as_expected(c) for c in clocks):
        reason = f"assessed unexpected ({action.reviewer}, {action.role.value}): {action.reason}"
        return _decision(action, ClockEffect.REOPENED, reason)
    return ReviewDecision(action)


def _report_submitted(base: ReviewAction, submitted_at: datetime, clocks: Sequence[SaeClock]) -> ReviewDecision:
    if submitted_at.tzinfo is None:
        raise ReviewRefused("the submission time must carry a UTC offset")
    if submitted_at > base.at:
        raise ReviewRefused(f"a report cannot be recorded as submitted in the future ({submitted_at.isoformat()})")
    if not clocks:
        raise ReviewRefused("no reporting clock runs for this alert's case: nothing to submit against")
    _refuse_if_closed(clocks)
    submitted = f"{SUBMITTED_CLOSURE} {submitted_at.isoformat()}"
    action = _with(base, old_value="clock open", new_value=submitted)
    reason = f"{submitted} ({action.reviewer}, {action.role.value}): {action.reason}"
    return _decision(action, ClockEffect.CLOSED, reason, submitted_at)


def _refuse_if_closed(clocks: Sequence[SaeClock]) -> None:
    if any(c.is_open for c in clocks):
        return
    last = max(clocks, key=lambda c: c.closed_at or c.started_at)
    when = last.closed_at.isoformat(timespec="minutes") if last.closed_at else "?"
    raise ReviewRefused(f"the reporting clock of this case was already closed at {when} ({last.closed_reason})")


def closed_as_expected(clock: SaeClock) -> bool:
    """Closed by an "expected" assessment (which a later "unexpected" undoes), not by a submitted report."""
    return not clock.is_open and (clock.closed_reason or "").startswith(EXPECTED_CLOSURE)


def _decision(action: ReviewAction, effect: ClockEffect, reason: str, at: datetime | None = None) -> ReviewDecision:
    return ReviewDecision(_with(action, clock_effect=effect, clock_reason=reason), effect, reason, at or action.at)


def case_of(alert: Alert) -> ClockKey | None:
    """The AE case (study, subject, AESPID) an alert is about, whose reporting clock its review may stop; None for
    alerts about findings, patterns, cohorts or subject events."""
    if not alert.subject_ref.startswith("AE:"):
        return None
    return alert.study_id, alert.subject_id, alert.subject_ref.removeprefix("AE:")


def audit_record(action: ReviewAction) -> AuditRecord:
    """The audit-log entry of a review action: every field of the review_actions row, so the chain vouches for the
    row (`audit verify` compares the two)."""
    detail: dict[str, str | None] = {
        "kind": action.kind.value,
        "role": action.role.value,
        "reason": action.reason,
        "old": action.old_value,
        "new": action.new_value,
        "drug": action.drug,
        "duplicate_of": action.duplicate_of,
        "clock_effect": action.clock_effect.value if action.clock_effect else None,
        "clock_reason": action.clock_reason,
    }
    return AuditRecord(action.at, action.reviewer, AuditEvent.REVIEW, action.alert_key, detail)


def _with(action: ReviewAction, **changes: Any) -> ReviewAction:
    return replace(action, **changes)
