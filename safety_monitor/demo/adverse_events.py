"""Owns the synthetic trial's adverse events: the plan (signals, deaths, background toxicity) and the versions sent."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta

from safety_monitor.demo.plan import AePlan, Outgoing, PlannedSubject
from safety_monitor.demo.subjects import SubjectsPart
from safety_monitor.demo.tables import BACKGROUND_AES, TERMS, Payload, Term


class AdverseEventsPart(SubjectsPart):
    """Plans each subject's AEs and sends every version of them as a site would."""

    def onset(self, subject: PlannedSubject, lo: int, hi: int, *, days: int | None = None) -> date | None:
        """Onset `days` (or uniform lo..hi) after first dose, kept inside the subject's follow-up."""
        latest = (subject.last_visit - subject.first_dose).days - 2
        if latest < 1:
            return None
        offset = days if days is not None else self.rng.randint(lo, hi)
        return subject.first_dose + timedelta(days=max(1, min(offset, latest)))

    def plan_ae(
        self,
        subject: PlannedSubject,
        decod: str,
        grade: int,
        onset: date,
        *,
        kind: str = "generic",
        verbatim: str | None = None,
        end: date | None = None,
        resolves: bool = True,
    ) -> AePlan:
        rng = self.rng
        term = TERMS[decod]
        if end is None and resolves and grade < 5:
            end = onset + timedelta(days=rng.randint(*term.duration))
            if end > subject.last_visit:
                end = None
        plan = AePlan(
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

    def plan_disagreement(self) -> None:
        """An ALT increase the site grades 1 while the results drawn during it are 3-5 x ULN (CTCAE v5 grade 2, for a
        normal baseline): the value-derived grade disagrees with the investigator's, as `grades disagreements`
        shows. On its own random stream, after every other plan."""
        rng = random.Random(f"disagreement:{self.seed}")  # noqa: S311 -- reproducible synthetic data
        term = TERMS["Alanine aminotransferase increased"]
        for subject in sorted(self.subjects, key=lambda s: s.usubjid):
            visit = subject.first_dose + timedelta(days=42)  # C3D1: labs are drawn that day
            taken = any(p.term.decod == term.decod for p in subject.aes)
            if subject.role or taken or visit + timedelta(days=8) > subject.last_visit:
                continue
            onset, end = visit - timedelta(days=rng.randint(1, 3)), visit + timedelta(days=rng.randint(5, 8))
            plan = AePlan(subject, subject.spid(), term, "elevated ALT", 1, onset, end, kind="disagreement")
            plan.irae, plan.rel_anlotinib, plan.rel_ici, plan.value_grade = "N", "POSSIBLE", "POSSIBLE", 2
            plan.acn_anlotinib = plan.acn_ici = "DOSE NOT CHANGED"
            self.plans.append(plan)
            subject.aes.append(plan)
            return

    def actions(self, term: Term, grade: int) -> tuple[str, str]:
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
                # The hostile verbatim sits on a serious grade 3 haemoptysis: alerted at once, in the alert mails, the
                # digest's alert changes and the DSMB report's serious AEs, escaped everywhere.
                onset = self.onset(subject, 10, 30)
                assert onset is not None
                verbatim = "<script>alert('x')</script> coughing up blood"
                plan = self.plan_ae(subject, "Haemoptysis", 3, onset, kind="html", verbatim=verbatim)
                plan.acn_anlotinib = "DRUG WITHDRAWN"
            elif role == "partial":  # onset in the trial's second month, known to the month only
                second_month = (self.start.replace(day=1) + timedelta(days=32)).replace(day=1)
                target = second_month + timedelta(days=rng.randint(2, 20))
                onset = self.onset(subject, 0, 0, days=(target - subject.first_dose).days)
                assert onset is not None
                plan = self.plan_ae(subject, "Decreased appetite", 1, onset, kind="partial")
                plan.partial_onset = True
                background_excluded.setdefault("Decreased appetite", set()).add(subject.usubjid)

        # Background toxicity.
        for decod, fraction, weights in BACKGROUND_AES:
            term = TERMS[decod]
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
            onset = self.onset(subject, *TERMS[decod].days_to_onset)
            if onset is not None:
                self.plan_ae(subject, decod, 2 if i < n_hypo else 1, onset)
        if self.n >= 40:
            subject = rng.choice([s for s in self.subjects if not s.role])
            onset = self.onset(subject, 30, 55)
            if onset is not None:
                plan = self.plan_ae(subject, "Colitis", 2, onset)
                plan.acn_ici = "DRUG INTERRUPTED"
        self.plan_disagreement()
        for subject in self.subjects:  # sites number AEs in the order they are recorded
            subject.aes.sort(key=lambda p: (p.onset, p.term.decod))
            for number, plan in enumerate(subject.aes, 1):
                plan.spid = f"AE-{number}"
            subject.next_spid = len(subject.aes) + 1

    def ae_payload(self, plan: AePlan, version: int, sent_at: datetime, **changes: object) -> Payload:
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

    def emit_ae(self, plan: AePlan, version: int, day: date, tag: str, **changes: object) -> Outgoing:
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
