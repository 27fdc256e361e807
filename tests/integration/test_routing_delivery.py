"""Routed notifications on memory, SQLite and PostgreSQL: groups, waits, escalation, repeats, silences,
inhibition, crash safety, restarts and scheduled digests."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.adapters.sql.database import create_engine
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.adapters.templates import TemplateRenderer
from safety_monitor.domain.alerts import Alert, AlertChange, AlertStatus, ChangeKind
from safety_monitor.domain.routing import Matcher, Routing, Silence
from safety_monitor.domain.rules import Rule, Ruleset, Severity
from safety_monitor.ruleset.errors import ConfigError
from safety_monitor.ruleset.routing_loader import parse_routing
from safety_monitor.service.delivery import DeliveryReport, deliver_due
from safety_monitor.service.notifications import flush_due, plan_notifications, plan_repeats
from safety_monitor.service.pipeline import alert_notice
from safety_monitor.service.ports import OutgoingMail, UnitOfWorkFactory
from safety_monitor.service.routing_jobs import routing_jobs
from safety_monitor.service.scheduler import Scheduler
from tests.conftest import ROOT, Database

T0 = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
H = timedelta(hours=1)

ROUTING = """\
receivers:
  medical-monitors: {email: [mm1@example.org, mm2@example.org], role: medical monitor}
  dsmb: {email: [dsmb@example.org], role: DSMB}
defaults:
  group_by: [study_id, subject_id]
  group_wait: 2m
  group_interval: 15m
  repeat_interval: 24h
route:
  receiver: medical-monitors
  routes:
    - receiver: medical-monitors
      continue: true
    - receiver: dsmb
      matchers: ['grade="5"']
      group_by: [study_id, alertname]
      group_wait: 0s
inhibit_rules:
  - name: death-holds-lesser-alerts
    source_matchers: ['grade="5"']
    target_matchers: ['severity=~"high|medium"']
    equal: [study_id, subject_id]
digests:
  - name: mm-daily
    kind: daily
    receivers: [medical-monitors]
    schedule: "0 8 * * *"
    time_zone: Asia/Shanghai
  - name: dsmb-weekly
    kind: weekly
    receivers: [dsmb]
    schedule: "0 9 * * mon"
    time_zone: Asia/Shanghai
