"""Owns the trial plan and the builder's plumbing: planned subjects and AEs, outgoing messages, ids, envelopes."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from safety_monitor.demo.tables import (
    MIN_DAYS,
    MIN_SUBJECTS,
    MSG_NAMESPACE,
    STUDY_ID,
    Payload,
    Term,
    at,
)


@dataclass(slots=True, eq=False)
class PlannedSubject:
    usubjid: str
    site: str
    enrolled: date
    first_dose: date
    last_visit: date  # last day with data: the day before death, full discontinuation, or the data cut
    sbp0: int
    dbp0: int
    qtcf0: int
    lab_base: dict[str, float]
    next_spid: int = 1
    died: date | None = None
    role: str = ""
    aes: list[AePlan] = field(default_factory=list)
    withdrawn: dict[str, date] = field(default_factory=dict)  # drug -> date it was permanently stopped
    interrupted: dict[str, list[tuple[date, date]]] = field(default_factory=dict)

    def spid(self) -> str:
        spid = f"AE-{self.next_spid}"
        self.next_spid += 1
        return spid


@dataclass(slots=True, eq=False)
class AePlan:
    subject: PlannedSubject
    spid: str
    term: Term
    verbatim: str
    grade: int
    onset: date
    end: date | None
    kind: str = "generic"  # how its versions are sent: generic, or one of the manifest's anomalies
    partial_onset: bool = False
    irae: str | None = None
    rel_anlotinib: str = "POSSIBLE"
    rel_ici: str = "POSSIBLE"
    acn_anlotinib: str = "DOSE NOT CHANGED"
    acn_ici: str = "DOSE NOT CHANGED"
    msg_ids: list[str] = field(default_factory=list)
    value_grade: int | None = None  # the grade the subject's results show, when the site graded otherwise


@dataclass(slots=True, eq=False)
class Outgoing:
    arrival: datetime
    sent_at: datetime
    seq: int
    msg_id: str
    site: str
    payload: Payload | str  # a str is a raw (non-JSON) line
    tag: str = ""  # what the message is, for picking anomaly bases: "AE1" (single-version AE), "LB", ...
    line: str = ""

    def render(self) -> str:
        if not self.line:
            self.line = self.payload if isinstance(self.payload, str) else json.dumps(self.payload)
        return self.line


class BuilderBase:
    """The state every part of the builder shares, and how a message is made and queued."""

    def __init__(self, seed: int, subjects: int, start: date, days: int) -> None:
        if subjects < MIN_SUBJECTS:
            raise ValueError(f"subjects={subjects}: the trial needs at least {MIN_SUBJECTS} to place its anomalies")
        if days < MIN_DAYS:
            raise ValueError(f"days={days}: the trial needs at least {MIN_DAYS} days of follow-up")
        self.rng = random.Random(seed)  # noqa: S311 -- reproducible synthetic data, not security
        self.seed = seed
        self.n = subjects
        self.start = start
        self.last_day = start + timedelta(days=days - 1)
        self.cutoff = at(start + timedelta(days=days), 0, 0)
        self.subjects: list[PlannedSubject] = []
        self.plans: list[AePlan] = []
        self.out: list[Outgoing] = []
        self.n_ids = 0
        self.vs_times: set[tuple[str, str]] = set()
        self.dose_requests: list[tuple[AePlan, str, str, date]] = []  # (AE, drug, action, day)
        self.unknown_usubjid = ""
        self.special_subjects: set[str] = set()
        self.stale: tuple[Outgoing, Outgoing] | None = None  # (version 2, version 3)

    # ---- plumbing ------------------------------------------------------------------------------------------

    def new_msg_id(self) -> str:
        self.n_ids += 1
        return str(uuid.uuid5(MSG_NAMESPACE, f"trial:{self.seed}:{self.n_ids}"))

    def envelope(self, msg_type: str, sent_at: datetime, site: str, usubjid: str, version: int = 1) -> Payload:
        return {
            "msg_id": self.new_msg_id(),
            "msg_type": msg_type,
            "sent_at": sent_at.isoformat(),
            "site_id": site,
            "record_version": version,
            "STUDYID": STUDY_ID,
            "USUBJID": usubjid,
        }

    def emit(self, payload: Payload | str, sent_at: datetime, site: str, tag: str, msg_id: str = "") -> Outgoing:
        if not msg_id:
            msg_id = str(payload["msg_id"]) if isinstance(payload, dict) else ""
        item = Outgoing(sent_at, sent_at, len(self.out), msg_id, site, payload, tag)
        self.out.append(item)
        return item

    def working_hours(self, day: date) -> datetime:
        rng = self.rng
        return at(day, rng.randint(9, 17), rng.randint(0, 59), rng.randint(0, 59))
