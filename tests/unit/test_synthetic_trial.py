"""Tests for the seeded synthetic trial: determinism, wire format, plausibility and the injected anomalies."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from safety_monitor.demo import (
    ENVELOPE_KEYS,
    MSG_TYPES,
    SITE_IDS,
    STUDY_ID,
    SyntheticTrial,
    generate_load,
    generate_trial,
    write_jsonl,
)

Message = dict[str, object]

_USUBJID = re.compile(r"^ALTER-ICI-01-(\d{3})-\d{4}$")
_SIGNAL_TERMS = {
    "Haemoptysis",
    "Pulmonary haemorrhage",
    "Pneumonitis",
    "Interstitial lung disease",
    "Hypertension",
}


@pytest.fixture(
    scope="module",
    params=[{}, {"seed": 1, "subjects": 24, "start": date(2026, 1, 5), "days": 70}],
    ids=["default", "small"],
)
def trial(request: pytest.FixtureRequest) -> SyntheticTrial:
    return generate_trial(**request.param)


@pytest.fixture(scope="module")
def default_trial() -> SyntheticTrial:
    return generate_trial()


def valid_messages(trial: SyntheticTrial) -> list[tuple[int, Message]]:
    """(1-based line number, message) for every line the manifest does not call malformed."""
    malformed = set(trial.manifest.malformed_lines)
    return [(n, json.loads(line)) for n, line in enumerate(trial.lines, 1) if n not in malformed]


def lines_with_id(trial: SyntheticTrial, msg_id: str) -> list[tuple[int, str]]:
    return [(n, line) for n, line in enumerate(trial.lines, 1) if f'"msg_id": "{msg_id}"' in line]


def ae_versions(trial: SyntheticTrial, usubjid: str, spid: str) -> list[tuple[int, Message]]:
    return [
        (n, m)
        for n, m in valid_messages(trial)
        if m["msg_type"] == "AE" and m["USUBJID"] == usubjid and m["AESPID"] == spid
    ]


def subject_events(trial: SyntheticTrial, event: str) -> list[Message]:
    return [m for _, m in valid_messages(trial) if m["msg_type"] == "SUBJECT" and m["EVENT"] == event]


def worst_grades(trial: SyntheticTrial) -> dict[str, dict[str, int]]:
    """PT -> subject -> worst grade, over the latest version of each AE, for dosed subjects only."""
    dosed = {str(m["USUBJID"]) for m in subject_events(trial, "FIRST_DOSE")}
    latest: dict[tuple[object, object], Message] = {}
    for _, m in valid_messages(trial):
        if m["msg_type"] != "AE":
            continue
        key = (m["USUBJID"], m["AESPID"])
        if key not in latest or int(str(m["record_version"])) >= int(str(latest[key]["record_version"])):
            latest[key] = m
    worst: dict[str, dict[str, int]] = defaultdict(dict)
    for (usubjid, _), m in latest.items():
        if usubjid in dosed:
            by_subject = worst[str(m["AEDECOD"])]
            by_subject[str(usubjid)] = max(by_subject.get(str(usubjid), 0), int(str(m["AETOXGR"])))
    return worst


# ---- determinism -------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes() -> None:
    first, second = generate_trial(seed=42), generate_trial(seed=42)
    assert first.lines == second.lines
    assert first.manifest == second.manifest


def test_different_seeds_differ() -> None:
    first, second = generate_trial(seed=42), generate_trial(seed=43)
    assert first.lines != second.lines
    assert not {json.loads(line)["msg_id"] for line in first.lines[:50]} & {
        json.loads(line)["msg_id"] for line in second.lines[:50]
    }


def test_too_small_a_trial_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 20"):
        generate_trial(subjects=5)
    with pytest.raises(ValueError, match="at least 60 days"):
        generate_trial(days=30)


# ---- wire format -------------------------------------------------------------------------------------------


def test_valid_lines_are_flat_objects_with_the_envelope(trial: SyntheticTrial) -> None:
    for n, message in valid_messages(trial):
        assert isinstance(message, dict), n
        assert set(ENVELOPE_KEYS) <= message.keys(), n
        assert message["msg_type"] in MSG_TYPES, n
        assert message["STUDYID"] == STUDY_ID
        assert message["site_id"] in SITE_IDS
        uuid.UUID(str(message["msg_id"]))
        sent_at = datetime.fromisoformat(str(message["sent_at"]))
        assert sent_at.utcoffset() == timedelta(hours=8)
        assert str(message["sent_at"]).endswith("+08:00")
        assert isinstance(message["record_version"], int)
        assert message["record_version"] >= 1
        match = _USUBJID.match(str(message["USUBJID"]))
        assert match is not None, message["USUBJID"]
        assert match[1] == message["site_id"]
        assert not any(isinstance(value, dict | list) for value in message.values()), n


def test_dates_are_sdtm_iso_8601(trial: SyntheticTrial) -> None:
    for _, m in valid_messages(trial):
        kind = m["msg_type"]
        if kind == "AE":
            onset = str(m["AESTDTC"])
            if re.fullmatch(r"\d{4}-\d{2}", onset):
                date.fromisoformat(onset + "-01")
            else:
                date.fromisoformat(onset)
            if m["AEENDTC"] is not None:
                date.fromisoformat(str(m["AEENDTC"]))
            assert 1 <= int(str(m["AETOXGR"])) <= 5
        elif kind == "SUBJECT":
            date.fromisoformat(str(m["EVENTDTC"]))
        elif kind == "RS":  # a scan date: a day, or (once, on purpose) a month only
            assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", str(m["RSDTC"])), m["RSDTC"]
        else:
            dtc = str(m[f"{kind}DTC"])
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", dtc), dtc
            datetime.fromisoformat(dtc)


def test_ae_messages_carry_sdtm_fields_per_drug(default_trial: SyntheticTrial) -> None:
    aes = [m for _, m in valid_messages(default_trial) if m["msg_type"] == "AE"]
    causality = {"NOT RELATED", "UNLIKELY", "POSSIBLE", "PROBABLE", "RELATED"}
    actions = {"DOSE NOT CHANGED", "DRUG INTERRUPTED", "DOSE REDUCED", "DRUG WITHDRAWN"}
    for ae in aes:
        assert ae["AEREL_ANLOTINIB"] in causality
        assert ae["AEREL_ICI"] in causality
        assert ae["AEACN_ANLOTINIB"] in actions
        assert ae["AEACN_ICI"] in actions - {"DOSE REDUCED"}  # checkpoint inhibitors are not dose-reduced
        assert ae["AEIRAE"] in ("Y", "N", None)
        assert ae.get("AESER", "N") in ("Y", "N")
        assert ae["AEOUT"] in (
            "RECOVERED/RESOLVED",
            "RECOVERING/RESOLVING",
            "NOT RECOVERED/NOT RESOLVED",
            "FATAL",
        )
    # The quirks real sites have: grades sent as strings, AESER left out, partial onset dates.
    assert any(isinstance(ae["AETOXGR"], str) for ae in aes)
    assert sum(isinstance(ae["AETOXGR"], int) for ae in aes) > 0.85 * len(aes)
    assert any("AESER" not in ae for ae in aes)
    assert sum(bool(re.fullmatch(r"\d{4}-\d{2}", str(ae["AESTDTC"]))) for ae in aes) >= 2


def test_blood_pressure_comes_in_sbp_dbp_pairs(trial: SyntheticTrial) -> None:
    seen: set[object] = set()
    pairs: dict[tuple[object, object], list[object]] = defaultdict(list)
    for _, m in valid_messages(trial):
        if m["msg_type"] == "VS" and m["msg_id"] not in seen:
            seen.add(m["msg_id"])
            assert m["VSSTRESU"] == "mmHg"
            pairs[(m["USUBJID"], m["VSDTC"])].append(m["VSTESTCD"])
    assert pairs
    incomplete = [key for key, codes in pairs.items() if sorted(map(str, codes)) != ["DIABP", "SYSBP"]]
    assert incomplete == []


def test_messages_arrive_in_sent_order_with_some_late_arrivals(trial: SyntheticTrial) -> None:
    latest, late = "", 0
    for _, m in valid_messages(trial):
        sent_at = str(m["sent_at"])
        late += sent_at < latest
        latest = max(latest, sent_at)
    assert 10 <= late < 0.1 * len(trial.lines)


# ---- plausibility ------------------------------------------------------------------------------------------


def test_default_trial_has_sixty_subjects_across_six_sites(default_trial: SyntheticTrial) -> None:
    enrolled = subject_events(default_trial, "ENROLLED")
    assert len(enrolled) == len({m["USUBJID"] for m in enrolled}) == 60
    assert {str(m["USUBJID"]).split("-")[3] for m in enrolled} == set(SITE_IDS)


def test_every_subject_is_enrolled_then_dosed_with_both_drugs(trial: SyntheticTrial) -> None:
    enrolled = {m["USUBJID"]: date.fromisoformat(str(m["EVENTDTC"])) for m in subject_events(trial, "ENROLLED")}
    doses: dict[object, set[object]] = defaultdict(set)
    for m in subject_events(trial, "FIRST_DOSE"):
        assert m["ARM"] == "ANLOTINIB+ICI"
        assert 2 <= (date.fromisoformat(str(m["EVENTDTC"])) - enrolled[m["USUBJID"]]).days <= 7
        doses[m["USUBJID"]].add(m["DRUG"])
    assert doses.keys() == enrolled.keys()
    assert all(drugs == {"ANLOTINIB", "ICI"} for drugs in doses.values())


def test_deaths_on_treatment_have_a_grade_5_ae_and_one_follows_progression(trial: SyntheticTrial) -> None:
    deaths = subject_events(trial, "DIED")
    on_treatment = {m["USUBJID"] for m in deaths if m["REASON"] != "PROGRESSIVE DISEASE"}
    assert 1 <= len(on_treatment) <= 2
    fatal = {s for by_subject in worst_grades(trial).values() for s, grade in by_subject.items() if grade == 5}
    assert fatal == on_treatment
    # Disease progression is no AE: that death has no grade 5 AE, and comes after documented progression.
    late = [m for m in deaths if m["REASON"] == "PROGRESSIVE DISEASE"]
    assert len(late) <= 1 and (late or len(trial.lines) < 3000)  # the default trial has room for it
    progressed = {m["USUBJID"]: str(m["EVENTDTC"]) for m in subject_events(trial, "PROGRESSED")}
    for m in late:
        assert m["USUBJID"] not in fatal and progressed[m["USUBJID"]] < str(m["EVENTDTC"])
    assert 2 <= len(subject_events(trial, "DISCONTINUED")) <= 8


def test_hypertension_incidence_matches_anlotinib(trial: SyntheticTrial) -> None:
    dosed = {m["USUBJID"] for m in subject_events(trial, "FIRST_DOSE")}
    hypertension = worst_grades(trial)["Hypertension"]
    assert 0.50 <= len(hypertension) / len(dosed) <= 0.80
    assert 0.05 <= sum(grade >= 3 for grade in hypertension.values()) / len(dosed) <= 0.25


def test_hypertension_onset_is_early(default_trial: SyntheticTrial) -> None:
    first_dose = {
        m["USUBJID"]: date.fromisoformat(str(m["EVENTDTC"])) for m in subject_events(default_trial, "FIRST_DOSE")
    }
    onsets = sorted(
        (date.fromisoformat(str(m["AESTDTC"])) - first_dose[m["USUBJID"]]).days
        for _, m in valid_messages(default_trial)
        if m["msg_type"] == "AE"
        and m["AEDECOD"] == "Hypertension"
        and m["record_version"] == 1
        and len(str(m["AESTDTC"])) == 10
        and m["USUBJID"] in first_dose
    )
    assert 3 <= onsets[len(onsets) // 2] <= 10


def test_grade_3_hypertension_has_matching_blood_pressure(trial: SyntheticTrial) -> None:
    severe = {s for s, grade in worst_grades(trial)["Hypertension"].items() if grade >= 3}
    high: set[tuple[object, object]] = set()  # measurements with SBP >= 160 or DBP >= 100
    for _, m in valid_messages(trial):
        if m["msg_type"] == "VS":
            threshold = 160 if m["VSTESTCD"] == "SYSBP" else 100
            if int(str(m["VSSTRESN"])) >= threshold:
                high.add((m["USUBJID"], m["VSDTC"]))
    readings_by_subject = Counter(usubjid for usubjid, _ in high)
    assert set(readings_by_subject) == severe
    assert all(count >= 2 for count in readings_by_subject.values())


def test_bleeding_and_pneumonitis_signals(trial: SyntheticTrial) -> None:
    worst = worst_grades(trial)
    assert any(grade >= 3 for grade in worst["Haemoptysis"].values())
    assert 1 <= len(worst["Pneumonitis"]) <= 3
    assert all(grade in (2, 3) for grade in worst["Pneumonitis"].values())
    pneumonitis = [m for _, m in valid_messages(trial) if m["msg_type"] == "AE" and m["AEDECOD"] == "Pneumonitis"]
    assert all(m["AEIRAE"] in ("Y", None) for m in pneumonitis if m["record_version"] == 1)


def test_background_toxicity_is_present(default_trial: SyntheticTrial) -> None:
    worst = worst_grades(default_trial)
    for term in ("Palmar-plantar erythrodysaesthesia syndrome", "Diarrhoea", "Fatigue", "Proteinuria"):
        assert len(worst[term]) >= 6, term
    assert 0.30 <= len(worst["Palmar-plantar erythrodysaesthesia syndrome"]) / 60 <= 0.50


def test_labs_each_cycle_with_a_screening_baseline_and_qtcf_at_screening_and_c2(
    default_trial: SyntheticTrial,
) -> None:
    labs = [m for _, m in valid_messages(default_trial) if m["msg_type"] == "LB"]
    baselines = {(m["USUBJID"], m["LBTESTCD"]) for m in labs if m["LBBLFL"] == "Y"}
    assert {m["LBBLFL"] for m in labs} == {"Y", None}
    assert all(m["VISIT"] == "SCREENING" for m in labs if m["LBBLFL"] == "Y")
    assert len(baselines) == 60 * len({m["LBTESTCD"] for m in labs})
    assert {"ALT", "AST", "BILI", "ALP", "PLAT", "TSH"} <= {m["LBTESTCD"] for m in labs}
    assert {"C2D1", "C3D1"} <= {m["VISIT"] for m in labs}
    assert all(m["LBNRIND"] in ("LOW", "NORMAL", "HIGH") for m in labs)
    ecg_visits = Counter(m["EGBLFL"] for _, m in valid_messages(default_trial) if m["msg_type"] == "EG")
    assert ecg_visits["Y"] == 60
    assert ecg_visits[None] >= 50


# ---- anomalies ---------------------------------------------------------------------------------------------


def test_msg_ids_are_unique_except_duplicates_and_the_conflict(trial: SyntheticTrial) -> None:
    counts = Counter(m["msg_id"] for _, m in valid_messages(trial))
    repeated = {msg_id for msg_id, count in counts.items() if count > 1}
    assert repeated == {*trial.manifest.duplicate_msg_ids, trial.manifest.conflict_msg_id}
    assert all(counts[msg_id] == 2 for msg_id in repeated)


def test_duplicates_are_resent_verbatim_later(trial: SyntheticTrial) -> None:
    assert len(trial.manifest.duplicate_msg_ids) >= 3
    for msg_id in trial.manifest.duplicate_msg_ids:
        (first, original), (second, copy) = lines_with_id(trial, msg_id)
        assert copy == original
        assert second > first + 1


def test_a_follow_up_raises_a_haemoptysis_grade(trial: SyntheticTrial) -> None:
    usubjid, spid, old_grade, new_grade = trial.manifest.grade_raise
    assert (old_grade, new_grade) == (2, 3)
    versions = ae_versions(trial, usubjid, spid)
    assert [m["record_version"] for _, m in versions] == [1, 2]
    assert [int(str(m["AETOXGR"])) for _, m in versions] == [old_grade, new_grade]
    assert {m["AEDECOD"] for _, m in versions} == {"Haemoptysis"}


def test_a_stale_follow_up_arrives_after_a_newer_version(trial: SyntheticTrial) -> None:
    [(line, stale)] = [(n, json.loads(text)) for n, text in lines_with_id(trial, trial.manifest.stale_followup_msg_id)]
    earlier = ae_versions(trial, str(stale["USUBJID"]), str(stale["AESPID"]))
    newest_before = max(int(str(m["record_version"])) for n, m in earlier if n < line)
    assert int(str(stale["record_version"])) < newest_before


def test_a_correction_lowers_a_non_alert_grade(trial: SyntheticTrial) -> None:
    usubjid, spid, old_grade, new_grade = trial.manifest.grade_lowering
    assert new_grade < old_grade
    versions = ae_versions(trial, usubjid, spid)
    assert [(m["record_version"], int(str(m["AETOXGR"]))) for _, m in versions] == [
        (1, old_grade),
        (2, new_grade),
    ]
    assert versions[0][1]["AEDECOD"] not in _SIGNAL_TERMS


def test_exactly_the_manifested_lines_are_malformed(trial: SyntheticTrial) -> None:
    malformed = [trial.lines[n - 1] for n in trial.manifest.malformed_lines]
    assert len(malformed) == 5
    not_json = []
    problems = set()
    for text in malformed:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            not_json.append(text)
            continue
        if message["msg_type"] == "XX":
            problems.add("unknown msg_type")
        elif "USUBJID" not in message:
            problems.add("missing USUBJID")
        elif message["AETOXGR"] == 6:
            problems.add("grade 6")
        elif re.fullmatch(r"\d{4}-13-45", str(message["AESTDTC"])):
            problems.add("impossible date")
    assert len(not_json) == 1
    assert problems == {"unknown msg_type", "missing USUBJID", "grade 6", "impossible date"}
    for n, line in enumerate(trial.lines, 1):  # every other line decodes
        if n not in trial.manifest.malformed_lines:
            json.loads(line)


def test_a_msg_id_conflict_carries_different_content(trial: SyntheticTrial) -> None:
    (_, first), (_, second) = lines_with_id(trial, trial.manifest.conflict_msg_id)
    assert first != second
    assert json.loads(first)["sent_at"] < json.loads(second)["sent_at"]


def test_an_ae_for_a_subject_never_enrolled(trial: SyntheticTrial) -> None:
    unknown = trial.manifest.unknown_subject_id
    assert _USUBJID.match(unknown)
    assert unknown not in {m["USUBJID"] for m in subject_events(trial, "ENROLLED")}
    aes = [m for _, m in valid_messages(trial) if m.get("USUBJID") == unknown]
    assert [m["msg_type"] for m in aes] == ["AE"]
    assert aes[0]["AEDECOD"] in _SIGNAL_TERMS
    assert int(str(aes[0]["AETOXGR"])) >= 3


def test_an_ae_verbatim_carries_a_script_payload_on_an_alerted_serious_ae(trial: SyntheticTrial) -> None:
    # It must reach the alert mails and the DSMB report (issue 17, item 10): a rule's term at grade >= 3, serious.
    [(_, text)] = lines_with_id(trial, trial.manifest.html_payload_msg_id)
    message = json.loads(text)
    assert message["AETERM"] == "<script>alert('x')</script> coughing up blood"
    assert message["AEDECOD"] in _SIGNAL_TERMS and int(message["AETOXGR"]) >= 3 and message["AESER"] == "Y"


def test_one_ae_is_graded_by_the_site_below_what_its_results_show(trial: SyntheticTrial) -> None:
    usubjid, spid, investigator, shown = trial.manifest.grade_disagreement
    ae = max((m for _, m in ae_versions(trial, usubjid, spid)), key=lambda m: int(str(m["record_version"])))
    assert ae["AEENDTC"] is not None
    assert (ae["AEDECOD"], int(ae["AETOXGR"]), investigator, shown) == ("Alanine aminotransferase increased", 1, 1, 2)
    during = [
        m
        for _, m in valid_messages(trial)
        if m["msg_type"] == "LB"
        and m["USUBJID"] == usubjid
        and m["LBTESTCD"] == "ALT"
        and str(ae["AESTDTC"]) <= str(m["LBDTC"])[:10] <= str(ae["AEENDTC"])
    ]
    # CTCAE v5 ALT increased, baseline normal: grade 2 is > 3.0 - 5.0 x ULN.
    assert during and all(
        3.0 * float(str(m["LBSTNRHI"])) < float(str(m["LBSTRESN"])) <= 5.0 * float(str(m["LBSTNRHI"])) for m in during
    )


def test_an_ae_with_a_partial_onset_date(trial: SyntheticTrial) -> None:
    [(_, text)] = lines_with_id(trial, trial.manifest.partial_date_msg_id)
    message = json.loads(text)
    assert message["msg_type"] == "AE"
    assert re.fullmatch(r"\d{4}-\d{2}", message["AESTDTC"])


def test_default_manifest_is_stable(default_trial: SyntheticTrial) -> None:
    manifest = default_trial.manifest
    assert manifest.grade_raise[2:] == (2, 3)
    assert manifest.unknown_subject_id.endswith("-0099")
    assert len(manifest.malformed_lines) == 5
    assert len(manifest.duplicate_msg_ids) == 5
    [(_, text)] = lines_with_id(default_trial, manifest.partial_date_msg_id)
    assert json.loads(text)["AESTDTC"] == "2026-04"


# ---- efficacy follow-up ----------------------------------------------------------------------------------


def test_every_subject_is_randomised_before_the_first_dose(trial: SyntheticTrial) -> None:
    randomised = {m["USUBJID"]: str(m["EVENTDTC"]) for m in subject_events(trial, "RANDOMIZED")}
    enrolled = {m["USUBJID"]: str(m["EVENTDTC"]) for m in subject_events(trial, "ENROLLED")}
    first = {m["USUBJID"]: str(m["EVENTDTC"]) for m in subject_events(trial, "FIRST_DOSE")}
    assert randomised.keys() == enrolled.keys()
    assert all(enrolled[s] <= randomised[s] <= first[s] for s in randomised)


def test_tumour_assessments_every_six_weeks_with_each_kind_of_response(default_trial: SyntheticTrial) -> None:
    rs = [m for _, m in valid_messages(default_trial) if m["msg_type"] == "RS"]
    assert {m["RSTESTCD"] for m in rs} == {"OVRLRESP"}
    responses = Counter(m["RSSTRESC"] for m in rs)
    assert {"PR", "SD", "PD"} <= responses.keys()
    first = {m["USUBJID"]: date.fromisoformat(str(m["EVENTDTC"])) for m in subject_events(default_trial, "FIRST_DOSE")}
    for m in rs:
        if len(str(m["RSDTC"])) == 10:
            days = (date.fromisoformat(str(m["RSDTC"])) - first[m["USUBJID"]]).days
            assert days % 42 <= 3 or days % 42 >= 39 or m["RSSTRESC"] == "PD", (days, m)
    # One scan dated to the month only; one first read corrected by a version 2 of the same record.
    assert sum(1 for m in rs if len(str(m["RSDTC"])) == 7) == 1
    versions = [m for m in rs if m["record_version"] == 2]
    assert len(versions) == 1
    [v1] = [
        m
        for m in rs
        if m["USUBJID"] == versions[0]["USUBJID"] and m["RSDTC"] == versions[0]["RSDTC"] and m["record_version"] == 1
    ]
    assert (v1["RSSTRESC"], versions[0]["RSSTRESC"]) == ("PR", "CR")


def test_progression_is_documented_and_followed_up(default_trial: SyntheticTrial) -> None:
    rs_pd = {
        (m["USUBJID"], m["RSDTC"])
        for _, m in valid_messages(default_trial)
        if m["msg_type"] == "RS" and m["RSSTRESC"] == "PD"
    }
    progressed = {(m["USUBJID"], m["EVENTDTC"]) for m in subject_events(default_trial, "PROGRESSED")}
    assert progressed == rs_pd and len(progressed) >= 2
    discontinued = {
        m["USUBJID"]: str(m["EVENTDTC"])
        for m in subject_events(default_trial, "DISCONTINUED")
        if m["REASON"] == "PROGRESSIVE DISEASE"
    }
    alive = subject_events(default_trial, "ALIVE")
    assert alive and all(str(m["EVENTDTC"]) > discontinued[m["USUBJID"]] for m in alive)


# ---- benchmark load and files ------------------------------------------------------------------------------


def test_load_is_deterministic_valid_and_mixed() -> None:
    lines = list(generate_load(20_000))
    assert lines == list(generate_load(20_000))
    assert lines != list(generate_load(20_000, seed=8))
    messages = [json.loads(line) for line in lines]
    assert len(messages) == 20_000
    assert len({m["msg_id"] for m in messages}) == 20_000
    for m in messages:
        assert set(ENVELOPE_KEYS) <= m.keys()
        uuid.UUID(m["msg_id"])
    shares = Counter(m["msg_type"] for m in messages)
    assert 0.12 <= shares["AE"] / 20_000 <= 0.18
    assert 0.36 <= shares["LB"] / 20_000 <= 0.44
    assert 0.36 <= shares["VS"] / 20_000 <= 0.44
    assert 0.03 <= (shares["SUBJECT"] + shares["EG"]) / 20_000 <= 0.07
    assert 80 <= len({m["USUBJID"] for m in messages}) <= 120
    sent = [m["sent_at"] for m in messages]
    assert sent == sorted(sent)
    assert all(1 <= int(str(m["AETOXGR"])) <= 5 for m in messages if m["msg_type"] == "AE")


def test_load_stops_at_the_requested_count() -> None:
    assert list(generate_load(0)) == []
    for count in (1, 2, 3, 4, 201, 1_000):
        assert len(list(generate_load(count))) == count


def test_write_jsonl_round_trips(tmp_path: Path) -> None:
    trial = generate_trial()
    path = tmp_path / "trial.jsonl"
    assert write_jsonl(path, trial.lines) == len(trial.lines)
    assert path.read_bytes() == ("\n".join(trial.lines) + "\n").encode()
    assert write_jsonl(tmp_path / "load.jsonl", generate_load(10)) == 10
