"""Owns the seeded synthetic ALTER-ICI-01 trial: wire-format site messages in arrival order and their manifest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from safety_monitor.demo.anomalies import AnomaliesPart, Manifest


@dataclass(frozen=True, slots=True)
class SyntheticTrial:
    lines: tuple[str, ...]  # JSONL lines in arrival order, malformed ones included
    manifest: Manifest
    first_day: date  # the trial's first day (first enrolment window opens)
    last_day: date  # its last day of data: the natural data cut of a report on it


class TrialBuilder(AnomaliesPart):
    """Plans subjects and AEs, emits each message with send and arrival times, then injects anomalies."""

    def build(self) -> SyntheticTrial:
        self.enrol()
        self.assign_roles()
        self.plan_trial()
        self.emit_subject_status()
        self.emit_adverse_events()
        self.emit_dose_events()
        self.emit_findings()
        self.emit_efficacy()
        self.delay_arrivals()
        manifest = self.inject_anomalies()
        return SyntheticTrial(tuple(item.render() for item in self.out), manifest, self.start, self.last_day)


def generate_trial(
    seed: int = 20260302, subjects: int = 60, start: date = date(2026, 3, 2), days: int = 91
) -> SyntheticTrial:
    """A plausible ALTER-ICI-01 trial as site messages in arrival order: the same seed, the same bytes."""
    return TrialBuilder(seed, subjects, start, days).build()
