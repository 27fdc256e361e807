"""Owns the wire format sites publish: pydantic v2 schemas per message type, decoding to domain messages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from safety_monitor.domain.dates import InvalidDate, PartialDate
from safety_monitor.domain.messages import (
    AdverseEvent,
    Envelope,
    Finding,
    MessageType,
    OverallResponse,
    SiteMessage,
    SubjectEvent,
    SubjectEventKind,
    TumourResponse,
)


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _sdtm_date(value: str) -> str:
    try:
        PartialDate.parse(value)
    except InvalidDate as exc:
        raise ValueError(str(exc)) from None
    return value.strip()


def _ctcae_grade(value: object) -> object:
    # Sites send AETOXGR as 3 or "3"; CTCAE grades run 1-5 (grade 5 = death related to the AE).
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"AETOXGR must be a CTCAE grade 1-5 (a whole number), got {value!r}")
    if not 1 <= value <= 5:
        raise ValueError(f"grade {value} is impossible: CTCAE grades run 1-5")
    return value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=400)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
MsgId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._:\-]{1,128}$")]
SdtmDate = Annotated[str, AfterValidator(_sdtm_date)]
NoYes = Annotated[Literal["Y", "N", "U"], BeforeValidator(_upper)]
Grade = Annotated[int, BeforeValidator(_ctcae_grade)]
Upper = Annotated[str, BeforeValidator(_upper), StringConstraints(min_length=1, max_length=64)]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    msg_id: MsgId = Field(description="Globally unique message id (a UUID); the dedupe key.")
    sent_at: AwareDatetime = Field(description="When the site system sent the message, with a UTC offset.")
    site_id: Code
    record_version: int = Field(ge=1, description="Follow-ups of the same record carry a higher version.")
    STUDYID: Code
    USUBJID: Code

    def _envelope(self, msg_type: MessageType) -> Envelope:
        return Envelope(
            msg_id=self.msg_id,
            msg_type=msg_type,
            sent_at=self.sent_at,
            site_id=self.site_id,
            record_version=self.record_version,
            study_id=self.STUDYID,
            subject_id=self.USUBJID,
        )


def _date_or_none(text: str | None) -> PartialDate | None:
    return PartialDate.parse(text) if text is not None else None


class AeMessage(_Envelope):
    """An adverse event (SDTM AE) with per-drug causality and action for anlotinib and the checkpoint inhibitor."""

    msg_type: Literal["AE"]
    AESPID: Code = Field(description="Sponsor-defined AE record id: the key that links follow-ups.")
    AETERM: Text = Field(description="Verbatim term as reported (free text).")
    AEDECOD: Text = Field(description="MedDRA preferred term.")
    AEBODSYS: Text = Field(description="MedDRA system organ class.")
    AETOXGR: Grade = Field(description='Investigator CTCAE grade, 1-5 (3 or "3").')
    AESER: NoYes | None = None
    AESDTH: NoYes | None = None
    AESLIFE: NoYes | None = None
    AESHOSP: NoYes | None = None
    AESTDTC: SdtmDate | None = Field(default=None, description="Onset date, ISO 8601, may be partial.")
    AEENDTC: SdtmDate | None = None
    AEOUT: Upper | None = None
    AEREL_ANLOTINIB: Upper | None = None
    AEREL_ICI: Upper | None = None
    AEACN_ANLOTINIB: Upper | None = None
    AEACN_ICI: Upper | None = None
    AEIRAE: NoYes | None = Field(default=None, description="Immune-related; null = not yet attributed.")

    def to_domain(self) -> AdverseEvent:
        return AdverseEvent(
            envelope=self._envelope(MessageType.AE),
            ae_spid=self.AESPID,
            verbatim_term=self.AETERM,
            preferred_term=self.AEDECOD,
            system_organ_class=self.AEBODSYS,
            investigator_grade=self.AETOXGR,
            serious=self.AESER,
            death=self.AESDTH,
            life_threatening=self.AESLIFE,
            hospitalisation=self.AESHOSP,
            onset_date=_date_or_none(self.AESTDTC),
            end_date=_date_or_none(self.AEENDTC),
            outcome=self.AEOUT,
            causality_anlotinib=self.AEREL_ANLOTINIB,
            causality_ici=self.AEREL_ICI,
            action_anlotinib=self.AEACN_ANLOTINIB,
            action_ici=self.AEACN_ICI,
            immune_related=self.AEIRAE,
        )


class LbMessage(_Envelope):
    """A laboratory result (SDTM LB) in standard units with the lab's normal range."""

    msg_type: Literal["LB"]
    LBTESTCD: Upper
    LBSTRESN: float | None = Field(description="Numeric result in standard units; null when not numeric.")
    LBSTRESU: Code | None = None
    LBSTNRLO: float | None = None
    LBSTNRHI: float | None = None
    LBNRIND: Upper | None = None
    LBBLFL: Literal["Y"] | None = None
    LBDTC: SdtmDate
    VISIT: Code | None = None
    LBSPEC: Upper | None = None

    def to_domain(self) -> Finding:
        return Finding(
            envelope=self._envelope(MessageType.LB),
            test_code=self.LBTESTCD,
            value=self.LBSTRESN,
            unit=self.LBSTRESU,
            collected_at=PartialDate.parse(self.LBDTC),
            baseline_flag=self.LBBLFL == "Y",
            lln=self.LBSTNRLO,
            uln=self.LBSTNRHI,
            normal_range_indicator=self.LBNRIND,
            visit=self.VISIT,
            specimen=self.LBSPEC,
        )


