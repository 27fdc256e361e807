"""Owns the read views: the incidence table and the safety digest, computed from the system of record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from safety_monitor.domain.incidence import IncidenceRow, compute_incidence
from safety_monitor.domain.routing import DIGEST_PERIODS
from safety_monitor.service.delivery import RetryPolicy
from safety_monitor.service.ports import UnitOfWork, UnitOfWorkFactory
from safety_monitor.service.records import Notice


@dataclass(frozen=True, slots=True)
class DeliveryHealth:
    """The outbox as health reports it: counts, the alert emails overdue (unsent past the threshold) and those
    with a recipient the server refused for good. `status` is "ok", "overdue-notices" or
    "undeliverable-recipients" (overdue first: an alert nobody has received is the worse)."""

    status: str
    counts: dict[str, int]
    overdue: list[Notice] = field(default_factory=list)
    undeliverable: list[tuple[Notice, dict[str, str]]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            **self.counts,
            "overdue": len(self.overdue),
            "undeliverable": len(self.undeliverable),
            "oldest_overdue": self.overdue[0].created_at.isoformat() if self.overdue else None,
            "undeliverable_recipients": sorted({r for _, refused in self.undeliverable for r in refused}),
        }


_POLICY = RetryPolicy()


async def delivery_health(
    uow_factory: UnitOfWorkFactory, now: datetime, policy: RetryPolicy = _POLICY, limit: int = 100
) -> DeliveryHealth:
    """What `health` and the review queue say about alert email delivery (ids and addresses, no subject data)."""
    async with uow_factory() as uow:
        counts = await uow.outbox.counts()
        overdue = await uow.outbox.unsent_since(now - policy.overdue_after, limit)
        undeliverable = [(n, n.undeliverable) for n in await uow.outbox.undeliverable(limit)]
    status = "overdue-notices" if overdue else ("undeliverable-recipients" if undeliverable else "ok")
    return DeliveryHealth(status, counts, overdue, undeliverable)


async def _incidence(uow: UnitOfWork, treatment_emergent_only: bool) -> list[IncidenceRow]:
    population = await uow.subjects.safety_population()
    first_doses: dict[tuple[str, str], date | None] = {
        key: subject.first_dose_on.as_date() if subject.first_dose_on else None for key, subject in population.items()
    }
    facts = await uow.adverse_events.facts()
    return compute_incidence(facts, first_doses, treatment_emergent_only=treatment_emergent_only)


async def incidence_table(
    uow_factory: UnitOfWorkFactory, *, treatment_emergent_only: bool = False
) -> list[IncidenceRow]:
    """Cumulative incidence from current AE records; read in one transaction so numerator and denominator agree."""
    async with uow_factory() as uow:
        return await _incidence(uow, treatment_emergent_only)


async def digest_context(uow_factory: UnitOfWorkFactory, *, kind: str, now: datetime) -> dict[str, object]:
    """Everything the digest templates show: incidence by SOC / PT and band, alerts since the last digest."""
    async with uow_factory() as uow:
        rows = await _incidence(uow, False)
        # Since the last digest of this kind; the first one covers its kind's period (a day, a week).
        since = await uow.digests.last_sent(kind)
        if since is None and kind in DIGEST_PERIODS:
            since = now - DIGEST_PERIODS[kind]
        changes = await uow.alerts.changes_since(since)
        population = await uow.subjects.safety_population()
        pending_subjects = await uow.adverse_events.unknown_subject_count()
        outbox = await uow.outbox.counts()
    by_term: dict[tuple[str, str, str], dict[str, object]] = {}
    for row in rows:
        entry = by_term.setdefault(
            (row.study_id, row.soc, row.pt),
            {"study_id": row.study_id, "soc": row.soc, "pt": row.pt, "denominator": row.denominator},
        )
        band = "any" if row.grade_band == "any" else "g3"
        entry[f"{band}_subjects"] = row.subjects
        entry[f"{band}_percent"] = row.percent
    studies = sorted({key[0] for key in population})
    return {
        "kind": kind,
        "generated_at": now.isoformat(timespec="seconds"),
        "since": since.isoformat(timespec="seconds") if since else None,
        "studies": studies,
        "safety_population": len(population),
        "terms": list(by_term.values()),
        "incidence_rows": [asdict(r) for r in rows],
        "alert_changes": [
            {
                "at": c.at.isoformat(timespec="seconds"),
                "change": c.kind.value,
                "rule_id": c.alert.rule_id,
                "rule_title": c.alert.rule_title,
                "severity": c.alert.severity,
                "subject_id": c.alert.subject_id,
                "term": c.alert.term,
                "grade": c.alert.grade,
                "previous_grade": c.previous_grade,
                "detail": c.alert.detail,
            }
            for c in changes
        ],
        "aes_awaiting_subject": pending_subjects,
        "outbox": outbox,
    }
