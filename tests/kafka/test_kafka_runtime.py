"""The Kafka runtime on a real broker: publish -> worker -> mail -> PostgreSQL, crashes, takeover, poison, parity."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from safety_monitor.demo import SyntheticTrial
from safety_monitor.service.records import Publication
from tests.kafka.conftest import Stack, all_mailed, embedded_results, processed_all, results, wait_until
from tests.kafka.parity import assert_parts_match

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.smtp]


async def test_publish_worker_mail_incidence_match_the_embedded_runtime(
    stack: Stack, trial: SyntheticTrial, trial_file: Path, tmp_path: Path
) -> None:
    reference = await embedded_results(trial_file, tmp_path)
    worker = stack.worker()
    try:
        await worker.ready()
        published = stack.publish_file(trial_file, "--send-invalid")
        assert published.returncode == 0, published.stderr
        assert "refused 5" in published.stdout
        await wait_until(lambda: processed_all(stack, len(reference["inbox"])), what="trial processed")
        await wait_until(lambda: all_mailed(stack), seconds=30, what="every notice mailed")

        async def all_published() -> bool:
            report = worker.health()
            return report is not None and report["unpublished"] == 0

        await wait_until(all_published, seconds=30, what="every alert record on its topic")
        await wait_until(lambda: _true(_caught_up(worker)), seconds=60, what="lag 0 on every partition")
        health = worker.health()
        assert worker.terminate() == 0, worker.tail()
    finally:
        worker.stop_quietly()
    # the group's committed offsets are the partitions' end offsets: every record the site sent, none left over
    ends = stack.end_offsets()
    assert sum(ends.values()) == len(trial.lines)
    assert stack.committed_offsets() == ends

    kafka = await results(stack.store)
    assert_parts_match(kafka, reference)
    assert reference["alerts"] and reference["incidence"]
    # every alert notice reached the SMTP server exactly once, with its stable Message-ID
    ids = sorted(m["Message-ID"] for m in stack.smtp.inbox.messages)
    assert ids == sorted(f"<{n[0]}@example.org>" for n in kafka["notices"])
    # raised alerts and refusals were also published for downstream systems
    alerts = stack.consume_all(stack.kafka.topics.alerts, 1)
    assert alerts and {json.loads(r.value)["schema"] for r in alerts} == {"safety-monitor.alert-notice/1"}
    letters = stack.consume_all(stack.kafka.topics.deadletter, len(reference["dead_letters"]))
    assert {json.loads(r.value)["payload_hash"] for r in letters} == {d[0] for d in reference["dead_letters"]}
    assert health is not None and health["status"] == "ok"
    assert health["outbox"]["pending"] == 0 and health["consumer"]["total_lag"] == 0
    assert len(health["consumer"]["lag"]) == 20  # 5 inbound topics x 4 partitions, all held by the one worker
    # Faust's data directory is with the runtime's files, not "<app id>-data" beside the operator's
    assert _faust_data_directories(stack.kafka.app_id) == (True, False)


async def test_sigkill_after_the_db_commit_before_the_offset_commit_loses_and_doubles_nothing(
    stack: Stack, trial_file: Path, tmp_path: Path
) -> None:
    reference = await embedded_results(trial_file, tmp_path)
    # offsets are committed only every 60 s: the kill lands after database commits, before any offset commit
    first = stack.worker("crashing", KAFKA_COMMIT_INTERVAL="60", BATCH_SIZE="50")
    try:
        await first.ready()
        assert stack.publish_file(trial_file, "--send-invalid").returncode == 0
        await wait_until(lambda: _gt(stack.count("inbox"), 100), what="some batches committed")
        first.kill()
    finally:
        first.stop_quietly()
    committed_before = await stack.count("inbox")
    assert stack.committed_offsets() == {}  # the kill came before any offset commit: all of it is redelivered
    # the replacement joins the same group while the killed member is still in it (until its session times out)
    second = stack.worker("restarted")
    try:
        await second.ready()
        await wait_until(lambda: processed_all(stack, len(reference["inbox"])), what="trial processed after restart")
        await wait_until(
            lambda: all_mailed(stack), seconds=45, what="every notice mailed"
        )  # the killed worker's delivery lease (15 s) must run out first
        await wait_until(lambda: _true(_caught_up(second)), seconds=60, what="lag 0 on every partition")
        health = second.health()
        assert second.terminate() == 0, second.tail()
    finally:
        second.stop_quietly()
    assert health is not None
    assert health["processed"]["duplicates"] >= committed_before  # the redelivered batches were recognised
    assert stack.committed_offsets() == stack.end_offsets()
    kafka = await results(stack.store)
    assert_parts_match(kafka, reference)
    ids = {m["Message-ID"] for m in stack.smtp.inbox.messages}
    assert ids == {f"<{n[0]}@example.org>" for n in kafka["notices"]}


async def test_two_workers_share_partitions_and_one_takes_over(
    stack: Stack, trial: SyntheticTrial, tmp_path: Path
) -> None:
    half = len(trial.lines) // 2
    first_half, second_half = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first_half.write_text("\n".join(trial.lines[:half]) + "\n")
    second_half.write_text("\n".join(trial.lines[half:]) + "\n")
    whole = tmp_path / "whole.jsonl"
    whole.write_text("\n".join(trial.lines) + "\n")
    reference = await embedded_results(whole, tmp_path)

    a, b = stack.worker("a"), stack.worker("b")
    try:
        await a.ready()
        await b.ready()
        await wait_until(lambda: _true(_shared(a, b)), seconds=60, what="partitions split between a and b")
        assert stack.publish_file(first_half, "--send-invalid").returncode == 0
        await wait_until(lambda: _gt(stack.count("inbox"), half - 10), what="first half processed")
        assert a.terminate() == 0, a.tail()  # graceful: drains, commits, leaves the group
        await wait_until(lambda: _true(len(_lag(b)) == 20), seconds=60, what="b owns every partition")
        assert stack.publish_file(second_half, "--send-invalid").returncode == 0
        await wait_until(lambda: processed_all(stack, len(reference["inbox"])), what="second half processed by b")
        await wait_until(lambda: all_mailed(stack), seconds=30, what="every notice mailed")
        await wait_until(lambda: _true(_caught_up(b)), seconds=60, what="lag 0 on every partition")
        assert b.terminate() == 0, b.tail()
    finally:
        a.stop_quietly()
        b.stop_quietly()
    assert stack.committed_offsets() == stack.end_offsets()
    kafka = await results(stack.store)
    assert_parts_match(kafka, reference)
    # the outbox job ran once per slot across both workers: no Message-ID went out twice
    ids = [m["Message-ID"] for m in stack.smtp.inbox.messages]
    assert len(ids) == len(set(ids)) == len(kafka["notices"])


async def test_poison_messages_go_to_the_dead_letter_topic_and_the_worker_goes_on(
    stack: Stack, trial: SyntheticTrial
) -> None:
    valid = [json.loads(line) for line in trial.lines[:40] if _is_valid(line)][:20]
    ae = stack.kafka.topics.ae
    poison = [
        (ae, b"k1", b"\xff\xfe not utf-8 and not json"),
        (ae, b"k2", b"[1, 2, 3]"),
        (stack.kafka.topics.lab, b"k3", b'{"msg_type": "LB", "msg_id": "no-fields"}'),
    ]
    good = [
        (
            stack.kafka.topics.for_msg_type(m["msg_type"]),
            f"{m['STUDYID']}:{m['USUBJID']}".encode(),
            json.dumps(m).encode(),
        )
        for m in valid
    ]
    worker = stack.worker()
    try:
        await worker.ready()
        stack.produce(poison + good)
        await wait_until(lambda: _gt(stack.count("inbox"), len(good) - 1), what="valid messages after the poison")
        letters = stack.consume_all(stack.kafka.topics.deadletter, len(poison))
        health = worker.health()
    finally:
        worker.stop_quietly()
    records = [json.loads(r.value) for r in letters]
    assert len(records) == len(poison)
    assert {r["schema"] for r in records} == {"safety-monitor.dead-letter/1"}
    reasons = " | ".join(sorted(r["reason"] for r in records))
    assert "not UTF-8: byte 0xff" in reasons and "not a JSON object but list" in reasons and "no-fields" in reasons
    for record in records:
        topic, _, offset = record["origin"].partition("@")
        assert topic.split("[")[0] in (stack.kafka.topics.ae, stack.kafka.topics.lab) and offset.isdigit()
    assert health is not None and health["processed"]["dead_lettered"] == len(poison)


async def test_publications_a_crashed_worker_left_unsent_reach_the_topics(stack: Stack) -> None:
    """A worker that committed its batch and died before sending leaves the records in `publication`, unmarked:
    the next worker's `publish-pending` job sends them, once."""
    created = datetime.now(UTC) - timedelta(minutes=2)
    record = {"schema": "safety-monitor.alert-notice/1", "notice_id": "n-crashed", "kind": "raised", "alert": {}}
    left = [
        Publication("alert:n-crashed", "alerts", "ALTER-ICI-01:S-1", json.dumps(record), created),
        Publication("deadletter:h:x[0]@1", "deadletter", "m-1", json.dumps({"reason": "not JSON"}), created),
    ]
    async with stack.store() as uow:
        await uow.publications.add(left)
        await uow.commit()
    worker = stack.worker()
    try:
        await worker.ready()
        alerts = stack.consume_all(stack.kafka.topics.alerts, 1)
        letters = stack.consume_all(stack.kafka.topics.deadletter, 1)

        async def marked() -> bool:
            async with stack.store() as uow:
                return not await uow.publications.pending(datetime.now(UTC), 10)

        await wait_until(marked, what="the publications marked as sent")
        again = stack.consume_all(stack.kafka.topics.alerts, 2, seconds=3)
    finally:
        worker.stop_quietly()
    assert [json.loads(r.value)["notice_id"] for r in alerts] == ["n-crashed"]
    assert alerts[0].key == b"ALTER-ICI-01:S-1"
    assert [json.loads(r.value)["reason"] for r in letters] == ["not JSON"]
    assert len(again) == 1  # sent once: marking it stopped the next runs of the job


def _is_valid(line: str) -> bool:
    from streams.decoding import Decoded, decode

    return isinstance(decode(line, "x"), Decoded)


def _lag(worker: Any) -> dict[str, Any]:
    report = worker.health()
    return dict(report["consumer"]["lag"]) if report else {}


def _caught_up(worker: Any) -> bool:
    """The worker holds all 20 inbound partitions and reports lag 0 on each (committed = high watermark)."""
    lag = _lag(worker)
    return len(lag) == 20 and all(value == 0 for value in lag.values())


def _shared(a: Any, b: Any) -> bool:
    return bool(_lag(a)) and bool(_lag(b)) and len(_lag(a)) + len(_lag(b)) == 20


async def _true(value: bool) -> bool:
    return value


async def _gt(count: Any, bound: int) -> bool:
    return int(await count) > bound


def _faust_data_directories(app_id: str) -> tuple[bool, bool]:
    """Whether var/faust/<app id> exists, and whether Faust's default "<app id>-data" does (working directory)."""
    return (Path("var/faust") / app_id).is_dir(), Path(f"{app_id}-data").exists()
