"""Owns the seeded synthetic ALTER-ICI-01 trial: wire-format site messages and a manifest of its anomalies."""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

STUDY_ID = "ALTER-ICI-01"
ARM = "ANLOTINIB+ICI"
DRUGS = ("ANLOTINIB", "ICI")
SITE_IDS = ("001", "002", "003", "004", "005", "006")
SITE_TZ = timezone(timedelta(hours=8))  # sites are in China
MSG_TYPES = ("AE", "LB", "VS", "EG", "SUBJECT")
ENVELOPE_KEYS = ("msg_id", "msg_type", "sent_at", "site_id", "record_version", "STUDYID", "USUBJID")

# Stable namespace for msg_ids: uuid5(namespace, "<stream>:<seed>:<n>") is the same on every run.
_MSG_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:safety-monitor:synthetic-trial")
_SITE_WEIGHTS = (1.6, 1.3, 1.0, 1.0, 0.7, 0.4)  # some sites recruit faster than others
_MIN_SUBJECTS = 20
_MIN_DAYS = 60

Payload = dict[str, object]


@dataclass(frozen=True, slots=True)
class Manifest:
    """What was injected into a synthetic trial, so tests can check what the pipeline made of it."""

    duplicate_msg_ids: tuple[str, ...]
    grade_raise: tuple[str, str, int, int]  # (USUBJID, AESPID, old_grade, new_grade)
    stale_followup_msg_id: str
    grade_lowering: tuple[str, str, int, int]  # (USUBJID, AESPID, old_grade, new_grade)
    malformed_lines: tuple[int, ...]  # 1-based line numbers in `SyntheticTrial.lines`
    conflict_msg_id: str
    unknown_subject_id: str
    html_payload_msg_id: str
    partial_date_msg_id: str


@dataclass(frozen=True, slots=True)
class SyntheticTrial:
    lines: tuple[str, ...]  # JSONL lines in arrival order, malformed ones included
    manifest: Manifest


# ----------------------------------------------------------------------------------------------------------
# Clinical tables
# ----------------------------------------------------------------------------------------------------------

_RESP = "Respiratory, thoracic and mediastinal disorders"
_REL_STRONG = ("PROBABLE", "RELATED")
_REL_MAYBE = ("POSSIBLE", "PROBABLE")
_REL_WEAK = ("NOT RELATED", "UNLIKELY")


@dataclass(frozen=True, slots=True)
class _Term:
    decod: str  # MedDRA PT, British spelling
    soc: str
    verbatims: tuple[str, ...]
    rel_anlotinib: tuple[str, ...]
    rel_ici: tuple[str, ...]
    suspect: str  # the drug whose dose is acted on: "ANLOTINIB", "ICI" or "" (neither)
    irae: tuple[str | None, ...]  # AEIRAE at first report; None = not yet attributed
    mild_verbatims: tuple[str, ...] = ()  # verbatims sites use for grade 1 only
    serious_from: int = 4  # grade from which the AE is serious (hospitalisation)
    days_to_onset: tuple[int, int] = (3, 30)
    duration: tuple[int, int] = (5, 30)


_TERMS: dict[str, _Term] = {
    t.decod: t
    for t in (
        _Term(
            "Hypertension",
            "Vascular disorders",
            ("hypertension", "high blood pressure", "elevated BP", "blood pressure increased"),
            _REL_STRONG,
            _REL_WEAK,
            "ANLOTINIB",
            ("N",),
            duration=(14, 45),
        ),
        _Term(
            "Palmar-plantar erythrodysaesthesia syndrome",
            "Skin and subcutaneous tissue disorders",
            ("hand-foot skin reaction", "hand foot syndrome", "HFSR", "palmar-plantar erythrodysesthesia"),
            _REL_STRONG,
            ("NOT RELATED", "UNLIKELY"),
            "ANLOTINIB",
            ("N",),
            days_to_onset=(10, 40),
            duration=(14, 45),
        ),
        _Term(
            "Haemoptysis",
            _RESP,
            ("haemoptysis", "hemoptysis", "coughing up blood"),
            _REL_MAYBE,
            _REL_WEAK,
            "ANLOTINIB",
            ("N",),
            mild_verbatims=("blood-streaked sputum",),
            serious_from=3,
            days_to_onset=(14, 45),
            duration=(3, 12),
        ),
        _Term(
            "Pulmonary haemorrhage",
            _RESP,
            ("massive haemoptysis", "pulmonary haemorrhage"),
            _REL_MAYBE,
            _REL_WEAK,
            "ANLOTINIB",
            ("N",),
            serious_from=3,
        ),
        _Term(
            "Pneumonitis",
            _RESP,
            (
                "pneumonitis",
                "immune-related pneumonitis",
                "checkpoint inhibitor pneumonitis",
                "interstitial pneumonia",
            ),
            ("UNLIKELY", "POSSIBLE"),
            _REL_STRONG,
            "ICI",
            ("Y", None),
            serious_from=3,
            days_to_onset=(35, 60),
            duration=(14, 35),
        ),
        _Term(
            "Diarrhoea",
            "Gastrointestinal disorders",
            ("diarrhoea", "diarrhea", "loose stools"),
            ("POSSIBLE",),
            ("POSSIBLE", "UNLIKELY"),
            "ANLOTINIB",
            (None, "N"),
            serious_from=3,
            duration=(2, 10),
        ),
        _Term(
            "Colitis",
            "Gastrointestinal disorders",
            ("colitis", "immune-related colitis"),
            ("UNLIKELY",),
            _REL_STRONG,
            "ICI",
            ("Y", None),
            serious_from=3,
            days_to_onset=(30, 55),
            duration=(10, 25),
        ),
        _Term(
            "Fatigue",
            "General disorders and administration site conditions",
            ("fatigue", "tiredness", "feeling tired"),
            ("POSSIBLE",),
            ("POSSIBLE",),
            "",
            ("N",),
            duration=(7, 30),
        ),
        _Term(
            "Proteinuria",
            "Renal and urinary disorders",
            ("proteinuria", "protein in urine", "urine protein 2+"),
            _REL_STRONG,
            _REL_WEAK,
            "ANLOTINIB",
            ("N",),
            days_to_onset=(21, 60),
            duration=(14, 40),
        ),
        _Term(
            "Hypothyroidism",
            "Endocrine disorders",
            ("hypothyroidism", "hypothyroid"),
            ("POSSIBLE",),
            _REL_STRONG,
            "",
            ("Y", None),
            days_to_onset=(35, 60),
            duration=(60, 120),
        ),
        _Term(
            "Blood thyroid stimulating hormone increased",
            "Investigations",
            ("TSH increased", "elevated TSH"),
            ("POSSIBLE",),
            ("POSSIBLE",),
            "",
            (None,),
            days_to_onset=(21, 50),
            duration=(21, 60),
        ),
        _Term(
            "Decreased appetite",
            "Metabolism and nutrition disorders",
            ("decreased appetite", "anorexia", "poor appetite"),
            ("POSSIBLE",),
            ("UNLIKELY",),
            "",
            ("N",),
            days_to_onset=(5, 30),
            duration=(7, 30),
        ),
        _Term(
            "Alanine aminotransferase increased",
            "Investigations",
            ("ALT increased", "elevated ALT", "transaminase elevation"),
            ("POSSIBLE",),
            ("POSSIBLE",),
            "",
            (None,),
            days_to_onset=(14, 45),
            duration=(14, 35),
        ),
        _Term(
            "Gingival bleeding",
            "Gastrointestinal disorders",
            ("bleeding gums",),
            ("POSSIBLE",),
            ("UNLIKELY",),
            "",
            ("N",),
            duration=(2, 7),
        ),
        _Term(
            "Pneumonia",
            "Infections and infestations",
            ("pneumonia", "lung infection"),
            ("UNLIKELY",),
            ("UNLIKELY",),
            "",
            ("N",),
            serious_from=3,
        ),
    )
}

