"""The Kafka runtime's end state checked against the embedded runtime's for the same lines, and against the broker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from streams.wire import Decoded, decode
from tests.kafka.conftest import PARITY, Stack, results

# What the 50,000-message load must match whatever order the five topics' records were processed in. Rule hits and
# alert statuses are left out there: on that load an AE rule with `grade_source: worst` sees only the readings
# processed before the AE, so a Kafka run and a file replay differ in a few of them even without any crash. (Cohort
# rules no longer depend on the order: every look is evaluated again when the cohort's data change.) The trial-based
# tests compare them in full (PARITY).
ORDER_FREE = ("incidence", "inbox", "dead_letters")


async def assert_same_as_embedded(
    stack: Stack, reference: dict[str, Any], lines: Sequence[str], parts: Sequence[str] = PARITY
) -> None:
    """Same `parts` (by default incidence, hits, alerts, inbox and dead letters) as the embedded run, and always the
    same alerts (key, rule, grade); no msg_id lost; no alert, change or email doubled; the group committed every
    record the site sent, and no more."""
    ends = stack.end_offsets()
    assert sum(ends.values()) == len(lines)
    assert stack.committed_offsets() == ends
    kafka = await results(stack.store)
    for part in parts:
        assert kafka[part] == reference[part], part
    assert [alert[:3] for alert in kafka["alerts"]] == [alert[:3] for alert in reference["alerts"]]
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
    assert len(ids) == len(set(ids))
    assert set(ids) == {f"<{notice[0]}@example.org>" for notice in kafka["notices"]}
