"""Wire schemas: messy-but-valid SDTM is accepted; invalid input is refused naming the message and field."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from safety_monitor.domain.messages import AdverseEvent, Finding, SubjectEvent
from streams.decoding import Decoded, Rejected, decode
from streams.wire import _instant, json_schemas
from tests.factories import ae, lb, subject_event, vs


def ok(message: dict[str, object]) -> Decoded:
    result = decode(json.dumps(message), "f:1")
    assert isinstance(result, Decoded), getattr(result, "reason", "")
    return result


def refused(payload: dict[str, object] | str) -> str:
    result = decode(payload if isinstance(payload, str) else json.dumps(payload), "f:1")
    assert isinstance(result, Rejected)
    return result.reason


def test_the_issue_example_decodes_to_the_domain() -> None:
    event = ok(ae(msg_id="6f1c")).message
    assert isinstance(event, AdverseEvent)
    assert (event.preferred_term, event.investigator_grade, event.serious) == ("Haemoptysis", 3, "Y")
    assert event.record_key == ("ALTER-ICI-01", "ALTER-ICI-01-012-0007", "AE-14")


@pytest.mark.parametrize("grade", [3, "3", " 3 "])
def test_grade_arrives_as_number_or_text(grade: object) -> None:
    event = ok(ae(grade=grade)).message
    assert isinstance(event, AdverseEvent) and event.investigator_grade == 3


def test_missing_aeser_is_allowed_and_kept_unknown() -> None:
    message = ae()
    del message["AESER"]
    event = ok(message).message
    assert isinstance(event, AdverseEvent) and event.serious is None


def test_partial_onset_date_is_kept_as_sent() -> None:
    event = ok(ae(onset="2026-04")).message
    assert isinstance(event, AdverseEvent) and event.onset_date is not None
    assert (event.onset_date.text, event.onset_date.day) == ("2026-04", None)


def test_html_in_verbatim_term_is_kept_verbatim_for_escaping_at_output() -> None:
    event = ok(ae(AETERM="<script>alert('x')</script> bleeding gums")).message
    assert isinstance(event, AdverseEvent) and event.verbatim_term.startswith("<script>")


def test_findings_and_subject_events_decode() -> None:
    lab = ok(lb()).message
    vital = ok(vs()).message
    status = ok(subject_event()).message
    assert isinstance(lab, Finding) and (lab.test_code, lab.uln, lab.value) == ("ALT", 40, 212)
    assert isinstance(vital, Finding) and vital.collected_at.text == "2026-05-02T09:10"
    assert isinstance(status, SubjectEvent) and status.event.value == "FIRST_DOSE"


def test_content_hash_is_of_the_text_received() -> None:
    message = ae()
    reordered = dict(reversed(list(message.items())))
    assert ok(message).content_hash != ok(reordered).content_hash  # the inbox compares such pairs as documents
    assert ok(message).content_hash == ok(dict(message)).content_hash


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"AETOXGR": 6}, "message m1 (AE): AETOXGR: grade 6 is impossible: CTCAE grades run 1-5"),
        (
            {"AETOXGR": "severe"},
            "message m1 (AE): AETOXGR: AETOXGR must be a CTCAE grade 1-5 (a whole number in ASCII digits), got "
            "'severe'",
        ),
        ({"AESTDTC": "2026-13-45"}, "message m1 (AE): AESTDTC: '2026-13-45': month 13 does not exist"),
        ({"AESER": "maybe"}, "message m1 (AE): AESER: Input should be 'Y', 'N' or 'U'"),
        (
            {"record_version": 0},
            "message m1 (AE): record_version: must be between 1 and 2147483647 (what both databases store), got 0",
        ),
        (
            {"sent_at": "2026-05-01T08:00:00"},
            "message m1 (AE): sent_at: must be an ISO 8601 date-time with a UTC offset, e.g. "
            "2026-05-01T08:00:00+08:00, got '2026-05-01T08:00:00'",
        ),
        ({"AETOXGRR": 3}, "message m1 (AE): AETOXGRR: Extra inputs are not permitted"),
    ],
)
def test_invalid_fields_are_refused_naming_message_and_field(change: dict[str, object], reason: str) -> None:
    assert refused(ae(msg_id="m1") | change) == reason


def test_missing_required_field() -> None:
    message = ae(msg_id="m2")
    del message["USUBJID"]
    assert refused(message) == "message m2 (AE): USUBJID: Field required"


def test_not_json_not_an_object_and_unknown_type() -> None:
    assert refused('{"msg_id": "x", ').startswith("not JSON: ")
    assert refused("[1, 2]") == "not a JSON object but list"
    assert refused(ae(msg_id="m3") | {"msg_type": "XX"}) == (
        "message m3: msg_type 'XX' is not one of AE, LB, VS, EG, SUBJECT, RS"
    )


def test_every_message_type_has_a_json_schema() -> None:
    schemas = json_schemas()
    assert set(schemas) == {"AE", "LB", "VS", "EG", "SUBJECT", "RS"}
    assert "AETOXGR" in schemas["AE"]["properties"] and "AETOXGR" in schemas["AE"]["required"]


def test_lab_character_result_lbstresc_decodes_and_is_optional() -> None:
    dipstick = decode(json.dumps(lb(LBSTRESN=None, LBSTRESU=None, LBSTRESC=" 2+ ", LBSPEC="URINE")), "t:1")
    assert isinstance(dipstick, Decoded) and isinstance(dipstick.message, Finding)
    assert (dipstick.message.value, dipstick.message.result_text) == (None, "2+")
    without = decode(json.dumps(lb()), "t:2")
    assert isinstance(without, Decoded) and isinstance(without.message, Finding)
    assert without.message.result_text is None
    assert "LBSTRESC" in json_schemas()["LB"]["properties"]


@pytest.mark.parametrize(("text", "reason"), [("", "at least 1 character"), ("+" * 65, "at most 64 characters")])
def test_lbstresc_out_of_bounds_is_refused(text: str, reason: str) -> None:
    refused = decode(json.dumps(lb(LBSTRESC=text)), "t:1")
    assert isinstance(refused, Rejected)
    assert "LBSTRESC" in refused.reason and reason in refused.reason


def test_rs_overall_response_decodes_and_refuses_values_outside_recist() -> None:
    import json as _json

    from safety_monitor.domain.messages import OverallResponse, TumourResponse
    from streams.decoding import Decoded, Rejected, decode
    from tests.factories import rs

    decoded = decode(_json.dumps(rs(response="non-cr/non-pd")), "t:1")
    assert isinstance(decoded, Decoded) and isinstance(decoded.message, TumourResponse)
    assert decoded.message.response is OverallResponse.NON_CR_NON_PD
    refused = decode(_json.dumps(rs(response="MR")), "t:2")
    assert isinstance(refused, Rejected) and "RSSTRESC" in refused.reason
    refused = decode(_json.dumps(rs() | {"RSTESTCD": "TRGRESP"}), "t:3")
    assert isinstance(refused, Rejected) and "RSTESTCD" in refused.reason


def test_subject_efficacy_events_decode() -> None:
    import json as _json

    from safety_monitor.domain.messages import SubjectEvent, SubjectEventKind
    from streams.decoding import Decoded, decode
    from tests.factories import subject_event

    for name in ("RANDOMIZED", "PROGRESSED", "ALIVE"):
        decoded = decode(_json.dumps(subject_event(event=name, drug=None)), "t:1")
        assert isinstance(decoded, Decoded) and isinstance(decoded.message, SubjectEvent)
        assert decoded.message.event is SubjectEventKind(name)


def test_a_sent_at_read_before_is_still_compared_with_each_receiving_clock() -> None:
    # Each sent_at text is read once (streams/wire.py, _instant), but the one-day bound is the receiving clock's.
    message = ae(sent_at="2026-05-01T08:00:00+08:00")
    day = datetime(2026, 5, 1, tzinfo=UTC)
    assert isinstance(decode(json.dumps(message), "f:1", now=day), Decoded)
    early = decode(json.dumps(message), "f:1", now=day - timedelta(days=2))
    assert isinstance(early, Rejected) and "more than one day after the receiving clock" in early.reason
    assert isinstance(decode(json.dumps(message), "f:1", now=day), Decoded)


def test_a_long_sent_at_is_refused_and_not_kept() -> None:
    before = _instant.cache_info().currsize
    reason = refused(ae(sent_at="2026-05-01T08:00:00+08:00" + " " * 3000 + "x"))
    assert "sent_at: must be an ISO 8601 date-time with a UTC offset" in reason
    assert _instant.cache_info().currsize == before