# (PT, any-grade fraction of subjects, grade weights for grades 1..3) for the common AEs; the trial's signals
# (hypertension, haemoptysis, pneumonitis) are placed separately so their incidences hold for every seed.
_BACKGROUND_AES: tuple[tuple[str, float, tuple[float, float, float]], ...] = (
    ("Palmar-plantar erythrodysaesthesia syndrome", 0.40, (0.55, 0.35, 0.10)),
    ("Diarrhoea", 0.25, (0.70, 0.25, 0.05)),
    ("Fatigue", 0.30, (0.65, 0.35, 0.0)),
    ("Proteinuria", 0.25, (0.65, 0.30, 0.05)),
    ("Decreased appetite", 0.20, (0.70, 0.30, 0.0)),
    ("Alanine aminotransferase increased", 0.10, (0.70, 0.30, 0.0)),
)


@dataclass(frozen=True, slots=True)
class _LabTest:
    code: str
    unit: str
    low: float
    high: float
    specimen: str
    decimals: int


_LABS = (
    _LabTest("ALT", "U/L", 7, 40, "SERUM", 0),
    _LabTest("AST", "U/L", 13, 35, "SERUM", 0),
    _LabTest("BILI", "umol/L", 3.4, 20.5, "SERUM", 1),
    _LabTest("ALP", "U/L", 35, 100, "SERUM", 0),
    _LabTest("PLAT", "10^9/L", 125, 350, "BLOOD", 0),
    _LabTest("TSH", "mU/L", 0.27, 4.2, "SERUM", 2),
    _LabTest("FT4", "pmol/L", 12.0, 22.0, "SERUM", 1),
)
_LAB_BY_CODE = {lab.code: lab for lab in _LABS}


def _round(value: float, decimals: int) -> float | int:
    return round(value) if decimals == 0 else round(value, decimals)


def _nrind(lab: _LabTest, value: float) -> str:
    if value < lab.low:
        return "LOW"
    if value > lab.high:
        return "HIGH"
    return "NORMAL"


def _at(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SITE_TZ)


def _dtc(moment: datetime) -> str:
    """SDTM --DTC to the minute, local site time ("2026-04-30T07:45")."""
    return moment.strftime("%Y-%m-%dT%H:%M")


# ----------------------------------------------------------------------------------------------------------
# Trial plan
# ----------------------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Subject:
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
    aes: list[_AePlan] = field(default_factory=list)
    withdrawn: dict[str, date] = field(default_factory=dict)  # drug -> date it was permanently stopped
    interrupted: dict[str, list[tuple[date, date]]] = field(default_factory=dict)

    def spid(self) -> str:
        spid = f"AE-{self.next_spid}"
        self.next_spid += 1
        return spid


@dataclass(slots=True, eq=False)
class _AePlan:
    subject: _Subject
    spid: str
    term: _Term
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


@dataclass(slots=True, eq=False)
class _Outgoing:
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


