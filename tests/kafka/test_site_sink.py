"""POST /api/v1/messages in Kafka mode on a real broker: the receipt comes once the records are acknowledged
(acks=all), each on the topic of its msg_type, keyed STUDYID:USUBJID as `publish` keys it, the refused one on the
AE topic under the key `invalid` for the worker's dead-letter path (the worker's side: test_kafka_runtime.py)."""

from __future__ import annotations

import json
import uuid
import warnings
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safety_monitor.domain.access import Role
from safety_monitor.web.app import create_app
from streams.site_sink import KafkaSink
from streams.topics import KafkaSettings, create_topics
from tests.factories import STUDY, ae, lb, subject_id
from tests.workspace import build_workspace

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer

pytestmark = [pytest.mark.kafka]


def test_the_receipt_comes_after_every_record_is_acknowledged_on_its_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_APP_ID": f"sm-test-{run}",
        "KAFKA_PARTITIONS": "2",
        **{f"KAFKA_TOPIC_{n}": f"t{run}.{n.lower()}" for n in ("AE", "LAB", "VITALS", "ECG", "SUBJECT")},
        "KAFKA_TOPIC_ALERTS": f"t{run}.alerts",
        "KAFKA_TOPIC_DEADLETTER": f"t{run}.deadletter",
    }
    kafka = KafkaSettings.from_env(env)
    create_topics(kafka)
    workspace = build_workspace(tmp_path)
    s2 = subject_id(2)
    good_ae, good_lb = ae(s2, "AE-1", "Pneumonitis", 3), lb(s2, "ALT", 212)
    bad = ae(s2, "AE-2", "Rash", 3) | {"AETOXGR": 6}
    app = workspace.app()
    sink = KafkaSink(kafka, app.store)
    try:
        with TestClient(create_app(app, sink=sink)) as client:
            headers = {"Authorization": f"Bearer {workspace.tokens[Role.SITE]}"}
            answer = client.post("/api/v1/messages", headers=headers, json=[good_ae, good_lb, bad])
            foreign = client.post("/api/v1/messages", headers=headers, json=[ae(subject_id(3, site="034"))])
            # Messages the workspace's workers already handled (here: replayed into its database) are counted as
            # duplicates and not produced again.
            replayed = (tmp_path / "trial.jsonl").read_text().splitlines()[:3]
            ndjson = headers | {"Content-Type": "application/x-ndjson"}
            handled = client.post("/api/v1/messages", headers=ndjson, content="\n".join(replayed))
    finally:
        sink.close()
    assert answer.status_code == 200, answer.text
    receipt = answer.json()
    assert (receipt["accepted"], receipt["duplicates"]) == (2, 0)
    assert [d["msg_id"] for d in receipt["dead_lettered"]] == [bad["msg_id"]]
    assert "grade 6 is impossible" in receipt["dead_lettered"][0]["reason"]
    assert foreign.status_code == 403
    assert handled.json() == {"accepted": 0, "duplicates": 3, "dead_lettered": []}

    consumer = KafkaConsumer(
        *kafka.topics.inbound,
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=10_000,
    )
    records = []
    try:
        for record in consumer:  # the receipt came after acks=all: every record is already readable; a fourth
            # (a handled message produced again) would show within the consumer's 10 s
            records.append((record.topic, record.key, json.loads(record.value)))
            if len(records) == 4:
                break
    finally:
        consumer.close()
    key = f"{STUDY}:{s2}".encode()
    assert sorted(records, key=lambda r: r[2]["msg_id"]) == sorted(
        [(kafka.topics.ae, key, good_ae), (kafka.topics.lab, key, good_lb), (kafka.topics.ae, b"invalid", bad)],
        key=lambda r: r[2]["msg_id"],
    )
