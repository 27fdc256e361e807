"""Owns the SQL unit of work: one transaction over every repository, and the store that opens them."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from safety_monitor.adapters.sql.repositories.adverse_events import SqlAdverseEventRepository
from safety_monitor.adapters.sql.repositories.alerts import SqlAlertRepository
from safety_monitor.adapters.sql.repositories.findings import SqlFindingRepository
from safety_monitor.adapters.sql.repositories.inbox import SqlDeadLetterRepository, SqlInboxRepository
from safety_monitor.adapters.sql.repositories.jobs import SqlDigestLog, SqlLeaseRepository
from safety_monitor.adapters.sql.repositories.notifications import SqlNotificationRepository
from safety_monitor.adapters.sql.repositories.outbox import SqlOutboxRepository
from safety_monitor.adapters.sql.repositories.publications import SqlPublicationRepository
from safety_monitor.adapters.sql.repositories.review_actions import SqlReviewActionRepository
from safety_monitor.adapters.sql.repositories.rule_hits import SqlRuleHitRepository
from safety_monitor.adapters.sql.repositories.sae_clocks import SqlSaeClockRepository
from safety_monitor.adapters.sql.repositories.subjects import SqlSubjectRepository
from safety_monitor.adapters.sql.repositories.tumour_responses import SqlTumourResponseRepository
from safety_monitor.adapters.sql.workspace_repositories import SqlApiTokens, SqlAuditLog, SqlSessions, SqlUsers


class SqlUnitOfWork:
    """One database transaction. Without `commit()` the block rolls back, whatever happened inside it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self.inbox = SqlInboxRepository(self)
        self.dead_letters = SqlDeadLetterRepository(self)
        self.subjects = SqlSubjectRepository(self)
        self.adverse_events = SqlAdverseEventRepository(self)
        self.findings = SqlFindingRepository(self)
        self.hits = SqlRuleHitRepository(self)
        self.alerts = SqlAlertRepository(self)
        self.outbox = SqlOutboxRepository(self)
        self.digests = SqlDigestLog(self)
        self.leases = SqlLeaseRepository(self)
        self.notifications = SqlNotificationRepository(self)
        self.sae_clocks = SqlSaeClockRepository(self)
        self.review_actions = SqlReviewActionRepository(self)
        self.publications = SqlPublicationRepository(self)
        self.tumour_responses = SqlTumourResponseRepository(self)
        self.users = SqlUsers(self)
        self.api_tokens = SqlApiTokens(self)
        self.sessions = SqlSessions(self)
        self.audit_log = SqlAuditLog(self)

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._connection

    async def __aenter__(self) -> Self:
        self._connection = await self._engine.connect()
        await self._connection.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        connection, self._connection = self.connection, None
        try:
            if connection.in_transaction():
                await connection.rollback()
        finally:
            await connection.close()

    async def commit(self) -> None:
        await self.connection.commit()


class SqlStore:
    """A factory of SQL units of work over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)