class _TrialBuilder:
    """Plans subjects and AEs, emits each message with send and arrival times, then injects anomalies."""

    def __init__(self, seed: int, subjects: int, start: date, days: int) -> None:
        if subjects < _MIN_SUBJECTS:
            raise ValueError(f"subjects={subjects}: the trial needs at least {_MIN_SUBJECTS} to place its anomalies")
        if days < _MIN_DAYS:
            raise ValueError(f"days={days}: the trial needs at least {_MIN_DAYS} days of follow-up")
        self.rng = random.Random(seed)  # noqa: S311 -- reproducible synthetic data, not security
        self.seed = seed
        self.n = subjects
        self.start = start
        self.last_day = start + timedelta(days=days - 1)
        self.cutoff = _at(start + timedelta(days=days), 0, 0)
        self.subjects: list[_Subject] = []
        self.plans: list[_AePlan] = []
        self.out: list[_Outgoing] = []
        self.n_ids = 0
        self.vs_times: set[tuple[str, str]] = set()
        self.dose_requests: list[tuple[_AePlan, str, str, date]] = []  # (AE, drug, action, day)
        self.unknown_usubjid = ""
        self.special_subjects: set[str] = set()
        self.stale: tuple[_Outgoing, _Outgoing] | None = None  # (version 2, version 3)

    # ---- plumbing ------------------------------------------------------------------------------------------

    def new_msg_id(self) -> str:
        self.n_ids += 1
        return str(uuid.uuid5(_MSG_NAMESPACE, f"trial:{self.seed}:{self.n_ids}"))

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

    def emit(self, payload: Payload | str, sent_at: datetime, site: str, tag: str, msg_id: str = "") -> _Outgoing:
        if not msg_id:
            msg_id = str(payload["msg_id"]) if isinstance(payload, dict) else ""
        item = _Outgoing(sent_at, sent_at, len(self.out), msg_id, site, payload, tag)
        self.out.append(item)
        return item

    def working_hours(self, day: date) -> datetime:
        rng = self.rng
        return _at(day, rng.randint(9, 17), rng.randint(0, 59), rng.randint(0, 59))

    # ---- subjects ------------------------------------------------------------------------------------------

    def enrol(self) -> None:
        rng = self.rng
        window = max(1, int((self.last_day - self.start).days * 0.45))
        offsets = sorted(rng.randrange(window) for _ in range(self.n))
        per_site: dict[str, int] = {}
        for offset in offsets:
            site = rng.choices(SITE_IDS, weights=_SITE_WEIGHTS)[0]
            per_site[site] = per_site.get(site, 0) + 1
            enrolled = self.start + timedelta(days=offset)
            lab_base = {
                lab.code: rng.uniform(lab.low + 0.15 * (lab.high - lab.low), lab.high - 0.3 * (lab.high - lab.low))
                for lab in _LABS
            }
            self.subjects.append(
                _Subject(
                    usubjid=f"{STUDY_ID}-{site}-{per_site[site]:04d}",
                    site=site,
                    enrolled=enrolled,
                    first_dose=enrolled + timedelta(days=rng.randint(2, 6)),
                    last_visit=self.last_day,
                    sbp0=rng.randint(112, 128),
                    dbp0=rng.randint(70, 80),
                    qtcf0=rng.randint(395, 435),
                    lab_base=lab_base,
                )
            )
        self.unknown_usubjid = f"{STUDY_ID}-{rng.choice(SITE_IDS)}-{9999 if max(per_site.values()) >= 99 else 99:04d}"

    def assign_roles(self) -> None:
        n_deaths = 2 if self.n >= 40 else 1
        n_pneumonitis = max(1, min(3, round(0.03 * self.n)))
        roles = (
            ["haemoptysis-raise", "haemoptysis-g3"]
            + [f"death-{i}" for i in range(n_deaths)]
            + [f"pneumonitis-{i}" for i in range(n_pneumonitis)]
            + ["progression-0", "progression-1", "stale", "lowering", "html", "partial"]
        )
        early = self.subjects[: max(len(roles), int(0.7 * self.n))]
        for subject, role in zip(self.rng.sample(early, len(roles)), roles, strict=True):
            subject.role = role

    def onset(self, subject: _Subject, lo: int, hi: int, *, days: int | None = None) -> date | None:
        """Onset `days` (or uniform lo..hi) after first dose, kept inside the subject's follow-up."""
        latest = (subject.last_visit - subject.first_dose).days - 2
        if latest < 1:
            return None
        offset = days if days is not None else self.rng.randint(lo, hi)
        return subject.first_dose + timedelta(days=max(1, min(offset, latest)))

    def plan_ae(
        self,
        subject: _Subject,
        decod: str,
        grade: int,
        onset: date,
        *,
        kind: str = "generic",
        verbatim: str | None = None,
        end: date | None = None,
        resolves: bool = True,
    ) -> _AePlan:
        rng = self.rng
        term = _TERMS[decod]
        if end is None and resolves and grade < 5:
            end = onset + timedelta(days=rng.randint(*term.duration))
            if end > subject.last_visit:
                end = None
        plan = _AePlan(
            subject=subject,
            spid=subject.spid(),
            term=term,
            verbatim=verbatim or rng.choice(term.verbatims + (term.mild_verbatims if grade == 1 else ())),
            grade=grade,
            onset=onset,
            end=end,
            kind=kind,
            irae=rng.choice(term.irae),
            rel_anlotinib=rng.choice(term.rel_anlotinib),
            rel_ici=rng.choice(term.rel_ici),
        )
        plan.acn_anlotinib, plan.acn_ici = self.actions(term, grade)
        self.plans.append(plan)
        subject.aes.append(plan)
        return plan

    def actions(self, term: _Term, grade: int) -> tuple[str, str]:
        """(AEACN_ANLOTINIB, AEACN_ICI) as sites record them for this grade; ICIs are never dose-reduced."""
        if grade >= 4:
            return "DRUG WITHDRAWN", "DRUG WITHDRAWN"
        if term.suspect == "" or grade == 1:
            return "DOSE NOT CHANGED", "DOSE NOT CHANGED"
        if term.suspect == "ANLOTINIB":
            if grade == 2:
                acn = "DRUG INTERRUPTED" if self.rng.random() < 0.4 else "DOSE NOT CHANGED"
            else:
                acn = self.rng.choice(("DRUG INTERRUPTED", "DOSE REDUCED"))
            return acn, "DOSE NOT CHANGED"
        return "DOSE NOT CHANGED", "DRUG INTERRUPTED"

    def plan_trial(self) -> None:
        rng = self.rng
        # Deaths and discontinuations first: they bound each subject's follow-up.
        for subject in self.subjects:
            if subject.role.startswith("death-"):
                died = subject.first_dose + timedelta(days=rng.randint(28, 50))
                subject.died = min(died, self.last_day - timedelta(days=5))
                subject.last_visit = subject.died - timedelta(days=1)
            elif subject.role.startswith("progression-"):
                stop = subject.first_dose + timedelta(days=rng.randint(35, 56))
                subject.last_visit = min(stop, self.last_day - timedelta(days=3))
        by_role = {s.role: s for s in self.subjects if s.role}
        background_excluded: dict[str, set[str]] = {}

        # The trial's signals.
        raise_subject = by_role["haemoptysis-raise"]
        onset = self.onset(raise_subject, 14, 28)
        assert onset is not None
        plan = self.plan_ae(raise_subject, "Haemoptysis", 2, onset, kind="raise", resolves=False)
        plan.acn_anlotinib = "DRUG INTERRUPTED"
        onset = self.onset(by_role["haemoptysis-g3"], 14, 40)
        assert onset is not None
        plan = self.plan_ae(by_role["haemoptysis-g3"], "Haemoptysis", 3, onset)
        plan.acn_anlotinib = "DRUG WITHDRAWN"
        haemoptysis_subjects = {raise_subject.usubjid, by_role["haemoptysis-g3"].usubjid}
        others = [s for s in self.subjects if s.usubjid not in haemoptysis_subjects and not s.role.startswith("death")]
        for subject in rng.sample(others, max(0, round(0.10 * self.n) - 2)):
            onset = self.onset(subject, 14, 45)
            if onset is not None:
                grade = 1 if rng.random() < 0.65 else 2
                plan = self.plan_ae(subject, "Haemoptysis", grade, onset)
                if grade == 2:
                    plan.acn_anlotinib = "DRUG INTERRUPTED"

        for role, subject in by_role.items():
            if role.startswith("pneumonitis-"):
                onset = self.onset(subject, 35, 60)
                assert onset is not None
                grade = 2 if role == "pneumonitis-0" else 3
                plan = self.plan_ae(subject, "Pneumonitis", grade, onset)
                plan.acn_ici = "DRUG INTERRUPTED" if grade == 2 else "DRUG WITHDRAWN"
                if grade == 3:
                    plan.acn_anlotinib = "DRUG INTERRUPTED"
            elif role == "death-0":
                assert subject.died is not None
                plan = self.plan_ae(subject, "Pulmonary haemorrhage", 5, subject.died, end=subject.died)
                plan.verbatim = "massive haemoptysis"
            elif role == "death-1":
                assert subject.died is not None
                onset = subject.died - timedelta(days=rng.randint(3, 8))
                self.plan_ae(subject, "Pneumonia", 5, onset, end=subject.died)

        n_any = round(0.65 * self.n)
        n_severe = max(1, round(0.133 * self.n))
        for i, subject in enumerate(rng.sample(self.subjects, n_any)):
            days = round(rng.lognormvariate(math.log(6), 0.7))
            onset = self.onset(subject, 0, 0, days=days)
            if onset is None:
                continue
            if i < n_severe:
                plan = self.plan_ae(subject, "Hypertension", 3, onset, resolves=rng.random() < 0.5)
            else:
                plan = self.plan_ae(subject, "Hypertension", 1 if rng.random() < 0.55 else 2, onset)

        # Special records the manifest points at.
        for role, subject in by_role.items():
            if role == "stale":
                onset = self.onset(subject, 5, 12)
                assert onset is not None
                self.plan_ae(subject, "Diarrhoea", 1, onset, kind="stale", resolves=False)
                background_excluded.setdefault("Diarrhoea", set()).add(subject.usubjid)
            elif role == "lowering":
                onset = self.onset(subject, 5, 15)
                assert onset is not None
                self.plan_ae(subject, "Fatigue", 3, onset, kind="lowering", resolves=False)
                background_excluded.setdefault("Fatigue", set()).add(subject.usubjid)
            elif role == "html":
                onset = self.onset(subject, 10, 30)
                assert onset is not None
                verbatim = "<script>alert('x')</script> bleeding gums"
                plan = self.plan_ae(subject, "Gingival bleeding", 1, onset, kind="html", verbatim=verbatim)
            elif role == "partial":  # onset in the trial's second month, known to the month only
                second_month = (self.start.replace(day=1) + timedelta(days=32)).replace(day=1)
                target = second_month + timedelta(days=rng.randint(2, 20))
                onset = self.onset(subject, 0, 0, days=(target - subject.first_dose).days)
                assert onset is not None
                plan = self.plan_ae(subject, "Decreased appetite", 1, onset, kind="partial")
                plan.partial_onset = True
                background_excluded.setdefault("Decreased appetite", set()).add(subject.usubjid)

        # Background toxicity.
        for decod, fraction, weights in _BACKGROUND_AES:
            term = _TERMS[decod]
            excluded = background_excluded.get(decod, set())
            pool = [s for s in self.subjects if s.usubjid not in excluded]
            for subject in rng.sample(pool, min(len(pool), round(fraction * self.n))):
                onset = self.onset(subject, *term.days_to_onset)
                if onset is not None:
                    grade = rng.choices((1, 2, 3), weights=weights)[0]
                    plan = self.plan_ae(subject, decod, grade, onset)
                    plan.partial_onset = rng.random() < 0.04
        thyroid = rng.sample(self.subjects, round(0.30 * self.n))
        n_hypo = round(0.10 * self.n)
        for i, subject in enumerate(thyroid):
            decod = "Hypothyroidism" if i < n_hypo else "Blood thyroid stimulating hormone increased"
            onset = self.onset(subject, *_TERMS[decod].days_to_onset)
            if onset is not None:
                self.plan_ae(subject, decod, 2 if i < n_hypo else 1, onset)
        if self.n >= 40:
            subject = rng.choice([s for s in self.subjects if not s.role])
            onset = self.onset(subject, 30, 55)
            if onset is not None:
                plan = self.plan_ae(subject, "Colitis", 2, onset)
                plan.acn_ici = "DRUG INTERRUPTED"
        for subject in self.subjects:  # sites number AEs in the order they are recorded
            subject.aes.sort(key=lambda p: (p.onset, p.term.decod))
            for number, plan in enumerate(subject.aes, 1):
                plan.spid = f"AE-{number}"
            subject.next_spid = len(subject.aes) + 1

    # ---- messages: subject status --------------------------------------------------------------------------

    def subject_msg(
        self, subject: _Subject, event: str, day: date, drug: str | None = None, reason: str | None = None
    ) -> _Outgoing:
        sent_at = self.working_hours(day)
        payload = self.envelope("SUBJECT", sent_at, subject.site, subject.usubjid)
        payload |= {"EVENT": event, "EVENTDTC": day.isoformat(), "ARM": ARM, "DRUG": drug, "REASON": reason}
        return self.emit(payload, sent_at, subject.site, f"SUBJECT:{event}")

    def emit_subject_status(self) -> None:
        for subject in self.subjects:
            self.subject_msg(subject, "ENROLLED", subject.enrolled)
            for drug in DRUGS:
                self.subject_msg(subject, "FIRST_DOSE", subject.first_dose, drug)
            if subject.died is not None:
                reason = next(p.term.decod for p in subject.aes if p.grade == 5)
                self.subject_msg(subject, "DIED", subject.died, None, reason)
            elif subject.role.startswith("progression-"):
                self.subject_msg(subject, "DISCONTINUED", subject.last_visit, None, "PROGRESSIVE DISEASE")

    def dose_action(self, plan: _AePlan, drug: str, action: str, day: date) -> None:
        if day <= plan.subject.last_visit and action in ("DRUG WITHDRAWN", "DRUG INTERRUPTED") and plan.grade < 5:
            self.dose_requests.append((plan, drug, action, day))

    def emit_dose_events(self) -> None:
        """SUBJECT messages that follow AE actions; withdrawals first, so nothing resumes a stopped drug."""
        for plan, drug, action, day in self.dose_requests:
            if action == "DRUG WITHDRAWN":
                subject = plan.subject
                if drug not in subject.withdrawn or day < subject.withdrawn[drug]:
                    subject.withdrawn[drug] = day
        for plan, drug, action, day in sorted(self.dose_requests, key=lambda r: (r[3], r[0].subject.usubjid, r[1])):
            subject = plan.subject
            stopped = subject.withdrawn.get(drug, self.last_day + timedelta(days=1))
            reason = f"ADVERSE EVENT: {plan.spid} {plan.term.decod}"
            if action == "DRUG WITHDRAWN" and day == stopped:
                self.subject_msg(subject, "DISCONTINUED", day, drug, reason)
            elif action == "DRUG INTERRUPTED" and day < stopped:
                resumed = day + timedelta(days=self.rng.randint(7, 14))
                spans = subject.interrupted.setdefault(drug, [])
                if any(lo <= resumed and day <= hi for lo, hi in spans):
                    continue
                spans.append((day, resumed))
                self.subject_msg(subject, "DOSE_INTERRUPTED", day, drug, reason)
                if resumed <= subject.last_visit and resumed < stopped:
                    self.subject_msg(subject, "DOSE_RESUMED", resumed, drug)

    # ---- messages: adverse events --------------------------------------------------------------------------

    def ae_payload(self, plan: _AePlan, version: int, sent_at: datetime, **changes: object) -> Payload:
        rng = self.rng
        subject = plan.subject
        grade = int(str(changes.get("grade", plan.grade)))
        end = changes.get("end")
        assert end is None or isinstance(end, date)
        serious = grade >= plan.term.serious_from
        payload = self.envelope("AE", sent_at, subject.site, subject.usubjid, version)
        fatal = grade == 5
        if end is not None:
            outcome = "FATAL" if fatal else "RECOVERED/RESOLVED"
        else:
            outcome = str(changes.get("outcome", "NOT RECOVERED/NOT RESOLVED"))
        payload |= {
            "AESPID": plan.spid,
            "AETERM": plan.verbatim,
            "AEDECOD": plan.term.decod,
            "AEBODSYS": plan.term.soc,
            "AETOXGR": str(grade) if rng.random() < 0.06 and plan.kind == "generic" else grade,
            "AESER": "Y" if serious else "N",
            "AESHOSP": "Y" if serious else "N",
            "AESDTH": "Y" if fatal else "N",
            "AESLIFE": "Y" if grade == 4 else "N",
            "AESTDTC": plan.onset.isoformat()[:7] if plan.partial_onset else plan.onset.isoformat(),
            "AEENDTC": end.isoformat() if end is not None else None,
            "AEOUT": outcome,
            "AEREL_ANLOTINIB": plan.rel_anlotinib,
            "AEREL_ICI": plan.rel_ici,
            "AEACN_ANLOTINIB": changes.get("acn_anlotinib", plan.acn_anlotinib),
            "AEACN_ICI": plan.acn_ici,
            "AEIRAE": changes.get("irae", plan.irae),
        }
        if not serious and plan.kind == "generic" and rng.random() < 0.04:
            del payload["AESER"]  # some EDC exports leave AESER out when nothing is ticked
        return payload

    def emit_ae(self, plan: _AePlan, version: int, day: date, tag: str, **changes: object) -> _Outgoing:
        sent_at = self.working_hours(day)
        item = self.emit(self.ae_payload(plan, version, sent_at, **changes), sent_at, plan.subject.site, tag)
        plan.msg_ids.append(item.msg_id)
        return item

    def emit_adverse_events(self) -> None:
        rng = self.rng
        for plan in sorted(self.plans, key=lambda p: (p.onset, p.subject.usubjid, p.spid)):
            serious = plan.grade >= plan.term.serious_from
            reported = plan.onset + timedelta(days=rng.randint(0, 1) if serious else rng.randint(0, 5))
            if plan.grade == 5 and plan.end is not None:
                reported = plan.end + timedelta(days=rng.randint(0, 1))  # reported once fatal
            reported = min(reported, self.last_day)
            if plan.kind == "raise":
                raised = reported + timedelta(days=rng.randint(2, 5))
                self.emit_ae(plan, 1, reported, "AE")
                self.dose_action(plan, "ANLOTINIB", "DRUG INTERRUPTED", reported)
                plan.grade = 3
                self.emit_ae(plan, 2, raised, "AE", acn_anlotinib="DRUG WITHDRAWN")
                self.dose_action(plan, "ANLOTINIB", "DRUG WITHDRAWN", raised)
                continue
            if plan.kind == "stale":
                second = reported + timedelta(days=rng.randint(4, 6))
                end = second + timedelta(days=rng.randint(1, 3))
                self.emit_ae(plan, 1, reported, "AE")
                v2 = self.emit_ae(plan, 2, second, "AE", outcome="RECOVERING/RESOLVING")
                v3 = self.emit_ae(plan, 3, end + timedelta(days=rng.randint(1, 3)), "AE", end=end)
                self.stale = (v2, v3)
                continue
            if plan.kind == "lowering":
                self.emit_ae(plan, 1, reported, "AE")
                self.emit_ae(plan, 2, reported + timedelta(days=rng.randint(3, 8)), "AE", grade=2)
                continue
            end_known = plan.end if plan.end is not None and plan.end <= reported else None
            versions = [self.emit_ae(plan, 1, reported, "AE1", end=end_known)]
            if plan.end is not None and end_known is None:
                followup = plan.end + timedelta(days=rng.randint(1, 7))
                irae = plan.irae if plan.irae is not None else rng.choice(("Y", "N", None))
                if followup <= self.last_day:
                    versions.append(self.emit_ae(plan, 2, followup, "AE", end=plan.end, irae=irae))
            elif plan.irae is None and plan.end is None:
                followup = reported + timedelta(days=rng.randint(7, 21))
                irae = "Y" if plan.term.suspect == "ICI" or rng.random() < 0.5 else "N"
                if followup <= self.last_day:
                    versions.append(self.emit_ae(plan, 2, followup, "AE", irae=irae))
            if len(versions) > 1:
                versions[0].tag = "AE"
            for drug, action in (("ANLOTINIB", plan.acn_anlotinib), ("ICI", plan.acn_ici)):
                self.dose_action(plan, drug, action, reported)

    # ---- messages: findings --------------------------------------------------------------------------------

    def visits(self, subject: _Subject) -> list[tuple[str, date]]:
        visits = [("SCREENING", subject.enrolled)]
        cycle = 2
        while (day := subject.first_dose + timedelta(days=21 * (cycle - 1))) <= subject.last_visit:
            visits.append((f"C{cycle}D1", day))
            cycle += 1
        return visits

    def active(self, subject: _Subject, decod: str, day: date) -> _AePlan | None:
        for plan in subject.aes:
            if plan.term.decod == decod and plan.onset <= day and (plan.end is None or day <= plan.end):
                return plan
        return None

    def lab_value(self, subject: _Subject, lab: _LabTest, day: date) -> float:
        rng = self.rng
        value = subject.lab_base[lab.code] * rng.uniform(0.9, 1.1)
        if lab.code in ("ALT", "AST") and (plan := self.active(subject, "Alanine aminotransferase increased", day)):
            x_uln = rng.uniform(1.3, 2.8) if plan.grade == 1 else rng.uniform(3.2, 4.8)
            value = lab.high * (x_uln if lab.code == "ALT" else x_uln * 0.6)
        elif lab.code in ("TSH", "FT4"):
            if self.active(subject, "Hypothyroidism", day):
                value = rng.uniform(10.0, 25.0) if lab.code == "TSH" else rng.uniform(8.0, 11.5)
            elif self.active(subject, "Blood thyroid stimulating hormone increased", day) and lab.code == "TSH":
                value = rng.uniform(4.6, 9.5)
        return value

    def emit_labs(self, subject: _Subject, visit: str, day: date) -> None:
        rng = self.rng
        collected = _at(day, rng.randint(7, 9), rng.randint(0, 59))
        sent_at = collected + timedelta(hours=rng.randint(2, 7), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
        for lab in _LABS:
            value = _round(self.lab_value(subject, lab, day), lab.decimals)
            payload = self.envelope("LB", sent_at, subject.site, subject.usubjid)
            payload |= {
                "LBTESTCD": lab.code,
                "LBSTRESN": value,
                "LBSTRESU": lab.unit,
                "LBSTNRLO": lab.low,
                "LBSTNRHI": lab.high,
                "LBNRIND": _nrind(lab, value),
                "LBBLFL": "Y" if visit == "SCREENING" else None,
                "LBDTC": _dtc(collected),
                "VISIT": visit,
                "LBSPEC": lab.specimen,
            }
            self.emit(payload, sent_at, subject.site, "LB")

    def blood_pressure(self, subject: _Subject, day: date) -> tuple[int, int]:
        rng = self.rng
        plan = self.active(subject, "Hypertension", day)
        if plan is None:
            return min(138, subject.sbp0 + rng.randint(-6, 8)), min(88, subject.dbp0 + rng.randint(-4, 6))
        if plan.grade == 1:
            return rng.randint(130, 139), rng.randint(80, 89)
        if plan.grade == 2 or (day - plan.onset).days > 14:  # grade 3 is controlled after two weeks
            return rng.randint(140, 156), rng.randint(88, 98)
        return rng.randint(160, 178), rng.randint(100, 110)

    def emit_bp(self, subject: _Subject, measured: datetime, baseline: bool) -> None:
        rng = self.rng
        while (subject.usubjid, _dtc(measured)) in self.vs_times:
            measured += timedelta(minutes=1)
        self.vs_times.add((subject.usubjid, _dtc(measured)))
        sent_at = measured + timedelta(minutes=rng.randint(1, 30), seconds=rng.randint(0, 59))
        sbp, dbp = self.blood_pressure(subject, measured.date())
        for code, value in (("SYSBP", sbp), ("DIABP", dbp)):
            payload = self.envelope("VS", sent_at, subject.site, subject.usubjid)
            payload |= {
                "VSTESTCD": code,
                "VSSTRESN": value,
                "VSSTRESU": "mmHg",
                "VSDTC": _dtc(measured),
                "VSBLFL": "Y" if baseline else None,
            }
            self.emit(payload, sent_at, subject.site, "VS")

    def emit_ecg(self, subject: _Subject, day: date, baseline: bool) -> None:
        rng = self.rng
        recorded = _at(day, rng.randint(9, 11), rng.randint(0, 59))
        sent_at = recorded + timedelta(hours=rng.randint(1, 4), seconds=rng.randint(0, 3599))
        value = subject.qtcf0 if baseline else subject.qtcf0 + rng.randint(-5, 22)
        payload = self.envelope("EG", sent_at, subject.site, subject.usubjid)
        payload |= {
            "EGTESTCD": "QTCF",
            "EGSTRESN": value,
            "EGSTRESU": "ms",
            "EGDTC": _dtc(recorded),
            "EGBLFL": "Y" if baseline else None,
        }
        self.emit(payload, sent_at, subject.site, "EG")

    def emit_findings(self) -> None:
        rng = self.rng
        for subject in self.subjects:
            for visit, day in self.visits(subject):
                baseline = visit == "SCREENING"
                self.emit_labs(subject, visit, day)
                self.emit_bp(subject, _at(day, rng.randint(8, 10), rng.randint(0, 59)), baseline)
                if visit in ("SCREENING", "C2D1"):
                    self.emit_ecg(subject, day, baseline)
            week = 1
            while (day := subject.first_dose + timedelta(days=7 * week)) <= subject.last_visit:
                self.emit_bp(subject, _at(day, rng.randint(6, 8), rng.randint(0, 59)), False)  # home monitor
                week += 1
            for plan in subject.aes:
                if plan.term.decod == "Hypertension" and plan.grade >= 3:
                    self.emit_bp(subject, _at(plan.onset, rng.randint(19, 21), rng.randint(0, 59)), False)
                    next_day = plan.onset + timedelta(days=1)
                    self.emit_bp(subject, _at(next_day, rng.randint(6, 7), rng.randint(0, 59)), False)

    # ---- arrival -------------------------------------------------------------------------------------------

    def delay_arrivals(self) -> None:
        """Late arrivals: a site offline ~40 h (flushed on reconnect), some devices and labs slow to sync."""
        rng = self.rng
        outage_site = rng.choice(SITE_IDS)
        outage_start = _at(self.start + timedelta(days=(self.last_day - self.start).days // 2), 18, 0)
        outage_end = outage_start + timedelta(hours=40)
        slow: dict[str, timedelta] = {}
        for item in self.out:
            if item.site == outage_site and outage_start <= item.sent_at < outage_end:
                item.arrival = outage_end  # order within the site is kept by the (arrival, sent_at) sort key
                continue
            if item.tag in ("VS", "LB") and isinstance(item.payload, dict):
                batch = f"{item.payload['USUBJID']}|{item.sent_at.isoformat()}"
                if batch not in slow:
                    late = rng.random() < (0.04 if item.tag == "VS" else 0.03)
                    slow[batch] = timedelta(minutes=rng.randint(180, 3600)) if late else timedelta(0)
                item.arrival = item.sent_at + slow[batch]
        self.out = [item for item in self.out if item.arrival < self.cutoff]

    # ---- anomalies -----------------------------------------------------------------------------------------

    def pick(self, tag: str, used: set[str], before: datetime) -> _Outgoing:
        candidates = [
            item
            for item in self.out
            if item.tag == tag
            and item.msg_id not in used
            and item.arrival < before
            and isinstance(item.payload, dict)
            and item.payload["USUBJID"] not in self.special_subjects
        ]
        choice = self.rng.choice(candidates)
        used.add(choice.msg_id)
        return choice

    def inject_anomalies(self) -> Manifest:
        rng = self.rng
        self.special_subjects = {s.usubjid for s in self.subjects if s.role}
        span = self.cutoff - _at(self.start, 0, 0)
        used: set[str] = set()

        # Exact duplicates: re-sent verbatim, hours to days later.
        duplicates = []
        for tag in ("AE1", "LB", "VS", "SUBJECT:FIRST_DOSE", "EG"):
            original = self.pick(tag, used, self.cutoff - timedelta(days=5))
            copy = self.emit(original.payload, original.sent_at, original.site, "duplicate", original.msg_id)
            copy.arrival = original.arrival + timedelta(minutes=rng.randint(6 * 60, 72 * 60))
            duplicates.append(original.msg_id)

        # A follow-up overtaken by a newer one: version 2 arrives after version 3.
        assert self.stale is not None
        stale, newest = self.stale
        stale.arrival = max(stale.arrival, newest.arrival) + timedelta(minutes=rng.randint(60, 30 * 60))

        # msg_id conflict: a later, different lab result reusing an earlier LB msg_id.
        original = self.pick("LB", used, _at(self.start, 0, 0) + span * 0.5)
        assert isinstance(original.payload, dict)
        subject = next(s for s in self.subjects if s.usubjid == original.payload["USUBJID"])
        drawn = _at(original.arrival.date() + timedelta(days=rng.randint(3, 10)), 14, rng.randint(0, 59))
        sent_at = drawn + timedelta(hours=3, seconds=rng.randint(0, 3599))
        alt = _LAB_BY_CODE["ALT"]
        value = _round(subject.lab_base["ALT"], 0)
        conflict = dict(original.payload)
        conflict |= {
            "sent_at": sent_at.isoformat(),
            "LBTESTCD": "ALT",
            "LBSTRESN": value,
            "LBSTRESU": alt.unit,
            "LBSTNRLO": alt.low,
            "LBSTNRHI": alt.high,
            "LBNRIND": _nrind(alt, value),
            "LBBLFL": None,
            "LBDTC": _dtc(drawn),
            "VISIT": "UNSCHEDULED",
            "LBSPEC": alt.specimen,
        }
        self.emit(conflict, sent_at, subject.site, "conflict", original.msg_id)

        # An AE for a subject nobody enrolled: must still alert at once.
        site = self.unknown_usubjid.split("-")[-2]
        ghost = _Subject(self.unknown_usubjid, site, self.start, self.start, self.last_day, 120, 75, 410, {})
        onset = self.start + timedelta(days=int(span.days * 0.4))
        plan = self.plan_ae(ghost, "Haemoptysis", 3, onset, resolves=False)
        plan.acn_anlotinib = "DRUG WITHDRAWN"
        self.emit_ae(plan, 1, onset + timedelta(days=1), "unknown-subject")

        # Malformed messages, spread over the trial.
        regulars = [s for s in self.subjects if not s.role]
        moments = [  # one in each seventh of the middle of the trial
            self.working_hours(self.start + timedelta(days=int(span.days * rng.uniform(i / 7, (i + 1) / 7))))
            for i in range(1, 6)
        ]
        malformed: list[_Outgoing] = []
        for kind, moment in zip(("torn", "grade6", "no-subject", "bad-date", "bad-type"), moments, strict=True):
            subject = rng.choice(regulars)
            day = min(moment.date(), subject.last_visit)
            if kind == "torn":
                lab = rng.choice(_LABS)
                payload = self.envelope("LB", moment, subject.site, subject.usubjid)
                payload |= {
                    "LBTESTCD": lab.code,
                    "LBSTRESN": _round(subject.lab_base[lab.code], lab.decimals),
                }
                text = json.dumps(payload)
                malformed.append(self.emit(text[: len(text) * 2 // 3], moment, subject.site, kind, "torn"))
            elif kind == "bad-type":
                payload = self.envelope("XX", moment, subject.site, subject.usubjid)
                payload |= {"PRTRT": "BRONCHOSCOPY", "PRSTDTC": day.isoformat()}
                malformed.append(self.emit(payload, moment, subject.site, kind))
            else:
                decod = rng.choice(("Fatigue", "Diarrhoea", "Decreased appetite"))
                onset = max(subject.first_dose + timedelta(days=1), day - timedelta(days=2))
                plan = _AePlan(subject, subject.spid(), _TERMS[decod], decod.lower(), 1, onset, None, kind=kind)
                payload = self.ae_payload(plan, 1, moment)
                if kind == "grade6":
                    payload["AETOXGR"] = 6
                elif kind == "no-subject":
                    del payload["USUBJID"]
                else:
                    payload["AESTDTC"] = f"{self.start.year}-13-45"
                malformed.append(self.emit(payload, moment, subject.site, kind))

        self.out.sort(key=lambda item: (item.arrival, item.sent_at, item.seq))
        malformed_ids = {id(item) for item in malformed}
        lowering_plan = next(p for p in self.plans if p.kind == "lowering")
        raise_plan = next(p for p in self.plans if p.kind == "raise")
        html_plan = next(p for p in self.plans if p.kind == "html")
        partial_plan = next(p for p in self.plans if p.kind == "partial")
        return Manifest(
            duplicate_msg_ids=tuple(duplicates),
            grade_raise=(raise_plan.subject.usubjid, raise_plan.spid, 2, 3),
            stale_followup_msg_id=stale.msg_id,
            grade_lowering=(lowering_plan.subject.usubjid, lowering_plan.spid, 3, 2),
            malformed_lines=tuple(i for i, item in enumerate(self.out, 1) if id(item) in malformed_ids),
            conflict_msg_id=original.msg_id,
            unknown_subject_id=self.unknown_usubjid,
            html_payload_msg_id=html_plan.msg_ids[0],
            partial_date_msg_id=partial_plan.msg_ids[0],
        )

    def build(self) -> SyntheticTrial:
        self.enrol()
        self.assign_roles()
        self.plan_trial()
        self.emit_subject_status()
        self.emit_adverse_events()
        self.emit_dose_events()
        self.emit_findings()
        self.delay_arrivals()
        manifest = self.inject_anomalies()
        return SyntheticTrial(tuple(item.render() for item in self.out), manifest)


def generate_trial(
    seed: int = 20260302, subjects: int = 60, start: date = date(2026, 3, 2), days: int = 91
) -> SyntheticTrial:
    """A plausible ALTER-ICI-01 trial as site messages in arrival order: the same seed, the same bytes."""
    return _TrialBuilder(seed, subjects, start, days).build()


# ----------------------------------------------------------------------------------------------------------
# Benchmark load
# ----------------------------------------------------------------------------------------------------------

_LOAD_SUBJECT_EVERY = 200  # messages per newly enrolled subject
_LOAD_ACTIVE = 40  # subjects reporting at any time
_LOAD_TERMS = tuple(
    _TERMS[decod]
    for decod in (
        "Hypertension",
        "Palmar-plantar erythrodysaesthesia syndrome",
        "Diarrhoea",
        "Fatigue",
        "Proteinuria",
        "Decreased appetite",
        "Hypothyroidism",
        "Haemoptysis",
    )
)
# Draw thresholds for one draw = AE (1 message), LB (1), VS pair (2), EG (1): about 15 % AE, 40 % LB, 40 % VS,
# 3.5 % EG by message; enrolments add 1.5 % SUBJECT.
_LOAD_AE, _LOAD_LB, _LOAD_VS = 0.191, 0.701, 0.955


@dataclass(slots=True, eq=False)
class _LoadSubject:
    usubjid: str
    site: str
    spids: int = 0
    last_ae: Payload | None = None


_LOAD_SECONDS_PER_DAY = 600


def generate_load(messages: int, seed: int = 7) -> Iterator[str]:
    """Valid site messages for benchmarks: many subjects, mixed types, unique msg_ids, sent_at ascending."""
    rng = random.Random(seed)  # noqa: S311 -- reproducible synthetic data, not security
    rand = rng.random
    encode = json.JSONEncoder(check_circular=False).encode  # json.dumps output, without the per-call setup
    stem = uuid.uuid5(_MSG_NAMESPACE, f"load:{seed}").hex
    # A valid UUID string per message (version and variant from `stem`): unique within the stream, and across
    # seeds as far as uuid5 is; far cheaper than a uuid5 per message.
    id_prefix = f"{stem[:8]}-{stem[8:12]}-{stem[12:16]}-{stem[16:20]}-"
    first_day = date(2026, 3, 2)
    days: list[str] = []
    seconds = 0
    active: list[_LoadSubject] = []
    per_site: dict[str, int] = dict.fromkeys(SITE_IDS, 0)
    labs = _LABS
    n = 0
    next_enrolment = 0

    while n < messages:
        seconds += 1 + rng.getrandbits(2)
        # Ten minutes of stream make one trial day, so a subject active for a few hours of stream has weeks of
        # visits after the first dose, as in a real trial (its results are not all on the first-dose day).
        day_index, offset = divmod(seconds, _LOAD_SECONDS_PER_DAY)
        clock = 8 * 3600 + offset * 10
        while day_index >= len(days):
            days.append((first_day + timedelta(days=len(days))).isoformat())
        day = days[day_index]
        hour, rest = divmod(clock, 3600)
        minute, second = divmod(rest, 60)
        dtc = f"{day}T{hour:02d}:{minute:02d}"
        sent_at = f"{dtc}:{second:02d}+08:00"

        if n >= next_enrolment:
            next_enrolment += _LOAD_SUBJECT_EVERY
            site = SITE_IDS[int(rand() * len(SITE_IDS))]
            per_site[site] += 1
            subject = _LoadSubject(f"{STUDY_ID}-{site}-{per_site[site]:04d}", site)
            active.append(subject)
            if len(active) > _LOAD_ACTIVE:
                active.pop(0)
            for event, drug in (("ENROLLED", None), ("FIRST_DOSE", "ANLOTINIB"), ("FIRST_DOSE", "ICI")):
                if n >= messages:
                    return
                n += 1
                yield encode(
                    {
                        "msg_id": f"{id_prefix}{n:012x}",
                        "msg_type": "SUBJECT",
                        "sent_at": sent_at,
                        "site_id": site,
                        "record_version": 1,
                        "STUDYID": STUDY_ID,
                        "USUBJID": subject.usubjid,
                        "EVENT": event,
                        "EVENTDTC": day,
                        "ARM": ARM,
                        "DRUG": drug,
                        "REASON": None,
                    }
                )
            continue

        subject = active[int(rand() * len(active))]
        draw = rand()
        n += 1
        msg_id = f"{id_prefix}{n:012x}"
        if draw < _LOAD_AE:
            previous = subject.last_ae
            if previous is not None and rand() < 0.25:  # a follow-up closing the subject's last AE
                ae = dict(previous)
                ae["msg_id"] = msg_id
                ae["sent_at"] = sent_at
                ae["record_version"] = int(str(previous["record_version"])) + 1
                ae["AEENDTC"] = day
                ae["AEOUT"] = "RECOVERED/RESOLVED"
            else:
                term = _LOAD_TERMS[int(rand() * len(_LOAD_TERMS))]
                subject.spids += 1
                grade = 1 if draw < 0.11 else (2 if draw < 0.17 else 3)
                serious = "Y" if grade >= term.serious_from else "N"
                ae = {
                    "msg_id": msg_id,
                    "msg_type": "AE",
                    "sent_at": sent_at,
                    "site_id": subject.site,
                    "record_version": 1,
                    "STUDYID": STUDY_ID,
                    "USUBJID": subject.usubjid,
                    "AESPID": f"AE-{subject.spids}",
                    "AETERM": term.verbatims[0],
                    "AEDECOD": term.decod,
                    "AEBODSYS": term.soc,
                    "AETOXGR": grade,
                    "AESER": serious,
                    "AESHOSP": serious,
                    "AESDTH": "N",
                    "AESLIFE": "N",
                    "AESTDTC": day,
                    "AEENDTC": None,
                    "AEOUT": "NOT RECOVERED/NOT RESOLVED",
                    "AEREL_ANLOTINIB": term.rel_anlotinib[0],
                    "AEREL_ICI": term.rel_ici[0],
                    "AEACN_ANLOTINIB": "DOSE NOT CHANGED",
                    "AEACN_ICI": "DOSE NOT CHANGED",
                    "AEIRAE": term.irae[0],
                }
            subject.last_ae = ae
            yield encode(ae)
        elif draw < _LOAD_LB:
            lab = labs[int(rand() * len(labs))]
            yield encode(
                {
                    "msg_id": msg_id,
                    "msg_type": "LB",
                    "sent_at": sent_at,
                    "site_id": subject.site,
                    "record_version": 1,
                    "STUDYID": STUDY_ID,
                    "USUBJID": subject.usubjid,
                    "LBTESTCD": lab.code,
                    "LBSTRESN": round(lab.low + (lab.high - lab.low) * rand(), lab.decimals),
                    "LBSTRESU": lab.unit,
                    "LBSTNRLO": lab.low,
                    "LBSTNRHI": lab.high,
                    "LBNRIND": "NORMAL",
                    "LBBLFL": None,
                    "LBDTC": dtc,
                    "VISIT": "UNSCHEDULED",
                    "LBSPEC": lab.specimen,
                }
            )
        elif draw < _LOAD_VS:
            # SBP and DBP of one measurement (a few at grade 3: SBP >= 160 or DBP >= 100)
            for code, value in (("SYSBP", 105 + int(rand() * 58)), ("DIABP", 65 + int(rand() * 37))):
                if code == "DIABP":
                    if n >= messages:
                        return
                    n += 1
                    msg_id = f"{id_prefix}{n:012x}"
                yield encode(
                    {
                        "msg_id": msg_id,
                        "msg_type": "VS",
                        "sent_at": sent_at,
                        "site_id": subject.site,
                        "record_version": 1,
                        "STUDYID": STUDY_ID,
                        "USUBJID": subject.usubjid,
                        "VSTESTCD": code,
                        "VSSTRESN": value,
                        "VSSTRESU": "mmHg",
                        "VSDTC": dtc,
                        "VSBLFL": None,
                    }
                )
        else:
            yield encode(
                {
                    "msg_id": msg_id,
                    "msg_type": "EG",
                    "sent_at": sent_at,
                    "site_id": subject.site,
                    "record_version": 1,
                    "STUDYID": STUDY_ID,
                    "USUBJID": subject.usubjid,
                    "EGTESTCD": "QTCF",
                    "EGSTRESN": 390 + int(rand() * 70),
                    "EGSTRESU": "ms",
                    "EGDTC": dtc,
                    "EGBLFL": None,
                }
            )


def write_jsonl(path: Path, lines: Iterable[str]) -> int:
    """Write one message per line (UTF-8, LF); returns the number of lines written."""
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as sink:
        for line in lines:
            sink.write(line)
            sink.write("\n")
            count += 1
    return count
