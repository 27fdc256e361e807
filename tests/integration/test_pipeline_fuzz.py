"""Fuzzing the whole pipeline (hypothesis): batches of valid, duplicated and hostile lines, decoded and handled
with the runtime's error policy. Every line ends applied, duplicate or dead-lettered; nothing valid is lost."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.adapters.memory.unit_of_work import MemoryStore
from safety_monitor.domain.grading import BloodPressureGrader
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.service.handling import HandlingPolicy, handle_batch
from safety_monitor.service.pipeline import PipelineConfig
from streams.decoding import decode
from streams.embedded import to_service
from tests.conftest import RECIPIENTS, SKELETON_RULES
from tests.factories import ae, subject_event, subject_id, vs
from tests.hostile import hostile_lines

NOW = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)
CONFIG = PipelineConfig(load_ruleset(SKELETON_RULES), BloodPressureGrader(), RECIPIENTS)
_ids = itertools.count()
HOSTILE = [line for _, line in hostile_lines("fuzz")]
MUTATIONS = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(HOSTILE),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def valid(kind: int, n: int) -> bytes:
    subject = subject_id(n % 30)
    key = next(_ids)
    if kind == 0:
        message = ae(subject, f"AE-{key}", "Haemoptysis", 1 + n % 5, msg_id=f"v-{key}")
    elif kind == 1:
        message = vs(subject, "SYSBP", 100 + n % 90, at=f"2026-04-{1 + n % 28:02d}T08:00", msg_id=f"v-{key}")
    else:
        message = subject_event(subject) | {"msg_id": f"v-{key}"}
    return json.dumps(message).encode()


LINE = st.one_of(
    st.tuples(st.just("valid"), st.integers(0, 2), st.integers(0, 10_000)),
    st.tuples(st.just("hostile"), MUTATIONS, st.just(0)),
    st.tuples(st.just("again"), st.just(b""), st.integers(0, 100)),
)


async def _run(lines: list[tuple[str, object, int]], size: int) -> None:
    store = MemoryStore()
    payloads: list[bytes] = []
    valid_ids: set[str] = set()
    for kind, value, n in lines:
        if kind == "valid":
            payloads.append(valid(int(str(value)), n))
            valid_ids.add(json.loads(payloads[-1])["msg_id"])
        elif kind == "again" and payloads:
            payloads.append(payloads[n % len(payloads)])  # a redelivery: a duplicate, never a second fact
        elif isinstance(value, bytes):
            payloads.append(value)
    items = [to_service(decode(p, f"fuzz:{i}", now=NOW)) for i, p in enumerate(payloads)]
    received = 0
    for start in range(0, len(items), size):
        outcome = await handle_batch(
            store, items[start : start + size], CONFIG, FixedClock(NOW), HandlingPolicy(first_backoff_s=0)
        )
        assert outcome.applied + outcome.stale + outcome.duplicates + outcome.conflicts + outcome.dead_lettered == (
            outcome.received
        )
        received += outcome.received
    assert received == len(payloads)
    assert valid_ids <= set(store.state.inbox), "a valid message was lost"


@settings(
    max_examples=2500, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(LINE, max_size=25), st.integers(min_value=1, max_value=8))
def test_every_line_ends_applied_duplicate_or_dead_lettered(lines: list[tuple[str, object, int]], size: int) -> None:
    asyncio.run(_run(lines, size))
