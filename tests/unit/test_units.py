"""The unit table: exact equivalents share a canonical form and factor; nothing is rescaled or guessed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from safety_monitor.domain import units
from safety_monitor.domain.conditions.finding import Comparison, ValueTest
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.messages import Envelope, Finding, MessageType


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("10^3/mL", "/uL"),  # 10^3 per 1000 uL = 1 per uL (admiral's legacy conventional unit)
        ("1/uL", "/mm3"),  # admiral's CD4 spelling; 1 mm3 = 1 uL
        ("cells/mm3", "10^6/L"),
        ("10^9/L", "10^3/uL"),
        ("10^9/l", "10*9/L"),  # case and UCUM's "*" for powers
        ("g/24h", "g/(24.h)"),
        ("mmol/L", "Mmol/L"),
    ],
)
def test_exact_equivalents(first: str, second: str) -> None:
    assert units.equivalent(first, second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("10^9/L", "/uL"),  # the same kind of quantity, 1000 x apart: never the same unit
        ("g/L", "g/dL"),
        ("mmol/L", "umol/L"),
        ("mmol/L", "mEq/L"),  # equal only for monovalent ions: a criterion says so, the table does not
        ("10^9/L", "10^9/M"),  # unknown spelling
    ],
)
def test_not_equivalent(first: str, second: str) -> None:
    assert not units.equivalent(first, second)


def test_canonical_forms_and_factors() -> None:
    assert units.lookup(" 10^3/mL ") == units.Unit("/uL", 1.0, "10^3/uL", 1000.0)
    platelet_si = units.lookup("10^9/L")
    assert platelet_si is not None and platelet_si.key == ("/uL", 1000.0)
    assert units.lookup("G/L") == units.lookup("g/L")  # giga per litre is left out: folded it reads grams
    assert units.lookup("furlongs") is None
    assert units.lookup(None) is None


def test_spellings_of_lists_every_spelling_of_one_unit() -> None:
    spellings = units.spellings_of(("/uL", 1.0))
    assert {"/uL", "1/uL", "/mm3", "cells/mm3", "10^3/mL"} <= set(spellings)
    assert "10^9/L" not in spellings


@pytest.mark.parametrize(
    ("unit", "holds"),
    [("10^9/L", True), ("10^3/uL", True), ("10*9/L", True), ("/uL", None), ("10^3/mL", None), (None, None)],
)
def test_rule_value_tests_compare_in_exactly_equivalent_units_only(unit: str | None, holds: bool | None) -> None:
    # A rule's "value_below: 50 10^9/L" compares a count sent in 10^3/uL (the same unit); a count in /uL is a
    # thousand times another number and is not compared ("cannot compare" never matches).
    envelope = Envelope("m1", MessageType.LB, datetime(2026, 4, 1, tzinfo=UTC), "012", 1, "ST", "S1")
    finding = Finding(envelope, "PLAT", 40.0, unit, PartialDate.parse("2026-04-01"), False)
    assert ValueTest(Comparison.VALUE_BELOW, 50, "10^9/L").holds(finding) is holds
