"""Owns composition: the one place that picks concrete adapters (SQL or memory, SMTP or files) for a run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from safety_monitor.adapters.clock import SystemClock
from safety_monitor.adapters.ctcae_criteria import load_criteria
from safety_monitor.adapters.mail import CaptureMailer, SmtpMailer, SmtpSettings
from safety_monitor.adapters.sql.database import create_engine, upgrade
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.adapters.templates import TemplateRenderer
from safety_monitor.domain.ctcae import CtcaeGrader
from safety_monitor.domain.grading import BloodPressureGrader, CombinedGrader, FindingGrader
from safety_monitor.domain.routing import Routing
from safety_monitor.domain.rules import Ruleset
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.ruleset.routing_loader import load_routing
from safety_monitor.service.deadlines import deadline_job
from safety_monitor.service.delivery import DeliveryReport, deliver_due
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import Clock, Mailer, UnitOfWorkFactory
from safety_monitor.service.reload import RulesetHolder
from safety_monitor.service.routing_jobs import routing_jobs
from safety_monitor.service.scheduler import ScheduledJob
from safety_monitor.settings import Settings


@dataclass
class App:
    """Everything a runtime needs, wired. Built by `bootstrap`; nothing here does I/O until started."""

    settings: Settings
    engine: AsyncEngine | None
    store: UnitOfWorkFactory
    pipeline: PipelineConfig
    mailer: Mailer
    renderer: TemplateRenderer
    clock: Clock
    routing: Routing | None = None  # rules/routing.yaml, if present (else ALERT_RECIPIENTS hear everything)

    async def start(self) -> None:
        """Bring the database schema up to date (idempotent)."""
        if self.engine is not None:
            await upgrade(self.engine)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()

    def rules_holder(self) -> RulesetHolder:
        """Hot reload of the rule files into this app's pipeline (SIGHUP in long-running processes): a reload
        that fails keeps the last good ruleset. The routing file is read at start; changing it needs a restart."""

        def swap(ruleset: Ruleset) -> None:
            self.pipeline = replace(self.pipeline, ruleset=ruleset)

        return RulesetHolder(self.pipeline.ruleset, lambda: load_ruleset(self.settings.rules_dir), on_change=swap)

    async def deliver(self, *, ignore_waits: bool = False) -> DeliveryReport:
        """Email the due notification groups and send the outbox (`ignore_waits`: every group now, for demos)."""
        return await deliver_due(
            self.store,
            self.mailer,
            self.renderer,
            sender=self.settings.mail_from,
            mail_domain=self.settings.mail_domain,
            now=self.clock.now(),
            routing=self.pipeline.effective_routing(),
            ignore_waits=ignore_waits,
        )

    def scheduled_jobs(self, delivery_every: timedelta = timedelta(seconds=2)) -> list[ScheduledJob]:
        """The scheduled jobs of a runtime: the SAE reporting clock (reminders, overdue), then the notification
        path (reminders, digests, routed delivery), each run once per slot across workers."""
        notification_jobs = routing_jobs(
            self.store,
            self.mailer,
            self.renderer,
            self.pipeline.effective_routing(),
            sender=self.settings.mail_from,
            mail_domain=self.settings.mail_domain,
            delivery_every=delivery_every,
        )
        return [deadline_job(self.store, lambda: self.pipeline), *notification_jobs]


def make_grader(settings: Settings) -> FindingGrader:
    """Hypertension from vital signs plus the CTCAE criteria for labs and ECG, for the configured version."""
    criteria = load_criteria(settings.ctcae_version)
    return CombinedGrader(BloodPressureGrader(criteria.ctcae_version), CtcaeGrader(criteria))


def make_mailer(settings: Settings) -> Mailer:
    if settings.mail_backend == "smtp":
        return SmtpMailer(
            SmtpSettings(
                host=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password,
                security=settings.smtp_security,
                timeout=settings.smtp_timeout,
                ca_file=settings.smtp_ca_file,
            )
        )
    return CaptureMailer(settings.mail_capture_dir)


def bootstrap(
    settings: Settings,
    *,
    store: UnitOfWorkFactory | None = None,
    mailer: Mailer | None = None,
    clock: Clock | None = None,
) -> App:
    """Wire an app. Rules and templates are loaded (and checked) here, so a broken file stops the start."""
    ruleset = load_ruleset(settings.rules_dir)
    routing = load_routing(settings.routing_file, settings.templates_dir) if settings.routing_file.is_file() else None
    renderer = TemplateRenderer(settings.templates_dir)
    engine = None
    if store is None:
        engine = create_engine(settings.database_url, schema=settings.database_schema)
        store = SqlStore(engine)
    pipeline = PipelineConfig(
        ruleset=ruleset, grader=make_grader(settings), alert_recipients=settings.alert_recipients, routing=routing
    )
    return App(
        settings=settings,
        engine=engine,
        store=store,
        pipeline=pipeline,
        mailer=mailer or make_mailer(settings),
        renderer=renderer,
        clock=clock or SystemClock(),
        routing=routing,
    )
