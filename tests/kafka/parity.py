"""The Kafka runtime's end state checked against the embedded runtime's for the same lines, and against the broker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from safety_monitor.domain.conditions.ae import AeCondition, GradeSource
from safety_monitor.domain.conditions.cohort import CohortCondition
from safety_monitor.ruleset.loader import load_ruleset
from streams.decoding import Decoded, decode
from tests.conftest import ROOT
from tests.kafka.conftest import PARITY, Stack, results

# What the 50,000-message load must match whatever order the five topics' records were processed in. Rule hits and
# alert statuses are left out there: on that load the rules in ORDER_DEPENDENT differ between a Kafka run and a file
# replay even without any crash. The trial-based tests compare them row for row for every other rule.
ORDER_FREE = ("incidence", "inbox", "dead_letters")


def _order_dependent() -> frozenset[str]:
    """The trial's rules whose hits depend on the order records of different subjects or topics are processed in:
    cohort rules (a crossing seen on a denominator whose first doses are still on their way stays raised) and AE
    rules graded on the worst value-derived grade (the readings processed before the AE)."""
    ruleset = load_ruleset(ROOT / "rules")
    return frozenset(
        r.id
        for r in ruleset.rules
        if isinstance(r.condition, CohortCondition)
        or (isinstance(r.condition, AeCondition) and r.condition.grade_source is not GradeSource.INVESTIGATOR)
    )


ORDER_DEPENDENT = _order_dependent()


def _split(part: str, rows: Sequence[Any]) -> tuple[list[Any], set[str]]:
    """Rows compared one for one, and the alert keys of the order-dependent rules' rows (rule id second in alerts,
    first in hits)."""
    if part not in ("hits", "alerts"):
        return list(rows), set()
    rule_at, key_at = (1, 0) if part == "alerts" else (0, 5)
    exact = [row for row in rows if row[rule_at] not in ORDER_DEPENDENT]
    return exact, {row[key_at] for row in rows if row[rule_at] in ORDER_DEPENDENT}


def differences(part: str, kafka: Sequence[Any], reference: Sequence[Any]) -> str:
    """What a failed comparison names: the rows only the Kafka run has and those only the embedded run has."""
    ours, theirs = set(map(repr, kafka)), set(map(repr, reference))
    return f"{part}: only in the Kafka run {sorted(ours - theirs)}; only in the embedded run {sorted(theirs - ours)}"


def assert_parts_match(kafka: dict[str, Any], reference: dict[str, Any], parts: Sequence[str] = PARITY) -> None:
    """`parts` row for row, except the rows of ORDER_DEPENDENT rules, where the Kafka run must have at least the
    embedded run's alerts; and always the same alerts (key, rule, grade) on the same terms."""
    for part in parts:
        ours, ours_dependent = _split(part, kafka[part])
        theirs, theirs_dependent = _split(part, reference[part])
        assert ours == theirs, differences(part, ours, theirs)
        # An order-dependent rule may raise in one arrival order what it does not in another, but the Kafka run
        # must never miss an alert the file replay raised.
        assert theirs_dependent <= ours_dependent, f"{part}: missed {sorted(theirs_dependent - ours_dependent)}"
    ours_alerts, ours_dependent = _split("alerts", [alert[:3] for alert in kafka["alerts"]])
    theirs_alerts, theirs_dependent = _split("alerts", [alert[:3] for alert in reference["alerts"]])
    assert ours_alerts == theirs_alerts, differences("alerts (key, rule, grade)", ours_alerts, theirs_alerts)
    assert theirs_dependent <= ours_dependent, f"missed alerts {sorted(theirs_dependent - ours_dependent)}"


async def assert_same_as_embedded(
    stack: Stack,
    reference: dict[str, Any],
    lines: Sequence[str],
    parts: Sequence[str] = PARITY,
    *,
    worker_kills: int = 0,
) -> None:
    """Same `parts` (by default incidence, hits, alerts, inbox and dead letters) as the embedded run, and always the
    same alerts (key, rule, grade); for the rules in ORDER_DEPENDENT at least the embedded run's alerts; no msg_id
    lost; no alert, change or email doubled; the group committed every
    record the site sent, and no more."""
    ends = stack.end_offsets()
    assert sum(ends.values()) == len(lines)
    assert stack.committed_offsets() == ends
    kafka = await results(stack.store)
    assert_parts_match(kafka, reference, parts)
    assert reference["alerts"] and reference["incidence"]
    # nothing lost: every valid message the site sent is in the inbox
    sent = {item.message.envelope.msg_id for line in lines if isinstance(item := decode(line, "x"), Decoded)}
    assert sent <= {msg_id for msg_id, _ in kafka["inbox"]}
    # nothing doubled: each alert raised once, each escalation to a grade once, each email once
    async with stack.store.engine.connect() as connection:
        raised = list(
            await connection.execute(
                text("SELECT alert_key, count(*) FROM alert_change WHERE kind = 'raised' GROUP BY alert_key")
            )
        )
        escalated_twice = list(
            await connection.execute(
                text(
                    "SELECT alert_key, grade FROM alert_change WHERE kind = 'escalated' "
                    "GROUP BY alert_key, grade HAVING count(*) > 1"
                )
            )
        )
    assert sorted(key for key, _ in raised) == sorted(alert[0] for alert in kafka["alerts"])
    assert {count for _, count in raised} == {1}
    assert escalated_twice == []
    ids = [m["Message-ID"] for m in stack.smtp.inbox.messages]
    # An email is marked sent in its own transaction right after the SMTP server accepted it: a worker killed in
    # between sends it again on restart, with the same Message-ID (mail clients fold the two). No SMTP delivery can
    # be made exactly-once; losing the alert would be the worse failure. So: at most one re-send per kill, and
    # without kills none at all.
    resent = len(ids) - len(set(ids))
    assert resent <= worker_kills, f"{resent} emails sent twice with {worker_kills} worker kills"
    assert set(ids) == {f"<{notice[0]}@example.org>" for notice in kafka["notices"]}
