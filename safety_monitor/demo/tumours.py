"""Owns the synthetic trial's efficacy follow-up: randomisation, RECIST tumour assessments, progression, survival
follow-up contacts and a death from progressive disease after treatment ended."""

from __future__ import annotations

import random
from datetime import date, timedelta

from safety_monitor.demo.findings import FindingsPart
from safety_monitor.demo.plan import PlannedSubject
from safety_monitor.demo.tables import ARM, at

ASSESSMENT_EVERY = 42  # RECIST 1.1 scans every 6 weeks from the first dose (the protocol's schedule)
# Best response of subjects without a role in the story, roughly as anlotinib plus a PD-1 inhibitor in advanced
# NSCLC (ORR about 30-40 %, disease control about 80 %).
_COURSES = (("PR", 0.36), ("SD", 0.46), ("PD", 0.18))


class TumoursPart(FindingsPart):
    """Sends RANDOMIZED, RS overall responses, PROGRESSED, ALIVE and a late DIED, drawn from their own random stream so
    that adding them left every earlier message of the trial as it was."""

    late_death: PlannedSubject | None = None  # the subject who dies of progressive disease in follow-up

    def efficacy_rng(self) -> random.Random:
        return random.Random(f"efficacy:{self.seed}")  # noqa: S311 -- reproducible synthetic data

    def send(
        self, rng: random.Random, subject: PlannedSubject, day: date, payload: dict[str, object], tag: str
    ) -> None:
        sent_at = at(day, rng.randint(9, 17), rng.randint(0, 59), rng.randint(0, 59))
        envelope = self.envelope(str(payload.pop("msg_type")), sent_at, subject.site, subject.usubjid)
        self.emit(envelope | payload, sent_at, subject.site, tag)

    def event(
        self, rng: random.Random, subject: PlannedSubject, kind: str, day: date, reason: str | None = None
    ) -> None:
        payload: dict[str, object] = {"msg_type": "SUBJECT", "EVENT": kind, "EVENTDTC": day.isoformat(), "ARM": ARM}
        payload |= {"DRUG": None, "REASON": reason}
        self.send(rng, subject, day, payload, f"SUBJECT:{kind}")

    def assessment(
        self, rng: random.Random, subject: PlannedSubject, day: date, response: str, visit: str, *, dtc: str = ""
    ) -> dict[str, object]:
        payload: dict[str, object] = {"msg_type": "RS", "RSTESTCD": "OVRLRESP", "RSSTRESC": response}
        payload |= {"RSDTC": dtc or day.isoformat(), "VISIT": visit}
        read = min(day + timedelta(days=rng.randint(1, 4)), self.last_day)
        self.send(rng, subject, read, dict(payload), "RS")
        return payload

    def emit_efficacy(self) -> None:
        rng = self.efficacy_rng()
        partial_done = corrected_done = False
        progressing = [s for s in self.subjects if s.role.startswith("progression-")]
        self.late_death = min(progressing, key=lambda s: (s.last_visit, s.usubjid)) if progressing else None
        for subject in self.subjects:
            randomised = min(subject.enrolled + timedelta(days=rng.randint(0, 1)), subject.first_dose)
            self.event(rng, subject, "RANDOMIZED", randomised)
            days = []
            k = 1
            while (
                day := subject.first_dose + timedelta(days=ASSESSMENT_EVERY * k + rng.randint(-3, 3))
            ) <= subject.last_visit:
                days.append(day)
                k += 1
            progresses = subject.role.startswith("progression-")
            if progresses:
                days = [d for d in days if d < subject.last_visit] + [subject.last_visit]
            course = rng.choices([c for c, _ in _COURSES], weights=[w for _, w in _COURSES])[0]
            pd_at = len(days) - 1 if progresses or course == "PD" else None
            for index, day in enumerate(days):
                visit = f"WEEK {6 * (index + 1)}"
                if pd_at is not None and index == pd_at:
                    response = "PD"
                elif course == "PR" and index > 0 and rng.random() < 0.15:
                    response = "CR"
                elif course == "PR":
                    response = "PR"
                else:
                    response = "SD"
                if response != "PD" and rng.random() < 0.05:
                    response = "NE"  # a scan that could not be read
                if not partial_done and response == "SD" and not subject.role:
                    # An assessment whose date the site knows to the month only: it never counts for PFS or ORR.
                    self.assessment(rng, subject, day, response, visit, dtc=day.isoformat()[:7])
                    partial_done = True
                    continue
                first = self.assessment(rng, subject, day, response, visit)
                if not corrected_done and response == "PR" and not subject.role:
                    # Central review upgrades the site's first read: version 2 of the same record replaces it.
                    second = first | {"RSSTRESC": "CR"}
                    self.send_version(rng, subject, day + timedelta(days=7), second)
                    corrected_done = True
                if response == "PD":
                    self.event(rng, subject, "PROGRESSED", day)
            if progresses:
                self.follow_up(rng, subject)

    def send_version(self, rng: random.Random, subject: PlannedSubject, day: date, payload: dict[str, object]) -> None:
        sent_at = at(min(day, self.last_day), rng.randint(9, 17), rng.randint(0, 59))
        envelope = self.envelope("RS", sent_at, subject.site, subject.usubjid, version=2)
        body = {k: v for k, v in payload.items() if k != "msg_type"}
        self.emit(envelope | body, sent_at, subject.site, "RS")

    def follow_up(self, rng: random.Random, subject: PlannedSubject) -> None:
        """Survival follow-up after discontinuation for progression: a contact, and for one subject a death from
        progressive disease (no AE: disease progression is not an adverse event in oncology trials)."""
        contact = subject.last_visit + timedelta(days=rng.randint(7, 14))
        if contact <= self.last_day:
            self.event(rng, subject, "ALIVE", contact)
        if subject is self.late_death:
            died = contact + timedelta(days=rng.randint(3, 7))
            if died <= self.last_day:
                self.event(rng, subject, "DIED", died, "PROGRESSIVE DISEASE")
