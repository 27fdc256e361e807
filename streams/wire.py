"""Owns the wire format sites publish: a pydantic v2 model per message type, the checks of each field, and the
domain fact each message becomes (streams/decoding.py parses a line into one of them)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
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
    ValidationInfo,
)

from safety_monitor.domain.dates import InvalidDate, PartialDate
from safety_monitor.domain.messages import (
    AdverseEvent,
    Envelope,
    Finding,
    MessageType,
    OverallResponse,
    SubjectEvent,
    SubjectEventKind,
    TumourResponse,
)

QUOTE_CHARS = 200  # how much of a refused value a reason quotes

# Integers both databases store: record_version is an INTEGER column, 32-bit on PostgreSQL.
DB_INT_MAX = 2**31 - 1
# sent_at bounds: historical trials are replayed, so nothing tighter below than the start of electronic data
# capture in trials; above, a site clock may run ahead a little, but not by more than a day.
EARLIEST_SENT_AT = datetime(1990, 1, 1, tzinfo=UTC)
SENT_AT_LEEWAY = timedelta(days=1)

_ASCII_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_ASCII_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_ISO_DATETIME_WITH_OFFSET = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)


def quote(value: object) -> str:
    """A value as a reason may show it: its repr, cut to QUOTE_CHARS characters."""
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else f"{text[:QUOTE_CHARS]}... ({len(text)} characters)"


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _sdtm_date(value: str) -> str:
    try:
        PartialDate.parse(value)
    except InvalidDate as exc:
        raise ValueError(str(exc)) from None
    return value.strip()


def _ctcae_grade(value: object) -> object:
    # Sites send AETOXGR as 3 or "3"; CTCAE grades run 1-5 (grade 5 = death related to the AE). Only ASCII
    # digits: str.isdigit() would read an Arabic-Indic "٣" as 3.
    if isinstance(value, str) and _ASCII_INTEGER.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"AETOXGR must be a CTCAE grade 1-5 (a whole number in ASCII digits), got {quote(value)}")
    if not 1 <= value <= 5:
        raise ValueError(f"grade {quote(value)} is impossible: CTCAE grades run 1-5")
    return value


def _record_version(value: object) -> object:
    if isinstance(value, str) and _ASCII_INTEGER.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number in ASCII digits, got {quote(value)}")
    if not 1 <= value <= DB_INT_MAX:
        raise ValueError(f"must be between 1 and {DB_INT_MAX} (what both databases store), got {quote(value)}")
    return value


def _sdtm_number(value: object) -> object:
    # SDTM --STRESN is numeric; sites send it as a JSON number or as text, which must be ASCII digits.
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {quote(value)}")
    if isinstance(value, str):
        if not _ASCII_NUMBER.fullmatch(value.strip()):
            raise ValueError(f"must be a number in ASCII digits, got {quote(value)}")
        return float(value.strip())
    return value


@lru_cache(maxsize=4096)
def _instant(value: str) -> tuple[datetime, datetime] | str:
    """A sent_at text as it was sent and in UTC, or why it is refused. A site's export sends many messages with the
    same sent_at, so each text is read once; the receiving clock is compared by the caller."""
    if not _ISO_DATETIME_WITH_OFFSET.fullmatch(value.strip()):
        return f"must be an ISO 8601 date-time with a UTC offset, e.g. 2026-05-01T08:00:00+08:00, got {quote(value)}"
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.year < EARLIEST_SENT_AT.year - 1 or parsed.year > 9998:
            raise OverflowError
        in_utc = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return f"is not a date-time that exists in UTC: {quote(value)}"
    if in_utc < EARLIEST_SENT_AT:
        return f"{quote(value)} is before {EARLIEST_SENT_AT.date().isoformat()}"
    return parsed, in_utc


def _sent_at(value: object, info: ValidationInfo) -> datetime:
    """ISO 8601 with a UTC offset only (a number is not read as Unix time), from 1990 to one day ahead."""
    if not isinstance(value, str):
        raise ValueError(
            f"must be an ISO 8601 date-time with a UTC offset, e.g. 2026-05-01T08:00:00+08:00, got {quote(value)}"
        )
    # Only texts as long as a date-time can be are kept: hostile long values must not fill the cache.
    read = _instant(value) if len(value) <= 64 else _instant.__wrapped__(value)
    if isinstance(read, str):
        raise ValueError(read)
    parsed, in_utc = read
    now = info.context.get("now") if isinstance(info.context, dict) else None
    now = now if isinstance(now, datetime) else datetime.now(UTC)
    if in_utc > now + SENT_AT_LEEWAY:
        raise ValueError(f"{quote(value)} is more than one day after the receiving clock ({now.isoformat()})")
    return parsed


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=400)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
MsgId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._:\-]{1,128}$")]
SdtmDate = Annotated[str, AfterValidator(_sdtm_date)]
SentAt = Annotated[AwareDatetime, BeforeValidator(_sent_at)]
RecordVersion = Annotated[int, BeforeValidator(_record_version), Field(ge=1, le=DB_INT_MAX)]
Number = Annotated[float, BeforeValidator(_sdtm_number)]
NoYes = Annotated[Literal["Y", "N", "U"], BeforeValidator(_upper)]
Grade = Annotated[int, BeforeValidator(_ctcae_grade)]
Upper = Annotated[str, BeforeValidator(_upper), StringConstraints(min_length=1, max_length=64)]


class _Envelope(BaseModel):
    # hide_input_in_errors: a ValidationError's text (a traceback, a log line) never quotes subject data.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, hide_input_in_errors=True)

    msg_id: MsgId = Field(description="Globally unique message id (a UUID); the dedupe key.")
    sent_at: SentAt = Field(
        description="When the site system sent the message: ISO 8601 with a UTC offset, from 1990-01-01 to one "
        "day after the receiving clock."
    )
    site_id: Code
    record_version: RecordVersion = Field(description="Follow-ups of the same record carry a higher version.")
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
    LBSTRESN: Number | None = Field(description="Numeric result in standard units; null when not numeric.")
    LBSTRESU: Code | None = None
    LBSTNRLO: Number | None = None
    LBSTNRHI: Number | None = None
    LBNRIND: Upper | None = None
    LBBLFL: Literal["Y"] | None = None
    LBDTC: SdtmDate
    VISIT: Code | None = None
    LBSPEC: Upper | None = None
    LBSTRESC: Code | None = Field(
        default=None, description='Character result in standard format, e.g. a urine dipstick "2+" (LBSTRESN null).'
    )

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
            result_text=self.LBSTRESC,
        )


class VsMessage(_Envelope):
    """A vital sign (SDTM VS); SBP and DBP of one measurement are two messages sharing USUBJID + VSDTC."""

    msg_type: Literal["VS"]
    VSTESTCD: Upper
    VSSTRESN: Number | None
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
    EGSTRESN: Number | None
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
MESSAGES: TypeAdapter[WireMessage] = TypeAdapter(WireMessage)
MODELS: dict[str, type[_Envelope]] = {
    "AE": AeMessage,
    "LB": LbMessage,
    "VS": VsMessage,
    "EG": EgMessage,
    "SUBJECT": SubjectMessage,
    "RS": RsMessage,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each message type, for site integrators."""
    return {name: model.model_json_schema() for name, model in MODELS.items()}