"""


def load(text: str = ROUTING) -> Routing:
    errors: list[ConfigError] = []
    routing = parse_routing("routing.yaml", text, errors, ROOT / "templates")
    assert routing is not None, errors
    return routing


@dataclass(frozen=True)
class _Condition:
    kind: str = "ae"


RULESET = Ruleset(
    (
        Rule("hemoptysis", "Hemoptysis (any grade)", _Condition(), Severity.CRITICAL, labels=(("signal", "bleed"),)),  # type: ignore[arg-type]
        Rule("hypertension-grade-3", "Hypertension grade >= 3", _Condition("vital"), Severity.HIGH),  # type: ignore[arg-type]
        Rule("any-grade-5", "Any grade 5 AE", _Condition(), Severity.CRITICAL),  # type: ignore[arg-type]
    ),
    "hash",
)


def alert(rule: str, subject: str = "S7", grade: int = 2, spid: str = "AE-1", **changes: Any) -> Alert:
    severity = "high" if rule.startswith("hypertension") else "critical"
    base = Alert(
        key=f"{rule}|X|{subject}|AE:{spid}",
        rule_id=rule,
        rule_title=rule.title(),
        severity=severity,
        action="hold <anlotinib>",
        study_id="X",
        subject_id=subject,
        subject_ref=f"AE:{spid}",
        term="Haemoptysis",
        observed_on="2026-04-29",
        grade=grade,
        status=AlertStatus.OPEN,
        raised_at=T0,
        updated_at=T0,
        last_msg_id="m1",
        detail="<script>x</script> coughing up blood",
        ruleset_hash="hash",
        ctcae_version="5.0",
    )
    return replace(base, **changes)


def change(a: Alert, kind: ChangeKind = ChangeKind.RAISED, at: datetime = T0, msg: str = "m1") -> AlertChange:
    previous = a.grade - 1 if kind is ChangeKind.ESCALATED else None
    return AlertChange(a, kind, previous, msg, at)


async def plan(store: UnitOfWorkFactory, routing: Routing, *changes: AlertChange, at: datetime = T0) -> int:
    async with store() as uow:
        await uow.alerts.put([c.alert for c in changes])  # as the pipeline does, in the same transaction
        written = await plan_notifications(
            uow, routing, RULESET, [(c, alert_notice(c, ("fallback@example.org",))) for c in changes], at
        )
        await uow.commit()
    return len(written)


class ListMailer:
    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []
        self.fail_next = 0

    async def send(self, mail: OutgoingMail) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("smtp down")
        self.sent.append(mail)


RENDERER = TemplateRenderer(ROOT / "templates")


async def deliver(
    store: UnitOfWorkFactory, mailer: ListMailer, routing: Routing | None, at: datetime
) -> DeliveryReport:
    return await deliver_due(
        store, mailer, RENDERER, sender="sm@example.org", mail_domain="example.org", now=at, routing=routing
    )


async def test_alerts_of_one_group_wait_for_group_wait_and_go_in_one_email(store: UnitOfWorkFactory) -> None:
    routing, mailer = load(), ListMailer()
    assert await plan(store, routing, change(alert("hemoptysis")), change(alert("hemoptysis", spid="AE-2"))) == 2
    await plan(store, routing, change(alert("hemoptysis", subject="S8")), at=T0 + M)
    assert (await deliver(store, mailer, routing, T0 + M)).sent == 0  # group_wait (2m) not over
    assert (await deliver(store, mailer, routing, T0 + 2 * M)).sent == 1  # S7's group
    (mail,) = mailer.sent
    assert mail.recipients == ("mm1@example.org", "mm2@example.org")
    assert mail.subject == "[CRITICAL] 2 safety alert notices (2 new) - X / S7"
    assert mail.text.count("New safety alert: Hemoptysis") == 2 and "AE:AE-2" in mail.text
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html and "<script>" in mail.text
    assert (await deliver(store, mailer, routing, T0 + 3 * M)).sent == 1  # S8's group, one minute later
    assert (await deliver(store, mailer, routing, T0 + 3 * M)).sent == 0  # nothing twice


async def test_later_changes_of_a_group_wait_for_group_interval(store: UnitOfWorkFactory) -> None:
    routing, mailer = load(), ListMailer()
    await plan(store, routing, change(alert("hemoptysis")))
    await deliver(store, mailer, routing, T0 + 2 * M)
    await plan(store, routing, change(alert("hemoptysis", spid="AE-2"), at=T0 + 3 * M), at=T0 + 3 * M)
    assert (await deliver(store, mailer, routing, T0 + 16 * M)).sent == 0
    assert (await deliver(store, mailer, routing, T0 + 17 * M)).sent == 1  # 15 min after the first email
    assert len(mailer.sent) == 2


async def test_an_escalation_goes_at_once_whatever_the_intervals(store: UnitOfWorkFactory) -> None:
    routing, mailer = load(), ListMailer()
    first = alert("hemoptysis", grade=2)
    await plan(store, routing, change(first))
    await deliver(store, mailer, routing, T0 + 2 * M)
    worse = replace(first, grade=3)
    await plan(store, routing, change(worse, ChangeKind.ESCALATED, T0 + 3 * M, "m2"), at=T0 + 3 * M)
    assert (await deliver(store, mailer, routing, T0 + 3 * M)).sent == 1  # not after group_interval or repeat
    assert mailer.sent[-1].subject.startswith("[ESCALATED] Hemoptysis - S7 (Haemoptysis grade 3)")


async def test_a_redelivered_batch_writes_no_second_notification(store: UnitOfWorkFactory) -> None:
    routing, mailer = load(), ListMailer()
    await plan(store, routing, change(alert("hemoptysis")))
    await plan(store, routing, change(alert("hemoptysis")))
    await deliver(store, mailer, routing, T0 + 2 * M)
    assert len(mailer.sent) == 1 and mailer.sent[0].subject.startswith("[CRITICAL] Hemoptysis - S7")


async def test_an_open_alert_is_repeated_after_repeat_interval_once(store: UnitOfWorkFactory) -> None:
    routing, mailer = load(), ListMailer()
    await plan(store, routing, change(alert("hemoptysis")))
    await deliver(store, mailer, routing, T0 + 2 * M)
    assert await plan_repeats(store, T0 + 2 * M + 23 * H) == 0
    assert await plan_repeats(store, T0 + 2 * M + 24 * H) == 1
    assert await plan_repeats(store, T0 + 2 * M + 24 * H + M) == 0  # a re-run writes nothing new
    await deliver(store, mailer, routing, T0 + 4 * M + 24 * H)
    assert [m.subject.split("]")[0] for m in mailer.sent] == ["[CRITICAL", "[REMINDER"]
    # The reminder was logged: the next one is 24 h after it, not after the first email.
    assert await plan_repeats(store, T0 + 5 * M + 24 * H) == 0
    assert await plan_repeats(store, T0 + 4 * M + 48 * H) == 1


async def test_a_removed_basis_sends_an_update_and_stops_the_reminders(store: UnitOfWorkFactory) -> None:
    routing, mailer = load(), ListMailer()
    raised = alert("hemoptysis")
    await plan(store, routing, change(raised))
    await deliver(store, mailer, routing, T0 + 2 * M)
    removed = replace(raised, status=AlertStatus.BASIS_REMOVED)
    await plan(store, routing, change(removed, ChangeKind.BASIS_REMOVED, T0 + H, "m2"), at=T0 + H)
    await deliver(store, mailer, routing, T0 + H + 2 * M)
    assert mailer.sent[-1].subject.startswith("[UPDATE] Hemoptysis - S7")
    assert await plan_repeats(store, T0 + 48 * H) == 0


async def test_a_silence_holds_and_records_then_the_open_alert_is_sent_when_it_expires(
    store: UnitOfWorkFactory,
) -> None:
    silence = Silence("s1", (Matcher.of("alertname", "=", "hemoptysis"),), "Dr Li", "site retraining", T0, T0 + 6 * H)
    routing, mailer = replace(load(), silences=(silence,)), ListMailer()
    await plan(store, routing, change(alert("hemoptysis")))
    report = await deliver(store, mailer, routing, T0 + 2 * M)
    assert report.sent == 0 and report.flushed is not None and report.flushed.held == 1
    async with store() as uow:
        (held,) = await uow.notifications.pending()
    assert held.held_by == "silenced by s1 (Dr Li: site retraining) until 2026-05-03T18:00+00:00"
    assert (await deliver(store, mailer, routing, T0 + 6 * H - M)).sent == 0
    assert (await deliver(store, mailer, routing, T0 + 6 * H)).sent == 1  # expired, still open: sent late


async def test_an_alert_closed_while_silenced_is_dropped_not_sent(store: UnitOfWorkFactory) -> None:
    silence = Silence("s1", (Matcher.of("alertname", "=", "hemoptysis"),), "Dr Li", "retraining", T0, T0 + H)
    routing, mailer = replace(load(), silences=(silence,)), ListMailer()
    raised = alert("hemoptysis")
    await plan(store, routing, change(raised))
    await deliver(store, mailer, routing, T0 + 2 * M)
    removed = replace(raised, status=AlertStatus.BASIS_REMOVED)
    await plan(store, routing, change(removed, ChangeKind.BASIS_REMOVED, T0 + 3 * M, "m2"), at=T0 + 3 * M)
    await deliver(store, mailer, routing, T0 + 5 * M)
    report = await deliver(store, mailer, routing, T0 + 2 * H)
    assert mailer.sent == [] and report.flushed is not None and report.flushed.dropped == 2
    async with store() as uow:
        states = sorted((n.kind, n.state) for n in await uow.notifications.list())
    assert states == [("basis_removed", "dropped"), ("raised", "dropped")]  # recorded, not deleted


async def test_a_grade_5_alert_inhibits_lesser_alerts_of_the_subject(store: UnitOfWorkFactory) -> None:
    routing, mailer = load(), ListMailer()
    await plan(store, routing, change(alert("any-grade-5", grade=5)), change(alert("hypertension-grade-3", grade=3)))
    await deliver(store, mailer, routing, T0 + 2 * M)
    receivers = sorted(m.recipients for m in mailer.sent)
    assert receivers == [("dsmb@example.org",), ("mm1@example.org", "mm2@example.org")]
    assert all("Hypertension" not in m.text for m in mailer.sent)
    async with store() as uow:
        (held,) = await uow.notifications.pending()
    assert held.held_by is not None and held.held_by.startswith("inhibited by death-holds-lesser-alerts")


async def test_a_crash_while_emailing_a_group_loses_and_doubles_nothing(store: UnitOfWorkFactory) -> None:
    routing, mailer = load(), ListMailer()
    await plan(store, routing, change(alert("hemoptysis")), change(alert("hemoptysis", spid="AE-2")))

    class CommitCrashes:
        def __call__(self) -> Any:
            uow = store()

            async def crash() -> None:
                raise ConnectionError("database went away at commit")

            uow.commit = crash  # type: ignore[method-assign]
            return uow

    with pytest.raises(ConnectionError):
        await flush_due(CommitCrashes(), routing, T0 + 2 * M)
    async with store() as uow:
        assert len(await uow.notifications.pending()) == 2 and await uow.outbox.due(T0 + H, 10) == []

    mailer.fail_next = 1  # and the SMTP server refuses the first attempt
    assert (await deliver(store, mailer, routing, T0 + 2 * M)).failed == 1
    assert (await deliver(store, mailer, routing, T0 + 3 * M)).sent == 1  # backoff over: the same email
    assert (await deliver(store, mailer, routing, T0 + H)).sent == 0
    assert len(mailer.sent) == 1 and mailer.sent[0].text.count("New safety alert") == 2


async def test_notifications_taken_by_one_flush_cannot_go_in_a_second_email(store: UnitOfWorkFactory) -> None:
    routing = load()
    await plan(store, routing, change(alert("hemoptysis")))
    async with store() as uow:
        (item,) = await uow.notifications.pending()
        assert await uow.notifications.mark_mailed([item.notification_id], "mail-a", T0) == 1
        assert await uow.notifications.mark_mailed([item.notification_id], "mail-b", T0) == 0
        await uow.commit()


async def test_holds_drops_and_the_log_are_written_for_every_row_of_one_call(store: UnitOfWorkFactory) -> None:
    routing = load()
    subjects = ("S1", "S2", "S3", "S4")
    await plan(store, routing, *(change(alert("hemoptysis", subject=s, spid=f"AE-{s}")) for s in subjects))
    async with store() as uow:
        items = {n.alert_key.split("|")[2]: n for n in await uow.notifications.pending()}
        await uow.notifications.hold([(items["S1"].notification_id, "r1"), (items["S2"].notification_id, "r2")])
        await uow.notifications.drop([(items["S3"].notification_id, "gone")], T0 + M)
        mailed = items["S4"]
        await uow.notifications.mark_mailed([mailed.notification_id], "mail-4", T0 + M)
        keys = [(n.receiver, n.alert_key) for n in items.values()]
        await uow.notifications.record_email(mailed.group_id, keys, "mail-4", T0 + 2 * M)
        await uow.commit()
    async with store() as uow:
        after = {n.alert_key.split("|")[2]: n for n in await uow.notifications.list()}
        log = await uow.notifications.log(keys)
    assert [(after[s].state, after[s].held_by) for s in subjects] == [
        ("pending", "r1"),
        ("pending", "r2"),
        ("dropped", "gone"),
        ("mailed", None),
    ]
    assert after["S3"].decided_at == T0 + M
    assert {(e.last_mail_id, e.last_notified_at) for e in log.values()} == {("mail-4", T0 + 2 * M)}
    assert len(log) == len(subjects)


async def test_without_a_routing_file_every_alert_goes_to_alert_recipients_at_once(store: UnitOfWorkFactory) -> None:
    from safety_monitor.domain.routing import fallback_routing

    routing, mailer = fallback_routing(("a@example.org",)), ListMailer()
    await plan(store, routing, change(alert("hemoptysis")), change(alert("hemoptysis", spid="AE-2")))
    assert (await deliver(store, mailer, None, T0)).sent == 2  # no wait, one alert per email
    assert {m.recipients for m in mailer.sent} == {("a@example.org",)}
    assert await plan_repeats(store, T0 + 400 * 24 * H) == 0  # never repeated


async def test_a_restarted_app_neither_resends_nor_forgets(database: Database) -> None:
    routing, mailer = load(), ListMailer()
    await plan(database.store, routing, change(alert("hemoptysis")))
    await deliver(database.store, mailer, routing, T0 + 2 * M)
    await database.store.engine.dispose()

    engine = create_engine(database.url, schema=database.schema)  # a new process over the same database
    try:
        restarted = SqlStore(engine)
        assert (await deliver(restarted, mailer, routing, T0 + H)).sent == 0  # not re-sent
        await plan(restarted, routing, change(alert("hemoptysis")))  # the same change redelivered: no new email
        assert (await deliver(restarted, mailer, routing, T0 + 2 * H)).sent == 0
        assert await plan_repeats(restarted, T0 + 2 * M + 24 * H) == 1  # the log remembers when it was sent
        assert (await deliver(restarted, mailer, routing, T0 + 5 * M + 24 * H)).sent == 1
    finally:
        await engine.dispose()
    assert [m.subject.split("]")[0] for m in mailer.sent] == ["[CRITICAL", "[REMINDER"]


async def test_digest_schedules_fire_once_per_slot_across_workers(store: UnitOfWorkFactory) -> None:
    routing, mailer = load(), ListMailer()
    clock = FixedClock(datetime(2026, 5, 3, 23, 59, 30, tzinfo=UTC))  # Sunday 07:59:30 in Shanghai
    jobs = [
        routing_jobs(store, mailer, RENDERER, routing, sender="sm@example.org", mail_domain="example.org")
        for _ in range(2)
    ]
    workers = [Scheduler(store, clock, j, holder=f"w{i}") for i, j in enumerate(jobs)]

    async def tick_at(at: datetime) -> None:
        clock.set(at)
        for worker in workers:
            await worker.tick()

    # Sunday 07:59: the last slots (Saturday 08:00, last Monday 09:00) are older than the catch-up window.
    for second in (0, 20, 40):
        await tick_at(datetime(2026, 5, 3, 23, 59, second, tzinfo=UTC))
    assert mailer.sent == []
    for minute in range(4):
        await tick_at(datetime(2026, 5, 4, 0, minute, 1, tzinfo=UTC))  # Monday 08:00-08:03 in Shanghai
    await tick_at(datetime(2026, 5, 4, 1, 0, 1, tzinfo=UTC))  # Monday 09:00
    await tick_at(datetime(2026, 5, 4, 3, 0, 1, tzinfo=UTC))  # 11:00: nothing new to send
    await tick_at(datetime(2026, 5, 5, 0, 0, 1, tzinfo=UTC))  # Tuesday 08:00
    assert [(m.recipients, m.subject.split(" - ")[0]) for m in mailer.sent] == [
        (("mm1@example.org", "mm2@example.org"), "Safety digest (daily)"),
        (("dsmb@example.org",), "Safety digest (weekly)"),
        (("mm1@example.org", "mm2@example.org"), "Safety digest (daily)"),
    ]
    assert len({m.message_id for m in mailer.sent}) == 3


async def test_a_digest_missed_while_down_is_sent_once_on_return(store: UnitOfWorkFactory) -> None:
    from safety_monitor.service.digest_schedule import send_scheduled_digests

    routing = load()
    back = datetime(2026, 5, 4, 2, 30, tzinfo=UTC)  # Monday 10:30 in Shanghai: down at 08:00 and 09:00
    assert await send_scheduled_digests(store, routing, back) == ["mm-daily", "dsmb-weekly"]
    assert await send_scheduled_digests(store, routing, back + M) == []
    async with store() as uow:
        assert await uow.digests.last_sent("schedule:mm-daily") == datetime(2026, 5, 4, 0, 0, tzinfo=UTC)
