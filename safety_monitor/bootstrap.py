"""Owns composition: the one place that picks concrete adapters (SQL or memory, SMTP or files) for a run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from safety_monitor.adapters.clock import SystemClock
from safety_monitor.adapters.ctcae_criteria import load_criteria
from safety_monitor.adapters.mail import CaptureMailer, SmtpMailer, SmtpSettings
from safety_monitor.adapters.passwords import Argon2Hasher
from safety_monitor.adapters.sql.database import (
    create_engine,
    require_database_file,
    require_schema,
    sqlite_file,
    upgrade,
)
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.adapters.sql.workspace_reads import SqlWorkspaceReads
from safety_monitor.adapters.templates import TemplateRenderer
from safety_monitor.domain.grading import BloodPressureGrader, CombinedGrader, FindingGrader
from safety_monitor.domain.lab_grader import CtcaeGrader
from safety_monitor.domain.routing import Routing
from safety_monitor.ruleset.errors import ConfigError, ConfigInvalid
from safety_monitor.ruleset.loader import load_ruleset
from safety_monitor.ruleset.routing_loader import load_routing
from safety_monitor.service.deadlines import deadline_job
from safety_monitor.service.delivery import DeliveryReport, deliver_due
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import Clock, Mailer, UnitOfWorkFactory
from safety_monitor.service.reload import Configuration, ConfigurationHolder
from safety_monitor.service.report import build_report
from safety_monitor.service.routing_jobs import routing_jobs
from safety_monitor.service.scheduler import ScheduledJob, Scheduler
from safety_monitor.service.workspace_ports import PasswordHasher
from safety_monitor.service.workspace_views import WorkspaceReads
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
    hasher: PasswordHasher = field(default_factory=Argon2Hasher)  # the workspace's passwords (argon2id)
    reads: WorkspaceReads | None = None  # the workspace pages' queries (SQL stores only)

    @property
    def routing(self) -> Routing | None:
        """rules/routing.yaml as in force now, if present (else ALERT_RECIPIENTS hear everything)."""
        return self.pipeline.routing

    @property
    def configuration(self) -> Configuration:
        return Configuration(self.pipeline.ruleset, self.pipeline.routing)

    async def start(self, *, create: bool = True) -> None:
        """Bring the database schema up to date (idempotent). With `create=False` (commands that only read, or
        act on what is there) nothing is created: a missing database, or one without the schema, is refused
        with DatabaseNotReady naming DATABASE_URL and the command that creates it."""
        if self.engine is None:
            return
        url = self.settings.database_url
        if not create:
            require_database_file(url)
            await require_schema(self.engine, url)
            return
        path = sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        await upgrade(self.engine)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()

    def configuration_holder(self) -> ConfigurationHolder:
        """Hot reload of rules and routing together into this app (SIGHUP in long-running processes). Both load
        or neither is swapped in: a reload that fails keeps the last good rules and routing and reports every
        error. Batches read `self.pipeline` when they start and scheduled jobs read it at each run, so the next
        batch and the next run of every job use what was reloaded."""

        def swap(configuration: Configuration) -> None:
            self.pipeline = replace(self.pipeline, ruleset=configuration.ruleset, routing=configuration.routing)

        def load() -> Configuration:
            configuration = load_configuration(self.settings)
            if configuration.routing is None and not self.settings.alert_recipients:
                # A routing file removed with nobody in ALERT_RECIPIENTS: alerts would reach nobody.
                where = str(self.settings.routing_file)
                hint = "routing file not found and ALERT_RECIPIENTS is not set: alerts would reach nobody"
                raise ConfigInvalid([ConfigError(where, None, "", hint)])
            return configuration

        return ConfigurationHolder(self.configuration, load, on_change=swap)

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

    async def report(self, *, as_of: date, since: date | None = None) -> dict[str, Any]:
        """The DSMB safety report's figures as of a data cut, under the rules in force."""
        # scipy and lifelines take seconds to import: only commands and jobs that build a report load them.
        from safety_monitor.adapters.statistics import ScipyStatistics

        return await build_report(self.store, self.pipeline.ruleset, ScipyStatistics(), as_of=as_of, since=since)

    async def _report_for_cut(self, as_of: date, since: date | None) -> dict[str, Any]:
        return await self.report(as_of=as_of, since=since)

    def scheduled_jobs(self, delivery_every: timedelta = timedelta(seconds=2)) -> list[ScheduledJob]:
        """The scheduled jobs of a runtime: the SAE reporting clock (reminders, overdue), then the notification
        path (reminders, digests, routed delivery), each run once per slot across workers. Each job reads the
        rules and routing in force when it runs, so a hot reload needs no new job list (digest schedules a
        reload adds or removes are picked up by the digest job at its next run)."""
        notification_jobs = routing_jobs(
            self.store,
            self.mailer,
            self.renderer,
            lambda: self.pipeline.effective_routing(),
            sender=self.settings.mail_from,
            mail_domain=self.settings.mail_domain,
            delivery_every=delivery_every,
            report=self._report_for_cut,
        )
        return [deadline_job(self.store, lambda: self.pipeline), *notification_jobs]

    def scheduler(
        self,
        holder: str,
        delivery_every: timedelta = timedelta(seconds=2),
        extra_jobs: Sequence[ScheduledJob] = (),
    ) -> Scheduler:
        """The DB-leased scheduler of a long-running process (Kafka worker or `serve`) over `scheduled_jobs`, plus
        the runtime's own jobs (the worker's catch-up of unsent topic publications)."""
        return Scheduler(
            self.store,
            self.clock,
            [*self.scheduled_jobs(delivery_every), *extra_jobs],
            holder=holder,
            poll=min(delivery_every, timedelta(seconds=1)),
        )


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


def load_configuration(settings: Settings) -> Configuration:
    """Read the rule files and the routing file (if there is one) together; raise ConfigInvalid with every
    error of both, each with its file and line."""
    errors: list[ConfigError] = []
    ruleset = routing = None
    try:
        ruleset = load_ruleset(settings.rules_dir)
    except ConfigInvalid as exc:
        errors.extend(exc.errors)
    if settings.routing_file.is_file():
        try:
            routing = load_routing(
                settings.routing_file, settings.templates_dir, deliverable=settings.mail_backend == "smtp"
            )
        except ConfigInvalid as exc:
            errors.extend(exc.errors)
    if errors or ruleset is None:
        raise ConfigInvalid(errors)
    return Configuration(ruleset, routing)


def bootstrap(
    settings: Settings,
    *,
    store: UnitOfWorkFactory | None = None,
    mailer: Mailer | None = None,
    clock: Clock | None = None,
) -> App:
    """Wire an app. Rules and templates are loaded (and checked) here, so a broken file stops the start."""
    configuration = load_configuration(settings)
    renderer = TemplateRenderer(settings.templates_dir, workspace_url=settings.public_url)
    engine = None
    if store is None:
        # No directory made yet: a command that only reads must create nothing (App.start makes it when asked to).
        engine = create_engine(settings.database_url, schema=settings.database_schema, create_directory=False)
        store = SqlStore(engine)
    reads = SqlWorkspaceReads(store.engine) if isinstance(store, SqlStore) else None
    pipeline = PipelineConfig(
        ruleset=configuration.ruleset,
        grader=make_grader(settings),
        alert_recipients=settings.alert_recipients,
        routing=configuration.routing,
    )
    return App(
        settings=settings,
        engine=engine,
        store=store,
        pipeline=pipeline,
        mailer=mailer or make_mailer(settings),
        renderer=renderer,
        clock=clock or SystemClock(),
        reads=reads,
    )
