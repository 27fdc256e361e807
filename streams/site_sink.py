"""Owns the Kafka side of a site's HTTPS publication: the batch produced to the inbound topics with acks=all, the
receipt given only once every record is acknowledged by the in-sync replicas."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

from safety_monitor.service.ingestion import DeadLettered, Item, Receipt, received_before
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.records import InboundMessage
from streams.publish import producer
from streams.topics import KafkaSettings, subject_key

with warnings.catch_warnings():  # kafka-python 3.0 emits DeprecationWarnings at import on Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaProducer

SEND_TIMEOUT_S = 30.0


@dataclass
class KafkaSink:
    """Valid messages go to the topic of their msg_type, keyed STUDYID:USUBJID as `publish` does. A refused message
    is produced too (to the AE topic, key `invalid`, as `publish --send-invalid` does), so the worker stores it as
    a dead letter like one from any other source; the receipt names it with the decoder's reason.

    A message the inbox already holds (same msg_id, same content: a retry of a request the workers have handled)
    is counted as a duplicate and not produced again; one still in flight is produced again, and the worker's
    inbox drops it (counted there, never applied twice)."""

    settings: KafkaSettings
    store: UnitOfWorkFactory
    _client: KafkaProducer | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    async def deliver(self, batch: Sequence[Item]) -> Receipt:
        seen = await received_before(self.store, batch)
        fresh = [item for item, known in zip(batch, seen, strict=True) if not known]
        receipt = await asyncio.to_thread(self._send, fresh) if fresh else Receipt(0, 0)
        return Receipt(receipt.accepted, len(batch) - len(fresh), receipt.dead_lettered)

    def _producer(self) -> KafkaProducer:
        with self._lock:
            if self._client is None:
                self._client = producer(self.settings, client_id=f"{self.settings.app_id}-https")
            return self._client

    def _send(self, batch: Sequence[Item]) -> Receipt:
        client = self._producer()
        futures = []
        letters = []
        for item in batch:
            if isinstance(item, InboundMessage):
                envelope = item.message.envelope
                topic = self.settings.topics.for_msg_type(envelope.msg_type.value)
                key = subject_key(envelope.study_id, envelope.subject_id)
            else:
                topic, key = self.settings.topics.ae, b"invalid"
                letters.append(DeadLettered(item.msg_id, item.reason))
            value = item.payload.encode("utf-8", "surrogateescape")
            futures.append(client.send(topic, key=key, value=value))
        client.flush(timeout=SEND_TIMEOUT_S)
        for future in futures:
            future.get(timeout=SEND_TIMEOUT_S)  # raises when a record was not acknowledged: no receipt then
        return Receipt(len(batch) - len(letters), 0, tuple(letters))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
