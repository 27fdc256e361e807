"""Owns the demo's synthetic data: a seeded ALTER-ICI-01 trial (subjects and dosing, AEs, labs and vitals, tumour
assessments and survival, deliberately broken messages) and the benchmark load. Writes wire-format JSON only."""

from safety_monitor.demo.anomalies import Manifest
from safety_monitor.demo.load import generate_load, write_jsonl
from safety_monitor.demo.tables import ENVELOPE_KEYS, MSG_TYPES, SITE_IDS, STUDY_ID
from safety_monitor.demo.trial import SyntheticTrial, generate_trial

__all__ = [
    "ENVELOPE_KEYS",
    "MSG_TYPES",
    "SITE_IDS",
    "STUDY_ID",
    "Manifest",
    "SyntheticTrial",
    "generate_load",
    "generate_trial",
    "write_jsonl",
]
