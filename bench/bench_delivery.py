"""Benchmark for one routed delivery pass: N open alerts, M pending notifications; the pass's time, held, emails.

The store is seeded through the notification repository (no replay): `--open` alerts of the trial's own rules on
`--subjects` subjects, each routed by rules/routing.yaml and already emailed once, so they are all open sources
for the inhibit rules; then alert changes for some of them leave exactly `--pending` notifications pending. A few
subjects have a grade 5 alert, so the death inhibit rule holds their medium and info alerts. The pass timed is
`App.deliver(ignore_waits=True)`: every group is due, each is flushed into the outbox, then one batch of the
outbox is sent (to .eml files). Its cost should follow `--pending`, not `--open`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from safety_monitor.bootstrap import App, bootstrap
from safety_monitor.domain.alerts import Alert, AlertChange, AlertStatus, ChangeKind
from safety_monitor.domain.routing import destinations
from safety_monitor.domain.rules import Rule
from safety_monitor.service.notices import alert_context
from safety_monitor.service.notifications import labels_for, plan_notifications
from safety_monitor.service.records import Notice
from safety_monitor.settings import Settings

STUDY_ID = "ALTER-ICI-01"
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def make_alert(rule: Rule, subject: int, n: int, grade: int, ruleset_hash: str) -> Alert:
    subject_id = f"{STUDY_ID}-S{subject:05d}"
    return Alert(
        key=f"{rule.id}|{STUDY_ID}|{subject_id}|AE:{n}",
        rule_id=rule.id,
        rule_title=rule.title,
        severity=str(rule.severity),
        action=rule.action,
        study_id=STUDY_ID,
        subject_id=subject_id,
        subject_ref=f"S{subject:05d}",
        term=f"TERM {n % 40}",
        observed_on="2026-05-30",
        grade=grade,
        status=AlertStatus.OPEN,
        raised_at=T0,
        updated_at=T0,
        last_msg_id=f"msg-{n}",
        detail="synthetic",
        ruleset_hash=ruleset_hash,
        ctcae_version="5.0",
    )


def change_of(alert: Alert, kind: ChangeKind, at: datetime) -> tuple[AlertChange, Notice]:
    change = AlertChange(alert, kind, None, alert.last_msg_id, at)
    context = alert_context(alert, kind.value, None, alert.last_msg_id, at)
    return change, Notice(change.notice_id, alert.key, "alert", (), context, at)


async def seed(app: App, open_alerts: int, pending: int, subjects: int, seed_value: int) -> None:
    routing = app.routing
    assert routing is not None, "the benchmark needs the trial's routing file"
    ruleset = app.pipeline.ruleset
    rng = random.Random(seed_value)  # reproducible synthetic data, not security
    rules = list(ruleset.rules)
    fatal = [r for r in rules if r.id.startswith("fatal")] or rules[:1]
    alerts = []
    for n in range(open_alerts):
        if n % 100 == 0:  # about one subject in ten has died: its minor alerts are inhibited
            alerts.append(make_alert(rng.choice(fatal), rng.randrange(subjects), n, 5, ruleset.content_hash))
        else:
            alerts.append(make_alert(rng.choice(rules), rng.randrange(subjects), n, rng.choice((1, 2, 3)), ""))
    async with app.store() as uow:
        written = await plan_notifications(
            uow, routing, ruleset, [change_of(a, ChangeKind.RAISED, T0) for a in alerts], T0
        )
        for chunk in range(0, len(written), 500):
            part = written[chunk : chunk + 500]
            await uow.notifications.mark_mailed([n.notification_id for n in part], "seed", T0)
        await uow.commit()
    # Changes for a random subset of the alerts, until exactly `pending` notifications wait.
    later = T0 + timedelta(days=1)
    changes = []
    waiting = 0
    for alert in rng.sample(alerts, len(alerts)):
        fan_out = len(destinations(routing, labels_for(alert, ruleset), alert.key))
        if waiting + fan_out > pending:
            continue
        changes.append(change_of(replace(alert, updated_at=later), ChangeKind.ESCALATED, later))
        waiting += fan_out
        if waiting == pending:
            break
    async with app.store() as uow:
        await plan_notifications(uow, routing, ruleset, changes, later)
        await uow.commit()
        count = len(await uow.notifications.pending())
        sources = len({e.alert_key for e in await uow.notifications.open_alerts()})
    print(f"seeded: {sources:,} open alerts, {count:,} pending notifications ({len(changes):,} alert changes)")


async def bench(settings: Settings, args: argparse.Namespace) -> None:
    app = bootstrap(settings)
    try:
        await app.start()
        started = time.perf_counter()
        await seed(app, args.open, args.pending, args.subjects, args.seed)
        print(f"seeding took {time.perf_counter() - started:.1f} s (not timed)")
        load = os.getloadavg()[0]
        profile = cProfile.Profile() if args.profile else None
        started, cpu_started = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        report = await app.deliver(ignore_waits=True)
        if profile is not None:
            profile.disable()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        flushed = report.flushed
        assert flushed is not None
        print(
            f"delivery pass:    {seconds:.2f} s wall, {cpu:.2f} s CPU (load average {load:.2f} at start, "
            f"{os.cpu_count()} cores)"
        )
        print(
            f"flushed:          {flushed.emails:,} emails carrying {flushed.notifications:,} notifications; "
            f"held {flushed.held:,}, dropped {flushed.dropped:,}, waiting {flushed.waiting:,}"
        )
        print(f"sent:             {report.sent:,} (failed {report.failed:,}) of the outbox's first batch")
        if profile is not None:
            profile.dump_stats(args.profile)
            pstats.Stats(profile).strip_dirs().sort_stats("cumulative").print_stats(30)
    finally:
        await app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--open", type=int, default=10_000, help="open alerts (inhibition sources)")
    parser.add_argument("--pending", type=int, default=5_000, help="notifications pending at the pass")
    parser.add_argument("--subjects", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--database-url", default=None, help="default: a fresh SQLite file in a temp dir (the SQL path is timed)"
    )
    parser.add_argument("--profile", metavar="FILE", type=Path, default=None, help="cProfile the pass into FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp_dir:
        tmp = Path(tmp_dir)
        settings = Settings.from_env(
            database_url=args.database_url or f"sqlite:///{tmp}/bench.db",
            mail_backend="capture",
            mail_capture_dir=tmp / "mail",
        )
        asyncio.run(bench(settings, args))


if __name__ == "__main__":
    main()