class VsMessage(_Envelope):
    """A vital sign (SDTM VS); SBP and DBP of one measurement are two messages sharing USUBJID + VSDTC."""

    msg_type: Literal["VS"]
    VSTESTCD: Upper
    VSSTRESN: float | None
    VSSTRESU: Code | None = None
    VSDTC: SdtmDate
    VSBLFL: Literal["Y"] | None = None
    VISIT: Code | None = None

    def to_domain(self) -> Finding:
        return Finding(
            envelope=self._envelope(MessageType.VS),
            test_code=self.VSTESTCD,
            value=self.VSSTRESN,
            unit=self.VSSTRESU,
            collected_at=PartialDate.parse(self.VSDTC),
            baseline_flag=self.VSBLFL == "Y",
            visit=self.VISIT,
        )


class EgMessage(_Envelope):
    """An ECG result (SDTM EG), e.g. QTcF in ms."""

    msg_type: Literal["EG"]
    EGTESTCD: Upper
    EGSTRESN: float | None
    EGSTRESU: Code | None = None
    EGDTC: SdtmDate
    EGBLFL: Literal["Y"] | None = None
    VISIT: Code | None = None

    def to_domain(self) -> Finding:
        return Finding(
            envelope=self._envelope(MessageType.EG),
            test_code=self.EGTESTCD,
            value=self.EGSTRESN,
            unit=self.EGSTRESU,
            collected_at=PartialDate.parse(self.EGDTC),
            baseline_flag=self.EGBLFL == "Y",
            visit=self.VISIT,
        )


class SubjectMessage(_Envelope):
    """A subject status event: enrolment, dosing, discontinuation, death (denominators for incidence)."""

    msg_type: Literal["SUBJECT"]
    EVENT: Literal[
        "ENROLLED",
        "FIRST_DOSE",
        "DOSE_INTERRUPTED",
        "DOSE_RESUMED",
        "DISCONTINUED",
        "DIED",
        "COMPLETED",
        "RANDOMIZED",
        "PROGRESSED",
        "ALIVE",
    ] = Field(
        description="RANDOMIZED: the time origin of PFS and OS; PROGRESSED: documented progression on EVENTDTC; "
        "ALIVE: survival follow-up, known alive on EVENTDTC."
    )
    EVENTDTC: SdtmDate
    ARM: Text | None = None
    DRUG: Literal["ANLOTINIB", "ICI"] | None = None
    REASON: Text | None = None

    def to_domain(self) -> SubjectEvent:
        return SubjectEvent(
            envelope=self._envelope(MessageType.SUBJECT),
            event=SubjectEventKind(self.EVENT),
            event_date=PartialDate.parse(self.EVENTDTC),
            arm=self.ARM,
            drug=self.DRUG,
            reason=self.REASON,
        )


