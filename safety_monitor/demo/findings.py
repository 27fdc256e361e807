"""Owns the synthetic trial's findings: labs each cycle, blood pressure (clinic and home), ECGs."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from safety_monitor.demo.adverse_events import AdverseEventsPart
from safety_monitor.demo.plan import AePlan, PlannedSubject
from safety_monitor.demo.tables import LABS, LabTest, at, dtc, nrind, round_to


class FindingsPart(AdverseEventsPart):
    """Sends the LB, VS and EG results that go with each subject's visits and AEs."""

    def visits(self, subject: PlannedSubject) -> list[tuple[str, date]]:
        visits = [("SCREENING", subject.enrolled)]
        cycle = 2
        while (day := subject.first_dose + timedelta(days=21 * (cycle - 1))) <= subject.last_visit:
            visits.append((f"C{cycle}D1", day))
            cycle += 1
        return visits

    def active(self, subject: PlannedSubject, decod: str, day: date) -> AePlan | None:
        for plan in subject.aes:
            if plan.term.decod == decod and plan.onset <= day and (plan.end is None or day <= plan.end):
                return plan
        return None

    def lab_value(self, subject: PlannedSubject, lab: LabTest, day: date) -> float:
        rng = self.rng
        value = subject.lab_base[lab.code] * rng.uniform(0.9, 1.1)
        if lab.code in ("ALT", "AST") and (plan := self.active(subject, "Alanine aminotransferase increased", day)):
            shown = plan.value_grade or plan.grade
            x_uln = rng.uniform(1.3, 2.8) if shown == 1 else rng.uniform(3.2, 4.8)
            value = lab.high * (x_uln if lab.code == "ALT" else x_uln * 0.6)
        elif lab.code in ("TSH", "FT4"):
            if self.active(subject, "Hypothyroidism", day):
                value = rng.uniform(10.0, 25.0) if lab.code == "TSH" else rng.uniform(8.0, 11.5)
            elif self.active(subject, "Blood thyroid stimulating hormone increased", day) and lab.code == "TSH":
                value = rng.uniform(4.6, 9.5)
        return value

    def emit_labs(self, subject: PlannedSubject, visit: str, day: date) -> None:
        rng = self.rng
        collected = at(day, rng.randint(7, 9), rng.randint(0, 59))
        sent_at = collected + timedelta(hours=rng.randint(2, 7), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
        for lab in LABS:
            value = round_to(self.lab_value(subject, lab, day), lab.decimals)
            payload = self.envelope("LB", sent_at, subject.site, subject.usubjid)
            payload |= {
                "LBTESTCD": lab.code,
                "LBSTRESN": value,
                "LBSTRESU": lab.unit,
                "LBSTNRLO": lab.low,
                "LBSTNRHI": lab.high,
                "LBNRIND": nrind(lab, value),
                "LBBLFL": "Y" if visit == "SCREENING" else None,
                "LBDTC": dtc(collected),
                "VISIT": visit,
                "LBSPEC": lab.specimen,
            }
            self.emit(payload, sent_at, subject.site, "LB")

    def blood_pressure(self, subject: PlannedSubject, day: date) -> tuple[int, int]:
        rng = self.rng
        plan = self.active(subject, "Hypertension", day)
        if plan is None:
            return min(138, subject.sbp0 + rng.randint(-6, 8)), min(88, subject.dbp0 + rng.randint(-4, 6))
        if plan.grade == 1:
            return rng.randint(130, 139), rng.randint(80, 89)
        if plan.grade == 2 or (day - plan.onset).days > 14:  # grade 3 is controlled after two weeks
            return rng.randint(140, 156), rng.randint(88, 98)
        return rng.randint(160, 178), rng.randint(100, 110)

    def emit_bp(self, subject: PlannedSubject, measured: datetime, baseline: bool) -> None:
        rng = self.rng
        while (subject.usubjid, dtc(measured)) in self.vs_times:
            measured += timedelta(minutes=1)
        self.vs_times.add((subject.usubjid, dtc(measured)))
        sent_at = measured + timedelta(minutes=rng.randint(1, 30), seconds=rng.randint(0, 59))
        sbp, dbp = self.blood_pressure(subject, measured.date())
        for code, value in (("SYSBP", sbp), ("DIABP", dbp)):
            payload = self.envelope("VS", sent_at, subject.site, subject.usubjid)
            payload |= {
                "VSTESTCD": code,
                "VSSTRESN": value,
                "VSSTRESU": "mmHg",
                "VSDTC": dtc(measured),
                "VSBLFL": "Y" if baseline else None,
            }
            self.emit(payload, sent_at, subject.site, "VS")

    def emit_ecg(self, subject: PlannedSubject, day: date, baseline: bool) -> None:
        rng = self.rng
        recorded = at(day, rng.randint(9, 11), rng.randint(0, 59))
        sent_at = recorded + timedelta(hours=rng.randint(1, 4), seconds=rng.randint(0, 3599))
        value = subject.qtcf0 if baseline else subject.qtcf0 + rng.randint(-5, 22)
        payload = self.envelope("EG", sent_at, subject.site, subject.usubjid)
        payload |= {
            "EGTESTCD": "QTCF",
            "EGSTRESN": value,
            "EGSTRESU": "ms",
            "EGDTC": dtc(recorded),
            "EGBLFL": "Y" if baseline else None,
        }
        self.emit(payload, sent_at, subject.site, "EG")

    def emit_findings(self) -> None:
        rng = self.rng
        for subject in self.subjects:
            for visit, day in self.visits(subject):
                baseline = visit == "SCREENING"
                self.emit_labs(subject, visit, day)
                self.emit_bp(subject, at(day, rng.randint(8, 10), rng.randint(0, 59)), baseline)
                if visit in ("SCREENING", "C2D1"):
                    self.emit_ecg(subject, day, baseline)
            week = 1
            while (day := subject.first_dose + timedelta(days=7 * week)) <= subject.last_visit:
                self.emit_bp(subject, at(day, rng.randint(6, 8), rng.randint(0, 59)), False)  # home monitor
                week += 1
            for plan in subject.aes:
                if plan.term.decod == "Hypertension" and plan.grade >= 3:
                    self.emit_bp(subject, at(plan.onset, rng.randint(19, 21), rng.randint(0, 59)), False)
                    next_day = plan.onset + timedelta(days=1)
                    self.emit_bp(subject, at(next_day, rng.randint(6, 7), rng.randint(0, 59)), False)
