"""Owns publishing wire messages to Kafka: validate first, pick the topic by msg_type, key by STUDYID:USUBJID."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.decoding import Decoded, decode
from streams.topics import KafkaSettings, subject_key

with warnings.catch_warnings():  # kafka-python 3.0 emits DeprecationWarnings at import on Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaProducer

log = logging.getLogger(__name__)


@dataclass
class PublishReport:
    sent: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (origin, reason)


def producer(settings: KafkaSettings, **overrides: object) -> KafkaProducer:
    """An idempotent producer (acks=all) that never auto-creates topics."""
    config: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.app_id}-publisher",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "allow_auto_create_topics": False,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def publish_lines(
    settings: KafkaSettings,
    lines: Iterable[tuple[bytes | str, str]],
    *,
    send_invalid: bool = False,
    client: KafkaProducer | None = None,
) -> PublishReport:
    """Validate each (payload, origin) and send the valid ones; refusals are reported, not sent.

    With `send_invalid` (tests, replays of what a site really sent) a refused message is still sent, to the topic
    its `msg_type` names when it names one and to the AE topic otherwise, so the worker's dead-letter path sees it.
    """
    report = PublishReport()
    own = client is None
    kafka = client or producer(settings)
    futures = []
    try:
        for payload, origin in lines:
            item = decode(payload, origin)
            if isinstance(item, Decoded):
                envelope = item.message.envelope
                topic = settings.topics.for_msg_type(envelope.msg_type.value)
                key = subject_key(envelope.study_id, envelope.subject_id)
            else:
                report.refused.append((origin, item.reason))
                if not send_invalid:
                    continue
                topic, key = settings.topics.ae, b"invalid"
            value = payload if isinstance(payload, bytes) else payload.encode("utf-8", "surrogateescape")
            futures.append(kafka.send(topic, key=key, value=value))
            report.by_topic[topic] = report.by_topic.get(topic, 0) + 1
        kafka.flush()
        for future in futures:
            future.get(timeout=30)  # raise if any send failed: the caller must know
        report.sent = len(futures)
    finally:
        if own:
            kafka.close()
    return report
