"""Owns the synthetic trial's clinical tables: study constants, AE terms with their clinical profile, lab tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

STUDY_ID = "ALTER-ICI-01"
ARM = "ANLOTINIB+ICI"
DRUGS = ("ANLOTINIB", "ICI")
SITE_IDS = ("001", "002", "003", "004", "005", "006")
SITE_TZ = timezone(timedelta(hours=8))  # sites are in China
MSG_TYPES = ("AE", "LB", "VS", "EG", "SUBJECT", "RS")
ENVELOPE_KEYS = ("msg_id", "msg_type", "sent_at", "site_id", "record_version", "STUDYID", "USUBJID")

# Stable namespace for msg_ids: uuid5(namespace, "<stream>:<seed>:<n>") is the same on every run.
MSG_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:safety-monitor:synthetic-trial")
SITE_WEIGHTS = (1.6, 1.3, 1.0, 1.0, 0.7, 0.4)  # some sites recruit faster than others
MIN_SUBJECTS = 20
MIN_DAYS = 60

Payload = dict[str, object]

RESP = "Respiratory, thoracic and mediastinal disorders"
REL_STRONG = ("PROBABLE", "RELATED")
REL_MAYBE = ("POSSIBLE", "PROBABLE")
REL_WEAK = ("NOT RELATED", "UNLIKELY")


@dataclass(frozen=True, slots=True)
class Term:
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


TERMS: dict[str, Term] = {
    t.decod: t
    for t in (
        Term(
            "Hypertension",
            "Vascular disorders",
            ("hypertension", "high blood pressure", "elevated BP", "blood pressure increased"),
            REL_STRONG,
            REL_WEAK,
            "ANLOTINIB",
            ("N",),
            duration=(14, 45),
        ),
        Term(
            "Palmar-plantar erythrodysaesthesia syndrome",
            "Skin and subcutaneous tissue disorders",
            ("hand-foot skin reaction", "hand foot syndrome", "HFSR", "palmar-plantar erythrodysesthesia"),
            REL_STRONG,
            ("NOT RELATED", "UNLIKELY"),
            "ANLOTINIB",
            ("N",),
            days_to_onset=(10, 40),
            duration=(14, 45),
        ),
        Term(
            "Haemoptysis",
            RESP,
            ("haemoptysis", "hemoptysis", "coughing up blood"),
            REL_MAYBE,
            REL_WEAK,
            "ANLOTINIB",
            ("N",),
            mild_verbatims=("blood-streaked sputum",),
            serious_from=3,
            days_to_onset=(14, 45),
            duration=(3, 12),
        ),
        Term(
            "Pulmonary haemorrhage",
            RESP,
            ("massive haemoptysis", "pulmonary haemorrhage"),
            REL_MAYBE,
            REL_WEAK,
            "ANLOTINIB",
            ("N",),
            serious_from=3,
        ),
        Term(
            "Pneumonitis",
            RESP,
            (
                "pneumonitis",
                "immune-related pneumonitis",
                "checkpoint inhibitor pneumonitis",
                "interstitial pneumonia",
            ),
            ("UNLIKELY", "POSSIBLE"),
            REL_STRONG,
            "ICI",
            ("Y", None),
            serious_from=3,
            days_to_onset=(35, 60),
            duration=(14, 35),
        ),
        Term(
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
        Term(
            "Colitis",
            "Gastrointestinal disorders",
            ("colitis", "immune-related colitis"),
            ("UNLIKELY",),
            REL_STRONG,
            "ICI",
            ("Y", None),
            serious_from=3,
            days_to_onset=(30, 55),
            duration=(10, 25),
        ),
        Term(
            "Fatigue",
            "General disorders and administration site conditions",
            ("fatigue", "tiredness", "feeling tired"),
            ("POSSIBLE",),
            ("POSSIBLE",),
            "",
            ("N",),
            duration=(7, 30),
        ),
        Term(
            "Proteinuria",
            "Renal and urinary disorders",
            ("proteinuria", "protein in urine", "urine protein 2+"),
            REL_STRONG,
            REL_WEAK,
            "ANLOTINIB",
            ("N",),
            days_to_onset=(21, 60),
            duration=(14, 40),
        ),
        Term(
            "Hypothyroidism",
            "Endocrine disorders",
            ("hypothyroidism", "hypothyroid"),
            ("POSSIBLE",),
            REL_STRONG,
            "",
            ("Y", None),
            days_to_onset=(35, 60),
            duration=(60, 120),
        ),
        Term(
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
        Term(
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
        Term(
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
        Term(
            "Gingival bleeding",
            "Gastrointestinal disorders",
            ("bleeding gums",),
            ("POSSIBLE",),
            ("UNLIKELY",),
            "",
            ("N",),
            duration=(2, 7),
        ),
        Term(
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
BACKGROUND_AES: tuple[tuple[str, float, tuple[float, float, float]], ...] = (
    ("Palmar-plantar erythrodysaesthesia syndrome", 0.40, (0.55, 0.35, 0.10)),
    ("Diarrhoea", 0.25, (0.70, 0.25, 0.05)),
    ("Fatigue", 0.30, (0.65, 0.35, 0.0)),
    ("Proteinuria", 0.25, (0.65, 0.30, 0.05)),
    ("Decreased appetite", 0.20, (0.70, 0.30, 0.0)),
    ("Alanine aminotransferase increased", 0.10, (0.70, 0.30, 0.0)),
)


@dataclass(frozen=True, slots=True)
class LabTest:
    code: str
    unit: str
    low: float
    high: float
    specimen: str
    decimals: int


LABS = (
    LabTest("ALT", "U/L", 7, 40, "SERUM", 0),
    LabTest("AST", "U/L", 13, 35, "SERUM", 0),
    LabTest("BILI", "umol/L", 3.4, 20.5, "SERUM", 1),
    LabTest("ALP", "U/L", 35, 100, "SERUM", 0),
    LabTest("PLAT", "10^9/L", 125, 350, "BLOOD", 0),
    LabTest("TSH", "mU/L", 0.27, 4.2, "SERUM", 2),
    LabTest("FT4", "pmol/L", 12.0, 22.0, "SERUM", 1),
)
LAB_BY_CODE = {lab.code: lab for lab in LABS}


def round_to(value: float, decimals: int) -> float | int:
    return round(value) if decimals == 0 else round(value, decimals)


def nrind(lab: LabTest, value: float) -> str:
    if value < lab.low:
        return "LOW"
    if value > lab.high:
        return "HIGH"
    return "NORMAL"


def at(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SITE_TZ)


def dtc(moment: datetime) -> str:
    """SDTM --DTC to the minute, local site time ("2026-04-30T07:45")."""
    return moment.strftime("%Y-%m-%dT%H:%M")
