"""Builders for wire messages and inbound batches used across the test tiers."""

from __future__ import annotations

import itertools
import json
from typing import Any

from safety_monitor.service.records import InboundMessage, RejectedMessage
from streams.decoding import decode
from streams.embedded import to_service

STUDY = "ALTER-ICI-01"
_ids = itertools.count(1)


def subject_id(n: int, site: str = "012") -> str:
    return f"{STUDY}-{site}-{n:04d}"


def _envelope(msg_type: str, subject: str, version: int, msg_id: str | None) -> dict[str, Any]:
    return {
        "msg_id": msg_id or f"m-{next(_ids):06d}",
        "msg_type": msg_type,
        "sent_at": "2026-05-01T08:00:00+08:00",
        "site_id": subject.split("-")[-2],
        "record_version": version,
        "STUDYID": STUDY,
        "USUBJID": subject,
    }


def ae(
    subject: str = subject_id(7),
    spid: str = "AE-14",
    term: str = "Haemoptysis",
    grade: Any = 3,
    *,
    version: int = 1,
    msg_id: str | None = None,
    soc: str = "Respiratory, thoracic and mediastinal disorders",
    onset: str | None = "2026-04-29",
    **extra: Any,
) -> dict[str, Any]:
    message = _envelope("AE", subject, version, msg_id) | {
        "AESPID": spid,
        "AETERM": "coughing up blood" if term == "Haemoptysis" else term.lower(),
        "AEDECOD": term,
        "AEBODSYS": soc,
        "AETOXGR": grade,
        "AESER": "Y" if isinstance(grade, int) and grade >= 3 else "N",
        "AESHOSP": "N",
        "AESDTH": "N",
        "AESLIFE": "N",
        "AESTDTC": onset,
        "AEENDTC": None,
        "AEOUT": "NOT RECOVERED/NOT RESOLVED",
        "AEREL_ANLOTINIB": "PROBABLE",
        "AEREL_ICI": "UNLIKELY",
        "AEACN_ANLOTINIB": "DRUG INTERRUPTED",
        "AEACN_ICI": "DOSE NOT CHANGED",
        "AEIRAE": "N",
    }
    return message | extra


def vs(
    subject: str = subject_id(7),
    test: str = "SYSBP",
    value: float = 165,
    *,
    at: str = "2026-05-02T09:10",
    msg_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return (
        _envelope("VS", subject, 1, msg_id)
        | {
            "VSTESTCD": test,
            "VSSTRESN": value,
            "VSSTRESU": "mmHg",
            "VSDTC": at,
            "VSBLFL": None,
        }
        | extra
    )


def lb(subject: str = subject_id(7), test: str = "ALT", value: float = 212, **extra: Any) -> dict[str, Any]:
    return (
        _envelope("LB", subject, 1, None)
        | {
            "LBTESTCD": test,
            "LBSTRESN": value,
            "LBSTRESU": "U/L",
            "LBSTNRLO": 7,
            "LBSTNRHI": 40,
            "LBNRIND": "HIGH",
            "LBBLFL": None,
            "LBDTC": "2026-04-30T07:45",
            "VISIT": "C3D1",
            "LBSPEC": "SERUM",
        }
        | extra
    )


def subject_event(
    subject: str = subject_id(7),
    event: str = "FIRST_DOSE",
    on: str = "2026-03-02",
    *,
    drug: str | None = "ANLOTINIB",
    msg_id: str | None = None,
) -> dict[str, Any]:
    return _envelope("SUBJECT", subject, 1, msg_id) | {
        "EVENT": event,
        "EVENTDTC": on,
        "ARM": "ANLOTINIB+ICI",
        "DRUG": drug,
        "REASON": None,
    }


def rs(
    subject: str = subject_id(7),
    response: str = "PR",
    on: str = "2026-04-13",
    *,
    version: int = 1,
    msg_id: str | None = None,
    visit: str | None = "C3D1",
) -> dict[str, Any]:
    """An RS overall response (RECIST 1.1)."""
    return _envelope("RS", subject, version, msg_id) | {
        "RSTESTCD": "OVRLRESP",
        "RSSTRESC": response,
        "RSDTC": on,
        "VISIT": visit,
    }


def enrolled_and_dosed(subject: str, first_dose: str = "2026-03-02") -> list[dict[str, Any]]:
    return [
        subject_event(subject, "ENROLLED", "2026-02-27", drug=None),
        subject_event(subject, "FIRST_DOSE", first_dose),
    ]


def inbound(*messages: dict[str, Any] | str, origin: str = "test") -> list[InboundMessage | RejectedMessage]:
    batch = []
    for index, message in enumerate(messages):
        payload = message if isinstance(message, str) else json.dumps(message)
        batch.append(to_service(decode(payload, f"{origin}:{index + 1}")))
    return batch
