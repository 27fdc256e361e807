"""Owns what goes wrong on the way in: late arrivals and the deliberately broken messages, with their manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from safety_monitor.demo.plan import AePlan, Outgoing, PlannedSubject
from safety_monitor.demo.tables import LAB_BY_CODE, LABS, SITE_IDS, TERMS, at, dtc, nrind, round_to
from safety_monitor.demo.tumours import TumoursPart


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
    grade_disagreement: tuple[str, str, int, int]  # (USUBJID, AESPID, investigator grade, grade the results show)


class AnomaliesPart(TumoursPart):
    """Delays some arrivals and injects duplicates, a stale follow-up, a conflict, an unknown subject and malformed
    lines; returns the manifest that tells tests where they are."""

    def delay_arrivals(self) -> None:
        """Late arrivals: a site offline ~40 h (flushed on reconnect), some devices and labs slow to sync."""
        rng = self.rng
        outage_site = rng.choice(SITE_IDS)
        outage_start = at(self.start + timedelta(days=(self.last_day - self.start).days // 2), 18, 0)
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

    def pick(self, tag: str, used: set[str], before: datetime) -> Outgoing:
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
        span = self.cutoff - at(self.start, 0, 0)
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
        original = self.pick("LB", used, at(self.start, 0, 0) + span * 0.5)
        assert isinstance(original.payload, dict)
        subject = next(s for s in self.subjects if s.usubjid == original.payload["USUBJID"])
        drawn = at(original.arrival.date() + timedelta(days=rng.randint(3, 10)), 14, rng.randint(0, 59))
        sent_at = drawn + timedelta(hours=3, seconds=rng.randint(0, 3599))
        alt = LAB_BY_CODE["ALT"]
        value = round_to(subject.lab_base["ALT"], 0)
        conflict = dict(original.payload)
        conflict |= {
            "sent_at": sent_at.isoformat(),
            "LBTESTCD": "ALT",
            "LBSTRESN": value,
            "LBSTRESU": alt.unit,
            "LBSTNRLO": alt.low,
            "LBSTNRHI": alt.high,
            "LBNRIND": nrind(alt, value),
            "LBBLFL": None,
            "LBDTC": dtc(drawn),
            "VISIT": "UNSCHEDULED",
            "LBSPEC": alt.specimen,
        }
        self.emit(conflict, sent_at, subject.site, "conflict", original.msg_id)

        # An AE for a subject nobody enrolled: must still alert at once.
        site = self.unknown_usubjid.split("-")[-2]
        ghost = PlannedSubject(self.unknown_usubjid, site, self.start, self.start, self.last_day, 120, 75, 410, {})
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
        malformed: list[Outgoing] = []
        for kind, moment in zip(("torn", "grade6", "no-subject", "bad-date", "bad-type"), moments, strict=True):
            subject = rng.choice(regulars)
            day = min(moment.date(), subject.last_visit)
            if kind == "torn":
                lab = rng.choice(LABS)
                payload = self.envelope("LB", moment, subject.site, subject.usubjid)
                payload |= {
                    "LBTESTCD": lab.code,
                    "LBSTRESN": round_to(subject.lab_base[lab.code], lab.decimals),
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
                plan = AePlan(subject, subject.spid(), TERMS[decod], decod.lower(), 1, onset, None, kind=kind)
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
        disagreement = next(p for p in self.plans if p.kind == "disagreement")
        assert disagreement.value_grade is not None
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
            grade_disagreement=(disagreement.subject.usubjid, disagreement.spid, 1, disagreement.value_grade),
        )