class RsMessage(_Envelope):
    """A tumour response assessment (SDTM RS): the RECIST 1.1 overall response at one time point."""

    msg_type: Literal["RS"]
    RSTESTCD: Literal["OVRLRESP"] = Field(description="OVRLRESP: overall response (RECIST 1.1).")
    RSSTRESC: Annotated[Literal["CR", "PR", "SD", "PD", "NE", "NON-CR/NON-PD"], BeforeValidator(_upper)] = Field(
        description="CR, PR, SD, PD, NE or NON-CR/NON-PD."
    )
    RSDTC: SdtmDate = Field(description="Assessment date, ISO 8601; only complete dates count for PFS and ORR.")
    VISIT: Code | None = None

    def to_domain(self) -> TumourResponse:
        return TumourResponse(
            envelope=self._envelope(MessageType.RS),
            test_code=self.RSTESTCD,
            response=OverallResponse(self.RSSTRESC),
            assessed_on=PartialDate.parse(self.RSDTC),
            visit=self.VISIT,
        )


WireMessage = Annotated[
    AeMessage | LbMessage | VsMessage | EgMessage | SubjectMessage | RsMessage, Discriminator("msg_type")
]
_ADAPTER: TypeAdapter[WireMessage] = TypeAdapter(WireMessage)
_MODELS: dict[str, type[_Envelope]] = {
    "AE": AeMessage,
    "LB": LbMessage,
    "VS": VsMessage,
    "EG": EgMessage,
    "SUBJECT": SubjectMessage,
    "RS": RsMessage,
}


@dataclass(frozen=True, slots=True)
class Decoded:
    """A valid message: the domain fact plus what the inbox keeps to recognise duplicates and conflicts."""

    message: SiteMessage
    content_hash: str
    payload: str
    origin: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that could not be decoded or failed validation; bound for the dead-letter store."""

    msg_id: str | None
    reason: str
    payload: str
    origin: str


def content_hash(payload: str) -> str:
    """Hash of the message as received. Two payloads with different hashes may still hold the same document
    (other key order or spacing): the inbox then compares them as documents before calling it a conflict."""
    return hashlib.sha256(payload.encode("utf-8", "surrogateescape")).hexdigest()


def _describe(error: ValidationError, msg_id: str | None, msg_type: object) -> str:
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(p) for p in item["loc"] if p != msg_type) or "message"
        text = item["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {text}")
    who = f"message {msg_id}" if msg_id else "message without msg_id"
    return f"{who} ({msg_type or 'no msg_type'}): " + "; ".join(parts)


def decode(payload: str, origin: str) -> Decoded | Rejected:
    """Decode one wire message; never raises for bad input, which comes back as `Rejected` with a reason."""
    try:
        model = _ADAPTER.validate_json(payload)  # the fast path: JSON parsed and validated in one pass
    except ValidationError:
        return _refuse(payload, origin)
    return Decoded(model.to_domain(), content_hash(payload), payload, origin)


def _refuse(payload: str, origin: str) -> Rejected:
    """Why a payload was refused, naming the message id and the fields (the slow path, for bad input only)."""
    try:
        document = json.loads(payload)
    except json.JSONDecodeError as exc:
        return Rejected(None, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", payload, origin)
    if not isinstance(document, dict):
        return Rejected(None, f"not a JSON object but {type(document).__name__}", payload, origin)
    raw_id = document.get("msg_id")
    msg_id = raw_id if isinstance(raw_id, str) and raw_id else None
    msg_type = document.get("msg_type")
    if msg_type not in _MODELS:
        known = ", ".join(_MODELS)
        return Rejected(
            msg_id,
            f"message {msg_id or 'without msg_id'}: msg_type {msg_type!r} is not one of {known}",
            payload,
            origin,
        )
    try:
        _ADAPTER.validate_python(document)
    except ValidationError as exc:
        return Rejected(msg_id, _describe(exc, msg_id, msg_type), payload, origin)
    # validate_json refused what validate_python accepts: only possible for JSON that Python reads more
    # leniently (NaN, Infinity); refuse it with the JSON parser's own words.
    return Rejected(msg_id, f"message {msg_id or 'without msg_id'}: not strict JSON (NaN or Infinity)", payload, origin)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each message type, for site integrators."""
    return {name: model.model_json_schema() for name, model in _MODELS.items()}


Decoder = Callable[[str, str], Decoded | Rejected]
