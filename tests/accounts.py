"""Workspace accounts for tests: a cheap argon2id hasher, the three reviewers the review tests act as, and the
site account of site 012 (the site of `factories.subject_id`)."""

from __future__ import annotations

from datetime import UTC, datetime

from safety_monitor.adapters.passwords import Argon2Hasher
from safety_monitor.domain.access import Role
from safety_monitor.service.accounts import add_user
from safety_monitor.service.ports import UnitOfWorkFactory

# argon2id still, with the smallest cost: tests hash dozens of passwords on a shared two-core machine.
FAST_HASHER = Argon2Hasher(time_cost=1, memory_cost=1024)
PASSWORD = "correct horse battery"
REVIEWERS = {Role.MEDICAL_MONITOR: "dr.li", Role.DSMB_MEMBER: "prof.chen", Role.ADMIN: "pv-desk"}
SITE_ACCOUNT = "edc.site-012"
SITE_ID = "012"


async def add_reviewers(store: UnitOfWorkFactory, password: str = PASSWORD) -> None:
    at = datetime(2026, 4, 1, tzinfo=UTC)
    for role, name in REVIEWERS.items():
        await add_user(store, FAST_HASHER, name, role, password, at=at)


async def add_site(store: UnitOfWorkFactory, name: str = SITE_ACCOUNT, site_id: str = SITE_ID) -> None:
    at = datetime(2026, 4, 1, tzinfo=UTC)
    await add_user(store, FAST_HASHER, name, Role.SITE, PASSWORD, at=at, site_id=site_id)
