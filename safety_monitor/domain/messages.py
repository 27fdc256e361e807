"""Owns the clinical facts a site reports: adverse events, findings (lab, vital sign, ECG), subject events and
tumour responses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from safety_monitor.domain.dates import PartialDate


class MessageType(StrEnum):
    AE = "AE"
    LB = "LB"
    VS = "VS"
    EG = "EG"
    SUBJECT = "SUBJECT"
    RS = "RS"


class SubjectEventKind(StrEnum):
    ENROLLED = "ENROLLED"
    FIRST_DOSE = "FIRST_DOSE"
    DOSE_INTERRUPTED = "DOSE_INTERRUPTED"
    DOSE_RESUMED = "DOSE_RESUMED"
    DISCONTINUED = "DISCONTINUED"
    DIED = "DIED"
    COMPLETED = "COMPLETED"
    # Efficacy follow-up (the protocol's PFS and OS): randomisation is the time origin, PROGRESSED a documented
    # progression, ALIVE a survival follow-up contact (known alive on EVENTDTC).
    RANDOMIZED = "RANDOMIZED"
    PROGRESSED = "PROGRESSED"
    ALIVE = "ALIVE"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What every site message carries besides its clinical content."""

    msg_id: str
    msg_type: MessageType
    sent_at: datetime
    site_id: str
    record_version: int
    study_id: str
    subject_id: str


@dataclass(frozen=True, slots=True)
class AdverseEvent:
    """One version of an AE record (SDTM AE domain); `ae_spid` is the record key across versions."""

    envelope: Envelope
    ae_spid: str
    verbatim_term: str  # AETERM: free text from the site, untrusted
    preferred_term: str  # AEDECOD: MedDRA PT as the site coded it
    system_organ_class: str  # AEBODSYS
    investigator_grade: int | None  # AETOXGR, CTCAE 1-5
    serious: str | None  # AESER Y/N/U; None when the site left it out
    death: str | None
    life_threatening: str | None
    hospitalisation: str | None
    onset_date: PartialDate | None
    end_date: PartialDate | None
    outcome: str | None
    causality_anlotinib: str | None
    causality_ici: str | None
    action_anlotinib: str | None
    action_ici: str | None
    immune_related: str | None  # AEIRAE Y/N/U; None = not yet attributed
    # Not sent by the site: the worst value-derived CTCAE grade of the term the PT corresponds to, from the
    # subject's findings between onset and end (domain/derived_grades.py). Kept beside AETOXGR, never over it.
    derived_grade: int | None = None
    derived_term: str | None = None  # the CTCAE term graded from values, e.g. "Platelet count decreased"

    @property
    def record_key(self) -> tuple[str, str, str]:
        return (self.envelope.study_id, self.envelope.subject_id, self.ae_spid)


@dataclass(frozen=True, slots=True)
class Finding:
    """One lab, vital-sign or ECG result (SDTM findings class); LB-only fields are None for VS and EG."""

    envelope: Envelope
    test_code: str  # LBTESTCD / VSTESTCD / EGTESTCD
    value: float | None  # --STRESN: standard numeric result
    unit: str | None  # --STRESU
    collected_at: PartialDate  # --DTC
    baseline_flag: bool  # --BLFL == "Y"
    lln: float | None = None  # LBSTNRLO
    uln: float | None = None  # LBSTNRHI
    normal_range_indicator: str | None = None  # LBNRIND
    visit: str | None = None
    specimen: str | None = None
    result_text: str | None = None  # LBSTRESC: the character result ("2+" from a urine dipstick)

    @property
    def domain(self) -> MessageType:
        return self.envelope.msg_type

    @property
    def record_key(self) -> tuple[str, str, str, str, str]:
        env = self.envelope
        return (env.study_id, env.subject_id, env.msg_type.value, self.test_code, self.collected_at.text)


@dataclass(frozen=True, slots=True)
class SubjectEvent:
    """A change in a subject's status: enrolment, dosing, discontinuation, death (denominators for incidence)."""

    envelope: Envelope
    event: SubjectEventKind
    event_date: PartialDate
    arm: str | None
    drug: str | None
    reason: str | None


class OverallResponse(StrEnum):
    """RECIST 1.1 overall response at one time point (SDTM RS, RSTESTCD OVRLRESP, RSSTRESC)."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    PD = "PD"
    NE = "NE"
    NON_CR_NON_PD = "NON-CR/NON-PD"  # non-target disease only (RECIST 1.1 section 4.3.2)


@dataclass(frozen=True, slots=True)
class TumourResponse:
    """One version of a tumour response assessment (SDTM RS); the record key is subject, test and RSDTC, like a
    finding's; a follow-up with a higher record_version replaces it, a lower one is stale."""

    envelope: Envelope
    test_code: str  # RSTESTCD: OVRLRESP
    response: OverallResponse  # RSSTRESC
    assessed_on: PartialDate  # RSDTC
    visit: str | None = None

    @property
    def record_key(self) -> tuple[str, str, str, str]:
        env = self.envelope
        return (env.study_id, env.subject_id, self.test_code, self.assessed_on.text)


SiteMessage = AdverseEvent | Finding | SubjectEvent | TumourResponse
