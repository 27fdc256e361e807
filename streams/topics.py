"""Owns the Kafka topics: names and partitions from the environment, msg_type routing, explicit creation and checks.

Topics are never auto-created: the inbound topics must share one partition count (co-partitioned, keyed
`STUDYID:USUBJID`) so one worker owns a subject on every topic at once, and a broker's auto-created topic has one
partition. `safety-monitor topics create` makes them; the worker refuses to start when one is missing or wrong.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from safety_monitor.settings import EnvReader, SettingsError

with warnings.catch_warnings():  # kafka-python 3.0 emits DeprecationWarnings at import on Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)

# Tumour assessments (RS) travel on the subject topic: a few per subject per six weeks, keyed like the rest.
MSG_TYPE_TOPICS = {"AE": "ae", "LB": "lab", "VS": "vitals", "EG": "ecg", "SUBJECT": "subject", "RS": "subject"}


@dataclass(frozen=True, slots=True)
class TopicNames:
    ae: str = "safety.ae"
    lab: str = "safety.lab"
    vitals: str = "safety.vitals"
    ecg: str = "safety.ecg"
    subject: str = "safety.subject"
    alerts: str = "safety.alerts"
    deadletter: str = "safety.deadletter"

    @property
    def inbound(self) -> tuple[str, ...]:
        return (self.ae, self.lab, self.vitals, self.ecg, self.subject)

    @property
    def outbound(self) -> tuple[str, ...]:
        return (self.alerts, self.deadletter)

    def for_msg_type(self, msg_type: str) -> str:
        return str(getattr(self, MSG_TYPE_TOPICS[msg_type]))


_TOPIC_ENV = {
    "KAFKA_TOPIC_AE": "ae",
    "KAFKA_TOPIC_LAB": "lab",
    "KAFKA_TOPIC_VITALS": "vitals",
    "KAFKA_TOPIC_ECG": "ecg",
    "KAFKA_TOPIC_SUBJECT": "subject",
    "KAFKA_TOPIC_ALERTS": "alerts",
    "KAFKA_TOPIC_DEADLETTER": "deadletter",
}


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Kafka runtime configuration; every variable is read by `from_env` and all problems are reported together."""

    bootstrap_servers: str = "localhost:9092"
    topics: TopicNames = field(default_factory=TopicNames)
    partitions: int = 8
    replication_factor: int = 1
    app_id: str = "safety-monitor"  # Faust app id = consumer group
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    batch_within: float = 0.05  # seconds a partial batch may wait for more (a backlog fills BATCH_SIZE at once)
    session_timeout: float = 10.0  # seconds; low so a dead worker's partitions move on quickly
    delivery_interval: float = 2.0  # seconds between outbox delivery passes (one worker per pass)
    commit_interval: float = 1.0  # seconds between offset commits (of batches already committed to the database)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSettings:
        reader = EnvReader(os.environ if environ is None else environ)
        problems, values, get, number = reader.problems, reader.values, reader.get, reader.number
        names: dict[str, str] = {}

        if get("KAFKA_BOOTSTRAP_SERVERS"):
            values["bootstrap_servers"] = get("KAFKA_BOOTSTRAP_SERVERS")
        if get("KAFKA_APP_ID"):
            values["app_id"] = get("KAFKA_APP_ID")
        if get("WORKER_WEB_HOST"):
            values["web_host"] = get("WORKER_WEB_HOST")
        for variable, attribute in _TOPIC_ENV.items():
            if get(variable):
                names[attribute] = get(variable)
        number("KAFKA_PARTITIONS", "partitions", int, 1)
        number("KAFKA_REPLICATION_FACTOR", "replication_factor", int, 1)
        number("WORKER_WEB_PORT", "web_port", int, 1)
        number("KAFKA_BATCH_WITHIN", "batch_within", float, 0.01)
        number("KAFKA_SESSION_TIMEOUT", "session_timeout", float, 3)
        number("DELIVERY_INTERVAL", "delivery_interval", float, 0.1)
        number("KAFKA_COMMIT_INTERVAL", "commit_interval", float, 0.1)
        settings = replace(cls(), topics=replace(TopicNames(), **names), **values)
        all_names = settings.topics.inbound + settings.topics.outbound
        if len(set(all_names)) != len(all_names):
            problems.append(f"KAFKA_TOPIC_*: every topic needs its own name, got {', '.join(all_names)}")
        if problems:
            raise SettingsError(problems)
        return settings


@dataclass(frozen=True, slots=True)
class TopicReport:
    created: tuple[str, ...]
    existing: tuple[str, ...]


class TopicsNotReady(RuntimeError):
    """The broker lacks a topic, or has one with another partition count than the configured one."""


def admin_client(settings: KafkaSettings) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id=f"{settings.app_id}-admin")


def describe(admin: KafkaAdminClient, names: tuple[str, ...]) -> dict[str, int]:
    """Partition count of each topic that exists (describe does not auto-create)."""
    found: dict[str, int] = {}
    for info in admin.describe_topics(list(names)):
        if info["error_code"] == 0:
            found[info["name"]] = len(info["partitions"])
    return found


def create_topics(settings: KafkaSettings) -> TopicReport:
    """Create every topic with the configured partitions, one at a time (kafka-python 3 fails a whole batch when
    one exists). An existing topic with another partition count is an error: co-partitioning would break."""
    admin = admin_client(settings)
    try:
        wanted = settings.topics.inbound + settings.topics.outbound
        existing = describe(admin, wanted)
        created = []
        for name in wanted:
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, settings.partitions, settings.replication_factor)])
                created.append(name)
                log.info("topic created name=%s partitions=%d", name, settings.partitions)
            except TopicAlreadyExistsError:  # created by someone else meanwhile
                pass
        _check(_visible(admin, wanted), settings)
        return TopicReport(tuple(created), tuple(n for n in wanted if n in existing))
    finally:
        admin.close()


def _visible(admin: KafkaAdminClient, names: tuple[str, ...], seconds: float = 30.0) -> dict[str, int]:
    """Describe the topics until all of them show: Apache Kafka answers CreateTopics once its controller has the
    topic, and the broker's metadata (what describe and clients see) follows a moment later."""
    deadline = time.monotonic() + seconds
    while True:
        found = describe(admin, names)
        if len(found) == len(names) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def check_topics(settings: KafkaSettings) -> None:
    """Raise `TopicsNotReady` unless every topic exists with the configured partition count."""
    admin = admin_client(settings)
    try:
        _check(describe(admin, settings.topics.inbound + settings.topics.outbound), settings)
    finally:
        admin.close()


def _check(found: dict[str, int], settings: KafkaSettings) -> None:
    problems = []
    for name in settings.topics.inbound + settings.topics.outbound:
        if name not in found:
            problems.append(f"topic {name} does not exist")
        elif name in settings.topics.inbound and found[name] != settings.partitions:
            problems.append(f"topic {name} has {found[name]} partitions, KAFKA_PARTITIONS={settings.partitions}")
    if problems:
        raise TopicsNotReady(
            "; ".join(problems) + " (run `safety-monitor topics create`; inbound topics must be co-partitioned)"
        )


def subject_key(study_id: str, subject_id: str) -> bytes:
    """The message key: every fact of one subject lands on the same partition number of every inbound topic."""
    return f"{study_id}:{subject_id}".encode()
