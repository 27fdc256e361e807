"""Owns the subjects of the synthetic trial and their dosing: enrolment, roles, status and dose events."""

from __future__ import annotations

from datetime import date, timedelta

from safety_monitor.demo.plan import AePlan, BuilderBase, Outgoing, PlannedSubject
from safety_monitor.demo.tables import ARM, DRUGS, LABS, SITE_IDS, SITE_WEIGHTS, STUDY_ID


class SubjectsPart(BuilderBase):
    """Enrols subjects at the sites, gives some a role in the trial's story, and sends their SUBJECT events."""

    def enrol(self) -> None:
        rng = self.rng
        window = max(1, int((self.last_day - self.start).days * 0.45))
        offsets = sorted(rng.randrange(window) for _ in range(self.n))
        per_site: dict[str, int] = {}
        for offset in offsets:
            site = rng.choices(SITE_IDS, weights=SITE_WEIGHTS)[0]
            per_site[site] = per_site.get(site, 0) + 1
            enrolled = self.start + timedelta(days=offset)
            lab_base = {
                lab.code: rng.uniform(lab.low + 0.15 * (lab.high - lab.low), lab.high - 0.3 * (lab.high - lab.low))
                for lab in LABS
            }
            self.subjects.append(
                PlannedSubject(
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

    def subject_msg(
        self, subject: PlannedSubject, event: str, day: date, drug: str | None = None, reason: str | None = None
    ) -> Outgoing:
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

    def dose_action(self, plan: AePlan, drug: str, action: str, day: date) -> None:
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
