"""service/ingestion.publish_messages on the in-memory store with small fakes: what reaches the sink and when, the
origin of each message, the receipt's counts, the whole-request refusal and its audit entry, and that a sink
failure leaves no receipt."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.adapters.memory.unit_of_work import MemoryStore
from safety_monitor.domain.access import Role
from safety_monitor.domain.rate_limit import Allowance, SiteRateLimiter
from safety_monitor.domain.users import User
from safety_monitor.service.ingestion import (
    EmbeddedSink,
    ForeignSite,
    Ingestion,
    Item,
    NotASite,
    RateLimited,
    Receipt,
    publish_messages,
    received_before,
)
from safety_monitor.service.pipeline import PipelineConfig
from streams.decoding import decode
from streams.embedded import to_service
from tests.factories import ae, subject_id

T0 = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)
SITE = User("edc.site-012", Role.SITE, T0, site_id="012")
S2 = subject_id(2)


class RecordingSink:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[Item]] = []
        self.fail = fail

    async def deliver(self, batch: Sequence[Item]) -> Receipt:
        if self.fail:
            raise ConnectionError("the broker did not acknowledge")
        self.batches.append(list(batch))
        return Receipt(len(batch), 0)


def ingestion(store: MemoryStore, sink: object, allowance: Allowance | None = None) -> Ingestion:
    return Ingestion(store, lambda p, o: to_service(decode(p, o)), sink, SiteRateLimiter(allowance or Allowance()))  # type: ignore[arg-type]


def payloads(*messages: dict[str, object]) -> list[str]:
    return [json.dumps(m) for m in messages]


async def test_each_message_is_decoded_with_its_origin_and_handed_to_the_sink_once() -> None:
    sink = RecordingSink()
    store = MemoryStore()
    batch = payloads(ae(S2, "AE-1"), ae(S2, "AE-2") | {"AETOXGR": 0})
    receipt = await publish_messages(ingestion(store, sink), SITE, batch, request_id="r1", at=T0)
    assert receipt == Receipt(2, 0)
    (delivered,) = sink.batches
    assert [item.origin for item in delivered] == ["https:012:r1#1", "https:012:r1#2"]
    assert type(delivered[1]).__name__ == "RejectedMessage"


async def test_the_embedded_sink_counts_accepted_duplicates_and_dead_letters(config: PipelineConfig) -> None:
    store = MemoryStore()
    sink = EmbeddedSink(store, lambda: config, FixedClock(T0))
    first = ae(S2, "AE-1", version=1)
    batch = payloads(first, first, ae(S2, "AE-2") | {"AETOXGR": 9})
    receipt = await publish_messages(ingestion(store, sink), SITE, batch, request_id="r1", at=T0)
    assert (receipt.accepted, receipt.duplicates) == (1, 1)
    assert [(d.msg_id, "AETOXGR" in d.reason) for d in receipt.dead_lettered] == [
        (json.loads(batch[2])["msg_id"], True)
    ]
    conflict = payloads(first | {"AETOXGR": 4})
    again = await publish_messages(ingestion(store, sink), SITE, conflict, request_id="r2", at=T0)
    assert again.accepted == 0 and "msg_id conflict" in again.dead_lettered[0].reason


async def test_a_foreign_site_refuses_everything_before_the_sink_and_is_audited() -> None:
    sink = RecordingSink()
    store = MemoryStore()
    batch = payloads(ae(S2), ae(subject_id(4, site="034")), ae(subject_id(5, site="077")))
    with pytest.raises(ForeignSite, match="site\\(s\\) '034', '077'"):
        await publish_messages(ingestion(store, sink), SITE, batch, request_id="r9", at=T0)
    assert sink.batches == []
    hostile = payloads(*(ae(subject_id(n)) | {"site_id": f"{n:03d}" + "x" * 5000} for n in range(8)))
    with pytest.raises(ForeignSite) as refused:
        await publish_messages(ingestion(store, sink), SITE, hostile, request_id="r10", at=T0)
    assert len(str(refused.value)) < 600 and str(refused.value).count("'") == 12 and "and 3 more" in str(refused.value)
    entry, long = store.state.workspace.audit_log
    assert len(long.detail) < 2000
    assert (entry.actor, entry.event, entry.target) == ("edc.site-012", "publish-refused", "012")
    assert json.loads(entry.detail) == {"foreign_sites": "034,077", "messages": "3", "request": "r9"}


async def test_over_the_allowance_nothing_is_decoded_or_delivered_until_the_bucket_refills() -> None:
    sink = RecordingSink()
    ingest = ingestion(MemoryStore(), sink, Allowance(per_second=1, burst=2))
    await publish_messages(ingest, SITE, payloads(ae(S2), ae(S2)), request_id="r1", at=T0)
    with pytest.raises(RateLimited) as refused:
        await publish_messages(ingest, SITE, payloads(ae(S2)), request_id="r2", at=T0)
    assert refused.value.retry_after_s == 1 and len(sink.batches) == 1
    await publish_messages(ingest, SITE, payloads(ae(S2)), request_id="r3", at=T0 + timedelta(seconds=1))
    assert len(sink.batches) == 2


async def test_a_sink_failure_gives_no_receipt_and_a_non_site_account_is_refused() -> None:
    with pytest.raises(ConnectionError):
        await publish_messages(ingestion(MemoryStore(), RecordingSink(fail=True)), SITE, payloads(ae(S2)),
                               request_id="r1", at=T0)  # fmt: skip
    reviewer = User("dr.li", Role.MEDICAL_MONITOR, T0)
    with pytest.raises(NotASite):
        await publish_messages(ingestion(MemoryStore(), RecordingSink()), reviewer, [], request_id="r1", at=T0)


async def test_received_before_knows_a_handled_message_by_msg_id_and_content(config: PipelineConfig) -> None:
    store = MemoryStore()
    sink = EmbeddedSink(store, lambda: config, FixedClock(T0))
    handled = ae(S2, "AE-1")
    await publish_messages(ingestion(store, sink), SITE, payloads(handled), request_id="r1", at=T0)
    respaced = json.dumps(handled, indent=1)  # the same document, serialised otherwise
    batch = [to_service(decode(p, "o")) for p in [*payloads(handled, handled | {"AETOXGR": 4}, ae(S2)), respaced]]
    assert await received_before(store, batch) == [True, False, False, True]
    assert await received_before(store, [to_service(decode("not json", "o"))]) == [False]
