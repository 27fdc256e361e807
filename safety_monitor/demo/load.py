"""Owns the benchmark load: many subjects' valid site messages, generated fast, and writing JSONL files."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from safety_monitor.demo.tables import ARM, LABS, MSG_NAMESPACE, SITE_IDS, STUDY_ID, TERMS, Payload

_LOAD_SUBJECT_EVERY = 200  # messages per newly enrolled subject
_LOAD_ACTIVE = 40  # subjects reporting at any time
_LOAD_TERMS = tuple(
    TERMS[decod]
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
    stem = uuid.uuid5(MSG_NAMESPACE, f"load:{seed}").hex
    # A valid UUID string per message (version and variant from `stem`): unique within the stream, and across
    # seeds as far as uuid5 is; far cheaper than a uuid5 per message.
    id_prefix = f"{stem[:8]}-{stem[8:12]}-{stem[12:16]}-{stem[16:20]}-"
    first_day = date(2026, 3, 2)
    days: list[str] = []
    seconds = 0
    active: list[_LoadSubject] = []
    per_site: dict[str, int] = dict.fromkeys(SITE_IDS, 0)
    labs = LABS
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
