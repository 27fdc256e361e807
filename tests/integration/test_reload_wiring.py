"""Hot reload as a running process sees it: rules and routing swap in together or not at all, and the pipeline
and the scheduled jobs (delivery, digests) use what is in force after a reload, without a restart."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.bootstrap import App, bootstrap
from safety_monitor.service.ports import OutgoingMail, UnitOfWorkFactory
from safety_monitor.service.reload import install_sighup_reload
from safety_monitor.settings import Settings
from tests.conftest import ROOT, SKELETON_RULES
from tests.factories import ae, inbound, subject_id
from tests.harness import run

EXTRA_RULE = """\
rules:
  - id: any-fatigue
    title: Any fatigue
    when: {kind: ae, terms: [Fatigue]}
    severity: info
"""

ROUTING = """\
receivers:
  medical-monitors: {email: [mm@example.org]}
  dsmb: {email: [dsmb@example.org]}
defaults:
  group_by: [study_id, subject_id]
  group_wait: 1m
  group_interval: 15m
  repeat_interval: 24h
route:
  receiver: medical-monitors
"""

SILENCE_S2 = """\
silences:
  - id: s2-known
    matchers: ['subject_id="ALTER-ICI-01-012-0002"']
    author: Dr Li
    reason: known and managed
    starts_at: 2026-05-01T00:00:00Z
    ends_at: 2026-06-01T00:00:00Z
"""

DAILY_DIGEST = """\
digests:
  - {name: dsmb-daily, kind: daily, receivers: [dsmb], schedule: "0 8 * * *", time_zone: UTC}
