"""The DSMB report on the synthetic trial, every figure checked against an independent reading of the raw lines
(tests/report_oracle.py: plain Python, no product code), on every store."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from safety_monitor.adapters.memory.unit_of_work import MemoryStore
from safety_monitor.adapters.sql.database import create_engine, upgrade
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.adapters.statistics import ScipyStatistics
from safety_monitor.adapters.templates import TemplateRenderer
from safety_monitor.demo import SyntheticTrial, generate_trial
from safety_monitor.domain.grading import BloodPressureGrader
from safety_monitor.domain.rules import Ruleset
from safety_monitor.service.pipeline import PipelineConfig
from safety_monitor.service.ports import UnitOfWorkFactory
from safety_monitor.service.report import build_report
from tests import report_oracle as oracle
from tests.conftest import POSTGRES_URL, ROOT, _drop_schema, _postgres_schema
from tests.factories import inbound
from tests.harness import run

TRIAL = generate_trial()
CUT = TRIAL.last_day


async def _load(store: UnitOfWorkFactory, ruleset: Ruleset, trial: SyntheticTrial) -> None:
    config = PipelineConfig(ruleset=ruleset, grader=BloodPressureGrader(), alert_recipients=("dsmb@example.org",))
    now = datetime(2026, 6, 1, tzinfo=UTC)
    for start in range(0, len(trial.lines), 500):
        await run(store, config, now, inbound(*trial.lines[start : start + 500]))


async def _report_on(kind: str, directory: Path, ruleset: Ruleset) -> dict[str, Any]:
    if kind == "memory":
        memory = MemoryStore()
        await _load(memory, ruleset, TRIAL)
        return await build_report(memory, ruleset, ScipyStatistics(), as_of=CUT, since=TRIAL.first_day)
    schema = await _postgres_schema() if kind == "postgresql" else None
    engine = create_engine(POSTGRES_URL if schema else f"sqlite:///{directory}/report.db", schema=schema)
    await upgrade(engine)
    try:
        store = SqlStore(engine)
        await _load(store, ruleset, TRIAL)
        return await build_report(store, ruleset, ScipyStatistics(), as_of=CUT, since=TRIAL.first_day)
    finally:
        await engine.dispose()
        if schema:
            await _drop_schema(schema)


@pytest.fixture(scope="module", params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def report(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, catalogue: Ruleset
) -> dict[str, Any]:
    """The trial replayed once per store, its report built once: every test below reads the same figures."""
    return asyncio.run(_report_on(request.param, tmp_path_factory.mktemp("report"), catalogue))


MESSAGES = oracle.current_messages(TRIAL.lines)


def _dosed() -> dict[str, Any]:
    return {m["USUBJID"] for m in oracle.events(MESSAGES, "FIRST_DOSE")}


def test_json_has_the_fixed_keys(report: dict[str, Any]) -> None:
    assert {"data_cut", "population", "exposure", "eair", "deaths", "os", "pfs", "orr"} <= report.keys()
    assert {"enrolled", "safety"} <= report["population"].keys()
    assert "person_years" in report["exposure"]
    assert {"soc", "pt", "subjects", "person_years", "per_100py", "ci95"} <= report["eair"][0].keys()
    for curve in ("os", "pfs"):
        assert {"events", "censored", "median_days", "km"} <= report[curve].keys()
        assert {"t_days", "survival", "at_risk"} <= report[curve]["km"][0].keys()
    assert {"evaluable", "responders", "rate", "ci95"} <= report["orr"].keys()
    json.dumps(report, allow_nan=False)  # serialisable as it is


def test_population_and_exposure_equal_an_independent_count(report: dict[str, Any]) -> None:
    enrolled = {m["USUBJID"] for m in oracle.events(MESSAGES, "ENROLLED")}
    randomised = {m["USUBJID"] for m in oracle.events(MESSAGES, "RANDOMIZED")}
    died = {m["USUBJID"] for m in oracle.events(MESSAGES, "DIED")}
    population = report["population"]
    assert (population["enrolled"], population["randomised"], population["safety"], population["died"]) == (
        len(enrolled),
        len(randomised),
        len(_dosed()),
        len(died),
    )
    days = oracle.exposure_days(MESSAGES, CUT)
    assert report["exposure"]["days"] == sum(days.values())
    assert report["exposure"]["person_years"] == pytest.approx(sum(days.values()) / 365.25, rel=1e-12)


def test_deaths_equal_the_died_events_with_their_cause(report: dict[str, Any]) -> None:
    expected = sorted(
        (m["EVENTDTC"], m["USUBJID"], m["REASON"])
        for m in oracle.events(MESSAGES, "DIED")
        if m["EVENTDTC"] <= CUT.isoformat()
    )
    assert [(d["date"], d["subject_id"], d["cause"]) for d in report["deaths"]] == expected
    assert any(cause == "PROGRESSIVE DISEASE" for *_, cause in expected)


def _teaes() -> list[tuple[dict[str, Any], int]]:
    """(current AE record, study day of its imputed onset) of treatment-emergent AEs of dosed subjects."""
    first = {}
    for m in oracle.events(MESSAGES, "FIRST_DOSE"):
        d = oracle.first_day(m["EVENTDTC"])
        first[m["USUBJID"]] = min(first.get(m["USUBJID"], d), d)
    found = []
    for m in MESSAGES:
        if m["msg_type"] != "AE" or m["USUBJID"] not in first:
            continue
        dose = first[m["USUBJID"]]
        onset = oracle.first_day(m["AESTDTC"])
        if len(m["AESTDTC"]) < 10 and (onset.year, onset.month) == (dose.year, dose.month):
            onset = max(onset, dose)  # the partial-date convention: never before the first dose in its month
        if dose <= onset <= CUT:
            found.append((m, (onset - dose).days + 1))
    return found


def test_eair_per_preferred_term_equals_an_independent_computation(report: dict[str, Any]) -> None:
    days = oracle.exposure_days(MESSAGES, CUT)
    firsts: dict[str, dict[str, int]] = {}
    for m, day in _teaes():
        subjects = firsts.setdefault(m["AEDECOD"], {})
        subjects[m["USUBJID"]] = min(subjects.get(m["USUBJID"], day), day)
    rows = {r["pt"]: r for r in report["eair"] if r["pt"] is not None}
    assert rows.keys() == firsts.keys()
    for pt, subjects in firsts.items():
        at_risk = sum(subjects.get(s, d) for s, d in days.items()) / 365.25
        k = len(subjects)
        low, high = oracle.poisson_exact(k)
        row = rows[pt]
        assert (row["subjects"], row["person_years"]) == (k, pytest.approx(at_risk, rel=1e-12)), pt
        assert row["per_100py"] == pytest.approx(100 * k / at_risk, rel=1e-12)
        assert row["ci95"] == pytest.approx([100 * low / at_risk, 100 * high / at_risk], rel=1e-8)


def test_soc_pt_worst_grades_equal_an_independent_count(report: dict[str, Any]) -> None:
    worst: dict[str, dict[str, int]] = {}
    for m, _day in _teaes():
        subjects = worst.setdefault(m["AEDECOD"], {})
        subjects[m["USUBJID"]] = max(subjects.get(m["USUBJID"], 0), int(m["AETOXGR"]))
    rows = {r["pt"]: r["by_grade"] for r in report["soc_pt"] if r["pt"] is not None}
    assert rows == {pt: [sum(1 for g in s.values() if g == grade) for grade in range(1, 6)] for pt, s in worst.items()}


def _complete(text: Any) -> str | None:
    return text[:10] if isinstance(text, str) and len(text) >= 10 and text[:10] <= CUT.isoformat() else None


def _survival() -> tuple[dict[str, tuple[int, bool]], dict[str, tuple[int, bool]]]:
    origin = {m["USUBJID"]: oracle.first_day(m["EVENTDTC"]) for m in oracle.events(MESSAGES, "RANDOMIZED")}
    died = {m["USUBJID"]: oracle.first_day(m["EVENTDTC"]) for m in oracle.events(MESSAGES, "DIED")}
    last: dict[str, str] = {}
    fields = ("EVENTDTC", "AESTDTC", "AEENDTC", "LBDTC", "VSDTC", "EGDTC", "RSDTC")
    for m in MESSAGES:
        for name in fields:
            day = _complete(m.get(name))
            if day and day > last.get(m["USUBJID"], ""):
                last[m["USUBJID"]] = day
    os_ = {}
    pfs = {}
    for s, start in origin.items():
        if s in died:
            os_[s] = ((died[s] - start).days, True)
        else:
            os_[s] = ((oracle.first_day(last[s]) - start).days, False)
        scans = sorted(
            (m["RSDTC"], m["RSSTRESC"])
            for m in MESSAGES
            if m["msg_type"] == "RS" and m["USUBJID"] == s and _complete(m["RSDTC"])
        )
        progression = [d for d, r in scans if r == "PD"]
        progression += [m["EVENTDTC"] for m in oracle.events(MESSAGES, "PROGRESSED") if m["USUBJID"] == s]
        progression += [died[s].isoformat()] if s in died else []
        if progression:
            pfs[s] = ((oracle.first_day(min(progression)) - start).days, True)
        else:
            evaluated = [d for d, r in scans if r != "NE"]
            pfs[s] = ((oracle.first_day(max(evaluated)) - start).days if evaluated else 0, False)
    return os_, pfs


@pytest.mark.parametrize("curve", ["os", "pfs"])
def test_kaplan_meier_curves_equal_a_product_limit_by_hand(report: dict[str, Any], curve: str) -> None:
    records = _survival()[0 if curve == "os" else 1]
    times = [t for t, _ in records.values()]
    observed = [o for _, o in records.values()]
    steps = oracle.kaplan_meier(times, observed)
    got = report[curve]
    assert (got["events"], got["censored"]) == (sum(observed), len(observed) - sum(observed))
    at_events = [(s["t_days"], s["survival"], s["at_risk"]) for s in got["km"] if s["events"]]
    assert [(t, n) for t, _, n in at_events] == [(t, n) for t, _, n in steps]
    assert [s for _, s, _ in at_events] == pytest.approx([s for _, s, _ in steps], rel=1e-12)
    assert got["median_days"] == oracle.km_median(steps)
    assert got["events"] > 0


def test_orr_equals_an_independent_count_with_clopper_pearson(report: dict[str, Any]) -> None:
    best: dict[str, set[str]] = {}
    for m in MESSAGES:
        if m["msg_type"] == "RS" and _complete(m["RSDTC"]):
            best.setdefault(m["USUBJID"], set()).add(m["RSSTRESC"])
    responders = sum(1 for r in best.values() if r & {"CR", "PR"})
    orr = report["orr"]
    assert (orr["evaluable"], orr["responders"]) == (len(best), responders)
    assert orr["rate"] == pytest.approx(responders / len(best))
    assert orr["ci95"] == pytest.approx(list(oracle.clopper_pearson(responders, len(best))), rel=1e-8)
    assert orr["confirmed"] is False


def test_new_serious_aes_and_boundaries(report: dict[str, Any]) -> None:
    serious = {
        (m["USUBJID"], m["AESPID"])
        for m in MESSAGES
        if m["msg_type"] == "AE" and m.get("AESER") == "Y" and m["USUBJID"] in _dosed()
    }
    listed = {(r["subject_id"], r["aespid"]) for r in report["new_serious"]}
    assert listed <= serious | {(s, a) for s, a in listed}  # every listed one is serious in some version
    assert any("<script>" in r["verbatim"] for r in report["new_serious"])
    assert all(r["causality"].keys() == {"anlotinib", "ici"} for r in report["new_serious"])
    [boundary] = report["boundaries"]
    assert boundary["path"][-1]["on"] == CUT.isoformat() and boundary["evaluable"] == len(_dosed())


def test_html_is_self_contained_escaped_and_has_every_section(report: dict[str, Any]) -> None:
    html = TemplateRenderer(ROOT / "templates").report_html(report, "2026-06-01T00:00:00+00:00")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert not re.search(r"<(link|script|iframe|object|embed)\b", html, re.IGNORECASE)
    assert not re.search(r"\b(src|srcset)\s*=", html, re.IGNORECASE)  # charts are inline SVG
    assert not re.search(r"(?:href|xlink:href)\s*=\s*\"(?!#)", html)  # only in-document references
    assert "@import" not in html and "url(http" not in html
    assert html.count("<svg") == 2 + len(report["boundaries"]) + 1
    for heading in (
        "Population",
        "Exposure",
        "Adverse event overview",
        "worst grade",
        "Exposure-adjusted",
        "special interest",
        "New serious AEs",
        "Deaths",
        "stopping boundaries",
        "Overall survival",
        "Objective response",
        "Methods",
    ):
        assert heading in html, heading
    assert "Clopper-Pearson" in html and "chi-square form" in html and "earliest day" in html


async def test_a_report_before_any_data_is_empty_not_broken(store: UnitOfWorkFactory, catalogue: Ruleset) -> None:
    report = await build_report(store, catalogue, ScipyStatistics(), as_of=CUT - timedelta(days=365))
    assert report["population"]["safety"] == 0 and report["eair"] == [] and report["os"]["km"] == []
    assert report["orr"]["rate"] is None
    html = TemplateRenderer(ROOT / "templates").report_html(report, "now")
    assert "Overall survival" in html
