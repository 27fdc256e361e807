"""Review rules as tables: who may record what, which transitions are allowed, the derived review status, and
the effect of expectedness and a submitted report on the expedited-reporting clock (domain/review.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from safety_monitor.domain.access import Role
from safety_monitor.domain.conditions.deadline import SaeClock, close
from safety_monitor.domain.review import (
    EXPECTED_CLOSURE,
    ActionKind,
    ClockEffect,
    ReviewAction,
    ReviewRefused,
    ReviewRequest,
    ReviewStatus,
    decide,
    may,
    review_state,
)

AT = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
KEY = "sae-reporting-clock|ALTER-ICI-01|ALTER-ICI-01-012-0001|AE:AE-1"
OTHER = "hemoptysis|ALTER-ICI-01|ALTER-ICI-01-012-0001|AE:AE-1"
MM, DSMB, ADMIN = Role.MEDICAL_MONITOR, Role.DSMB_MEMBER, Role.ADMIN
ACK, ADJ, CAUS, EXP, COM, SUB = (
    ActionKind.ACKNOWLEDGE,
    ActionKind.ADJUDICATE,
    ActionKind.CAUSALITY,
    ActionKind.EXPECTEDNESS,
    ActionKind.COMMENT,
    ActionKind.REPORT_SUBMITTED,
)
# A value that makes each kind of request well formed.
VALUES: dict[ActionKind, dict[str, Any]] = {
    ACK: {},
    ADJ: {"value": "confirmed-signal"},
    CAUS: {"value": "related", "drug": "anlotinib"},
    EXP: {"value": "unexpected"},
    COM: {},
    SUB: {},
}


def request(kind: ActionKind, role: Role = MM, *, minutes: int = 0, **values: Any) -> ReviewRequest:
    fields = VALUES[kind] | values
    return ReviewRequest(KEY, kind, "Dr Li", role, "reviewed the case", AT + timedelta(minutes=minutes), **fields)


def clock(closed_reason: str | None = None) -> SaeClock:
    running = SaeClock("ALTER-ICI-01", "ALTER-ICI-01-012-0001", "AE-1", "sae-reporting-clock", AT, "m-1")
    return close(running, closed_reason, AT) if closed_reason else running


def history(*requests: ReviewRequest, clocks: Sequence[SaeClock] = ()) -> list[ReviewAction]:
    actions: list[ReviewAction] = []
    for r in requests:
        actions.append(decide(actions, r, clocks).action)
    return actions


@pytest.mark.parametrize(
    ("role", "kind", "allowed"),
    [
        (MM, ACK, True),
        (MM, ADJ, True),
        (MM, CAUS, True),
        (MM, EXP, True),
        (MM, COM, True),
        (MM, SUB, True),
        (DSMB, ACK, False),
        (DSMB, COM, False),
        (DSMB, ADJ, False),
        (DSMB, CAUS, False),
        (DSMB, EXP, False),
        (DSMB, SUB, False),
        (ADMIN, COM, True),
        (ADMIN, SUB, True),
        (ADMIN, ACK, False),
        (ADMIN, ADJ, False),
        (ADMIN, CAUS, False),
        (ADMIN, EXP, False),
    ],
    ids=lambda v: getattr(v, "value", str(v)),
)
def test_who_may_record_what(role: Role, kind: ActionKind, allowed: bool) -> None:
    assert may(role, kind) is allowed
    if allowed:
        decision = decide([], request(kind, role), [clock()])
        assert (decision.action.role, decision.action.kind) == (role, kind)
    else:
        with pytest.raises(ReviewRefused, match=f"a {role.value} may not record {kind.value} \\(allowed: "):
            decide([], request(kind, role), [clock()])


# (earlier actions, the request, "" when allowed or the refusal's words)
TRANSITIONS = [
    ((), request(ACK), ""),
    ((request(ACK),), request(ACK, minutes=1), "the alert is already acknowledged; acknowledging is for new alerts"),
    ((request(ADJ),), request(ACK, minutes=1), "the alert is already adjudicated"),
    ((), request(ADJ), ""),  # adjudicating a new alert takes it on at once
    ((request(ACK),), request(ADJ, minutes=1), ""),
    ((request(ADJ),), request(ADJ, minutes=1), "the alert is already adjudicated as confirmed-signal"),
    ((request(ADJ),), request(ADJ, value="not-clinically-significant"), ""),  # re-adjudication, with a reason
    ((), request(ADJ, value="duplicate"), "a duplicate adjudication names the alert it duplicates"),
    ((), request(ADJ, value="duplicate", duplicate_of=KEY), "an alert cannot be a duplicate of itself"),
    ((), request(ADJ, value="duplicate", duplicate_of=OTHER), ""),
    ((), request(ADJ, duplicate_of=OTHER), "only a duplicate adjudication names another alert"),
    ((), request(ADJ, value="serious"), "'serious' is not a valid adjudication: use one of confirmed-signal, "),
    ((), request(CAUS), ""),
    ((request(CAUS),), request(CAUS), "causality to anlotinib is already recorded as related"),
    ((request(CAUS),), request(CAUS, value="not-related"), ""),
    ((request(CAUS),), request(CAUS, drug="ici"), ""),  # per drug: the checkpoint inhibitor separately
    ((), request(CAUS, drug="aspirin"), "causality is recorded per drug: use one of anlotinib, ici"),
    ((), request(EXP), ""),
    ((request(EXP),), request(EXP), "expectedness is already recorded as unexpected"),
    ((), request(EXP, value=None), "expectedness needs a value: one of expected, unexpected"),
    ((request(ACK),), request(COM), ""),
    ((request(COM),), request(COM), ""),  # comments never conflict
    ((), ReviewRequest(KEY, COM, "Dr Li", MM, "  ", AT), "comment needs a reason: the audit trail records why"),
    ((), ReviewRequest(KEY, ACK, " ", MM, "seen", AT), "a review action needs the reviewer's name"),
    ((), ReviewRequest(KEY, ACK, "Dr Li", MM, "seen", AT.replace(tzinfo=None)), "must carry a UTC offset"),
]


@pytest.mark.parametrize(("earlier", "wanted", "refusal"), TRANSITIONS, ids=[str(i) for i in range(len(TRANSITIONS))])
def test_transitions(earlier: tuple[ReviewRequest, ...], wanted: ReviewRequest, refusal: str) -> None:
    actions = history(*earlier)
    if refusal:
        with pytest.raises(ReviewRefused) as exc:
            decide(actions, wanted)
        assert refusal in str(exc.value)
    else:
        assert decide(actions, wanted).action.kind is wanted.kind


@pytest.mark.parametrize(
    ("kinds", "status"),
    [
        ((), ReviewStatus.NEW),
        ((COM, CAUS, EXP), ReviewStatus.NEW),  # only acknowledging or adjudicating takes an alert on
        ((ACK,), ReviewStatus.ACKNOWLEDGED),
        ((ACK, COM), ReviewStatus.ACKNOWLEDGED),
        ((ADJ,), ReviewStatus.ADJUDICATED),
        ((ACK, ADJ, COM), ReviewStatus.ADJUDICATED),
    ],
)
def test_the_review_status_is_derived_from_the_actions(kinds: tuple[ActionKind, ...], status: ReviewStatus) -> None:
    assert review_state(history(*(request(k, minutes=i) for i, k in enumerate(kinds)))).status is status


def test_the_audit_trail_keeps_old_and_new_values() -> None:
    actions = history(
        request(ACK),
        request(ADJ, minutes=1),
        request(ADJ, minutes=2, value="duplicate", duplicate_of=OTHER),
        request(CAUS, minutes=3),
        request(CAUS, minutes=4, value="not-related"),
    )
    assert [(a.subject, a.old_value, a.new_value) for a in actions] == [
        ("review status", "new", "acknowledged"),
        ("adjudication", None, "confirmed-signal"),
        ("adjudication", "confirmed-signal", "duplicate"),
        ("causality (anlotinib)", None, "related"),
        ("causality (anlotinib)", "related", "not-related"),
    ]
    state = review_state(actions)
    assert (state.adjudication_text, dict(state.causality)) == (f"duplicate of {OTHER}", {"anlotinib": "not-related"})
    assert actions[2].describe() == (
        "2026-05-04T09:02+00:00 Dr Li (medical-monitor) adjudication: confirmed-signal -> duplicate of "
        f"{OTHER}; reason: reviewed the case"
    )


def test_expected_closes_a_running_clock_with_the_reviewer_and_reason() -> None:
    decision = decide([], request(EXP, value="expected"), [clock()])
    assert decision.clock_effect is ClockEffect.CLOSED
    assert decision.clock_reason == f"{EXPECTED_CLOSURE} (Dr Li, medical-monitor): reviewed the case"
    assert decision.action.clock_effect is ClockEffect.CLOSED
    assert decision.action.describe().endswith(
        "expectedness: none -> expected; reporting clock closed; reason: reviewed the case"
    )


@pytest.mark.parametrize(
    ("earlier", "wanted", "clocks", "effect", "refusal"),
    [
        ((), request(EXP, value="expected"), [], None, ""),  # no clock runs (not a potential SUSAR): just recorded
        ((), request(EXP, value="unexpected"), [clock()], None, ""),  # a potential SUSAR: the clock keeps running
        ((), request(SUB), [clock()], ClockEffect.CLOSED, ""),
        ((), request(SUB, ADMIN), [clock()], ClockEffect.CLOSED, ""),
        ((), request(SUB), [], None, "no reporting clock runs for this alert's case"),
        (
            (),
            request(SUB),
            [clock("report submitted 2026-05-04")],
            None,
            "was already closed at 2026-05-04T09:00+00:00 (report submitted 2026-05-04)",
        ),
        ((), request(EXP, value="expected"), [clock("report submitted")], None, "was already closed at"),
        ((), request(SUB, submitted_at=AT + timedelta(days=1)), [clock()], None, "cannot be recorded as submitted in"),
        # "unexpected" withdrawing "expected" runs the clock again; a submitted report is never undone
        (
            (request(EXP, value="expected"),),
            request(EXP, minutes=1),
            [clock(f"{EXPECTED_CLOSURE} (x)")],
            ClockEffect.REOPENED,
            "",
        ),
        ((request(EXP, value="expected"),), request(EXP, minutes=1), [clock("report submitted")], None, ""),
    ],
    ids=[
        "expected-no-clock",
        "unexpected-keeps-running",
        "submitted-closes",
        "admin-submits",
        "submitted-no-clock",
        "submitted-twice",
        "expected-after-submitted",
        "submitted-in-the-future",
        "unexpected-reopens",
        "unexpected-after-submitted",
    ],
)
def test_the_clinical_effect_on_the_reporting_clock(
    earlier: tuple[ReviewRequest, ...],
    wanted: ReviewRequest,
    clocks: list[SaeClock],
    effect: ClockEffect | None,
    refusal: str,
) -> None:
    actions = history(*earlier)  # recorded with no clock, so they do not interfere
    if refusal:
        with pytest.raises(ReviewRefused) as exc:
            decide(actions, wanted, clocks)
        assert refusal in str(exc.value)
        return
    assert decide(actions, wanted, clocks).clock_effect is effect


def test_a_submitted_report_closes_the_clock_at_the_submission_time() -> None:
    submitted = AT - timedelta(days=2)
    decision = decide([], request(SUB, submitted_at=submitted), [clock()])
    assert decision.clock_at == submitted
    assert decision.action.new_value == f"report submitted {submitted.isoformat()}"
    assert review_state([decision.action]).status is ReviewStatus.NEW  # recorded, the alert still awaits review