"""

T0 = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)
S1, S2 = subject_id(1), subject_id(2)


class Mailbox:
    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []

    async def send(self, mail: OutgoingMail) -> None:
        self.sent.append(mail)

    def subjects(self) -> list[tuple[tuple[str, ...], str]]:
        return [(m.recipients, m.subject.split(" - ")[0]) for m in self.sent]


def app_over(
    rules: Path,
    tmp_path: Path,
    *,
    store: UnitOfWorkFactory | None = None,
    clock: FixedClock | None = None,
    mailer: Mailbox | None = None,
    recipients: tuple[str, ...] = ("dsmb@example.org",),
) -> App:
    settings = Settings.from_env(
        {},
        database_url=f"sqlite:///{tmp_path}/r.db",
        rules_dir=rules,
        templates_dir=ROOT / "templates",
        alert_recipients=recipients,
    )
    return bootstrap(settings, store=store, clock=clock, mailer=mailer)


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(SKELETON_RULES, target)
    (target / "routing.yaml").write_text(ROUTING)
    return target


async def test_sighup_reloads_rules_into_the_running_pipeline(tmp_path: Path, now) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "rules"
    shutil.copytree(SKELETON_RULES, rules)
    app = app_over(rules, tmp_path)
    await app.start()
    try:
        holder = app.configuration_holder()
        install_sighup_reload(holder, app.clock)
        before = app.pipeline.ruleset.content_hash

        (rules / "extra.yaml").write_text(EXTRA_RULE)
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if app.pipeline.ruleset.content_hash != before:
                break
            await asyncio.sleep(0.01)
        assert app.pipeline.ruleset.by_id("any-fatigue") is not None
        assert holder.history[-1][0] is not None  # dated by the app's clock
        outcome = await run(app.store, app.pipeline, now, inbound(ae(subject_id(1), "AE-1", "Fatigue", 1)))
        assert outcome.alerts_by_rule == {"any-fatigue": 1}

        good = app.pipeline.ruleset.content_hash
        (rules / "extra.yaml").write_text(EXTRA_RULE.replace("severity: info", "severity: urgent"))
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if holder.last_error:
                break
            await asyncio.sleep(0.01)
        assert "severity 'urgent' is not one of" in holder.last_error
        assert app.pipeline.ruleset.content_hash == good  # the last good ruleset stays in force
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await app.close()


def test_a_reload_swaps_rules_and_routing_in_together_and_reports_both_hashes(rules: Path, tmp_path: Path) -> None:
    app = app_over(rules, tmp_path)
    holder = app.configuration_holder()
    first = app.configuration
    assert first.routing_hash and app.routing is not None and app.routing.digests == ()

    (rules / "extra.yaml").write_text(EXTRA_RULE)
    (rules / "routing.yaml").write_text(ROUTING + DAILY_DIGEST)
    result = holder.reload()
    assert result.ok and result.changed
    assert (result.ruleset_hash, result.routing_hash) == (app.configuration.ruleset_hash, app.routing.content_hash)
    assert result.ruleset_hash != first.ruleset_hash and result.routing_hash != first.routing_hash
    assert app.pipeline.ruleset.by_id("any-fatigue") is not None
    assert [d.name for d in app.routing.digests] == ["dsmb-daily"]
    assert app.pipeline.effective_routing() is app.routing
    assert result.describe().startswith(f"reloaded: ruleset {result.ruleset_hash[:12]}, routing ")
    assert holder.reload().changed is False


def test_a_broken_routing_file_keeps_the_last_good_rules_and_routing(rules: Path, tmp_path: Path) -> None:
    app = app_over(rules, tmp_path)
    holder = app.configuration_holder()
    good = app.configuration

    (rules / "extra.yaml").write_text(EXTRA_RULE)  # a good rule change...
    broken = ROUTING.replace("group_wait: 1m", "grup_wait: 1m").replace(
        "receiver: medical-monitors", "receiver: nurses"
    )
    (rules / "routing.yaml").write_text(broken)  # ...with a broken routing file: neither is swapped in
    result = holder.reload()
    assert not result.ok and not result.changed
    assert (result.ruleset_hash, result.routing_hash) == (good.ruleset_hash, good.routing_hash)
    assert app.configuration == good and app.pipeline.ruleset.by_id("any-fatigue") is None
    routing_file = rules / "routing.yaml"
    assert result.error.splitlines() == [
        f"Invalid config at {routing_file}, line 6 (defaults.grup_wait): 'grup_wait' is not an option "
        "(did you mean 'group_wait'?)",
        f"Invalid config at {routing_file}, line 10 (route.receiver): undefined receiver 'nurses' used in route; "
        "allowed: dsmb, medical-monitors",
    ]
    assert "reload refused; keeping ruleset" in result.describe()

    (rules / "extra.yaml").write_text(EXTRA_RULE.replace("severity: info", "severity: urgent"))
    result = holder.reload()  # both files broken: every error of both, each with its file and line
    assert str(rules / "extra.yaml") in result.error and str(routing_file) in result.error
    assert app.configuration == good

    (rules / "extra.yaml").unlink()
    (rules / "routing.yaml").write_text(ROUTING)
    assert holder.reload().ok and holder.last_error == ""


def test_removing_the_routing_file_with_nobody_in_alert_recipients_is_refused(rules: Path, tmp_path: Path) -> None:
    app = app_over(rules, tmp_path, recipients=())
    holder = app.configuration_holder()
    (rules / "routing.yaml").unlink()
    result = holder.reload()
    assert not result.ok and "alerts would reach nobody" in result.error
    assert app.routing is not None  # the routing in force stays

    with_recipients = app_over(rules, tmp_path)  # with ALERT_RECIPIENTS, no routing file is a valid choice
    (rules / "routing.yaml").write_text(ROUTING)
    holder = with_recipients.configuration_holder()
    (rules / "routing.yaml").unlink()
    assert holder.reload().ok and with_recipients.routing is None and holder.reload().routing_hash == ""


async def test_scheduled_delivery_uses_the_routing_in_force_after_a_reload(
    rules: Path, tmp_path: Path, store: UnitOfWorkFactory
) -> None:
    clock, mailbox = FixedClock(T0), Mailbox()
    app = app_over(rules, tmp_path, store=store, clock=clock, mailer=mailbox)
    holder = app.configuration_holder()
    scheduler = app.scheduler("only")
    await run(app.store, app.pipeline, T0, inbound(ae(S1, "AE-1", "Haemoptysis", 2), ae(S2, "AE-1", "Haemoptysis", 2)))
    assert await scheduler.tick() and mailbox.sent == []  # group_wait: 1m

    (rules / "routing.yaml").write_text(ROUTING + SILENCE_S2)  # a silence for S2 arrives by reload
    assert holder.reload(T0).ok
    clock.set(T0 + timedelta(minutes=2))
    await scheduler.tick()
    assert [m.recipients for m in mailbox.sent] == [("mm@example.org",)]  # S1 only: S2 is held
    assert S1 in mailbox.sent[0].text and S2 not in mailbox.sent[0].text

    (rules / "routing.yaml").write_text(ROUTING)  # the silence withdrawn by reload: S2 goes out
    assert holder.reload(T0).ok
    clock.set(T0 + timedelta(minutes=3))
    await scheduler.tick()
    assert len(mailbox.sent) == 2 and S2 in mailbox.sent[1].text


async def test_digest_schedules_added_and_removed_by_a_reload_take_effect(
    rules: Path, tmp_path: Path, store: UnitOfWorkFactory
) -> None:
    clock, mailbox = FixedClock(T0), Mailbox()
    app = app_over(rules, tmp_path, store=store, clock=clock, mailer=mailbox)
    holder = app.configuration_holder()
    scheduler = app.scheduler("only")
    jobs = [job.name for job in scheduler.jobs]

    clock.set(datetime(2026, 5, 4, 8, 0, 30, tzinfo=UTC))
    await scheduler.tick()
    assert mailbox.sent == []  # no schedule in force at 08:00

    (rules / "routing.yaml").write_text(ROUTING + DAILY_DIGEST)
    assert holder.reload(clock.now()).ok
    clock.set(datetime(2026, 5, 4, 8, 1, 30, tzinfo=UTC))
    await scheduler.tick()  # the next check sends today's 08:00 slot (within the catch-up window)
    assert mailbox.subjects() == [(("dsmb@example.org",), "Safety digest (daily)")]
    clock.set(datetime(2026, 5, 5, 8, 0, 30, tzinfo=UTC))
    await scheduler.tick()
    assert len(mailbox.sent) == 2  # and every day after

    (rules / "routing.yaml").write_text(ROUTING)
    assert holder.reload(clock.now()).ok
    clock.set(datetime(2026, 5, 6, 8, 0, 30, tzinfo=UTC))
    await scheduler.tick()
    assert len(mailbox.sent) == 2  # removed: nothing more
    assert [job.name for job in scheduler.jobs] == jobs  # the same jobs throughout: they read the routing


def test_runtimes_schedule_the_sae_clock_with_the_notification_jobs(tmp_path: Path) -> None:
    app = app_over(ROOT / "rules", tmp_path)
    names = [job.name for job in app.scheduled_jobs()]
    assert names[0] == "sae-deadlines"
    assert len(names) == len(set(names)) >= 4
