"""Owns the in-memory unit of work and its store: the same ports as the SQL store, for fast service-layer tests."""

from __future__ import annotations

import copy
from types import TracebackType
from typing import Self

from safety_monitor.adapters.memory.alerts import MemoryAlerts, MemoryHits, MemorySaeClocks
from safety_monitor.adapters.memory.facts import (
    MemoryAdverseEvents,
    MemoryFindings,
    MemorySubjects,
    MemoryTumourResponses,
)
from safety_monitor.adapters.memory.inbox import MemoryDeadLetters, MemoryInbox
from safety_monitor.adapters.memory.jobs import MemoryDigests, MemoryLeases, MemoryPublications
from safety_monitor.adapters.memory.notifications import MemoryNotifications, MemoryOutbox
from safety_monitor.adapters.memory.review import MemoryReviewActions
from safety_monitor.adapters.memory.state import MemoryState
from safety_monitor.adapters.memory.workspace import (
    MemoryApiTokens,
    MemoryAuditLog,
    MemorySessions,
    MemoryUsers,
    WorkspaceState,
)


class MemoryUnitOfWork:
    """A transaction over `MemoryState`: changes are made on a copy and published only by `commit()`."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state
        self.working = state
        self.committed = False
        self.inbox = MemoryInbox(self)
        self.dead_letters = MemoryDeadLetters(self)
        self.subjects = MemorySubjects(self)
        self.adverse_events = MemoryAdverseEvents(self)
        self.findings = MemoryFindings(self)
        self.hits = MemoryHits(self)
        self.alerts = MemoryAlerts(self)
        self.outbox = MemoryOutbox(self)
        self.digests = MemoryDigests(self)
        self.leases = MemoryLeases(self)
        self.notifications = MemoryNotifications(self)
        self.sae_clocks = MemorySaeClocks(self)
        self.review_actions = MemoryReviewActions(self)
        self.publications = MemoryPublications(self)
        self.tumour_responses = MemoryTumourResponses(self)
        self.users = MemoryUsers(self)
        self.api_tokens = MemoryApiTokens(self)
        self.sessions = MemorySessions(self)
        self.audit_log = MemoryAuditLog(self)

    @property
    def workspace(self) -> WorkspaceState:
        return self.working.workspace

    async def __aenter__(self) -> Self:
        self.working = copy.deepcopy(self.state)
        self.committed = False
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.working = self.state

    async def commit(self) -> None:
        for name in vars(self.state):
            setattr(self.state, name, getattr(self.working, name))
        self.committed = True


class MemoryStore:
    """A factory of in-memory units of work sharing one state."""

    def __init__(self) -> None:
        self.state = MemoryState()

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.state)
