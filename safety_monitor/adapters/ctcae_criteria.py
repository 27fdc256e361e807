"""Owns loading the CTCAE criteria file: version -> package file, strict validation, all errors at once."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from importlib import resources
from typing import TypeVar, cast

from safety_monitor.domain.ctcae import (
    INPUTS,
    OPS,
    REFERENCES,
    CriteriaSet,
    Criterion,
    Direction,
    GradeRule,
    Input,
    MissingInput,
    Op,
    TestCodeTerms,
    Threshold,
    UnitSystem,
    unit_key,
)
from safety_monitor.domain.messages import MessageType
from safety_monitor.domain.units import lookup

DATA_PACKAGE = "safety_monitor.data"
# Adding CTCAE v6.0 is a data change: drop ctcae_v6.json beside this one and add a line here.
CRITERIA_FILES: Mapping[str, str] = {"5.0": "ctcae_v5.json"}

_RECORD_KEYS = {
    "term",
    "ctcae_text",
    "direction",
    "unit_system",
    "units",
    "inputs",
    "required",
    "result",
    "ordinal",
    "grades",
    "grades_if_baseline_high",
    "comment",
}
_RULE_KEYS = {
    "grade",
    "op",
    "value",
    "factor",
    "of",
    "plus",
    "when_missing",
    "provisional",
    "assumption",
    "also",
}
_COND_KEYS = {"op", "value", "factor", "of", "plus"}
_TOP_KEYS = {"ctcae_version", "about", "precision_decimals", "criteria", "test_codes"}
_TEST_KEYS = {"test_code", "domain", "low", "high", "specimens", "specimen_required", "plausible_min"}


class CriteriaFileError(ValueError):
    """The criteria file is not valid; `errors` lists every problem found, each with where and a hint."""

    def __init__(self, source: str, errors: Sequence[str]) -> None:
        self.source = source
        self.errors = tuple(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"Invalid CTCAE criteria file {source}: {len(self.errors)} error(s)\n{lines}")


def load_criteria(version: str = "5.0") -> CriteriaSet:
    """Load and validate the packaged criteria for a CTCAE version (the version is configuration)."""
    name = CRITERIA_FILES.get(version)
    if name is None:
        known = ", ".join(sorted(CRITERIA_FILES))
        raise CriteriaFileError(f"CTCAE v{version}", [f"no criteria file for CTCAE v{version} (known: {known})"])
    text = resources.files(DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    return parse_criteria_text(text, source=f"{DATA_PACKAGE}/{name}", expected_version=version)


def parse_criteria_text(text: str, *, source: str, expected_version: str | None = None) -> CriteriaSet:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CriteriaFileError(
            source, [f"line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"]
        ) from None
    return parse_criteria(doc, source=source, expected_version=expected_version)


def parse_criteria(doc: object, *, source: str, expected_version: str | None = None) -> CriteriaSet:
    """Turn the decoded JSON into domain criteria, collecting every error before raising."""
    errors: list[str] = []
    if not isinstance(doc, dict):
        raise CriteriaFileError(source, ["top level must be an object with ctcae_version, criteria, test_codes"])
    for key in sorted(set(doc) - _TOP_KEYS):
        errors.append(f"top level: unknown key {key!r} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    version = doc.get("ctcae_version")
    if not isinstance(version, str) or not version:
        errors.append("top level: ctcae_version must be a string such as '5.0'")
        version = expected_version or "?"
    elif expected_version is not None and version != expected_version:
        errors.append(f"top level: file says CTCAE v{version} but was loaded as v{expected_version}")
    digits = doc.get("precision_decimals", 6)
    if not isinstance(digits, int) or isinstance(digits, bool) or not 0 <= digits <= 12:
        errors.append("top level: precision_decimals must be a whole number 0-12 (decimal places compared)")
        digits = 6
    raw_criteria = doc.get("criteria")
    criteria: list[Criterion] = []
    if not isinstance(raw_criteria, list) or not raw_criteria:
        errors.append("top level: criteria must be a non-empty list of records")
        raw_criteria = []
    for index, raw in enumerate(raw_criteria):
        crit = _parse_record(index, raw, version, digits, errors)
        if crit is not None:
            criteria.append(crit)
    # Terms named by any record, valid or not: a broken record must not cascade into test-code errors.
    terms = {r["term"] for r in raw_criteria if isinstance(r, dict) and isinstance(r.get("term"), str)}
    test_codes = _parse_test_codes(doc.get("test_codes"), terms, errors)
    _check_duplicates(criteria, errors)
    if errors:
        raise CriteriaFileError(source, errors)
    return CriteriaSet(ctcae_version=version, criteria=tuple(criteria), test_codes=test_codes)


def _where(index: int, raw: object) -> str:
    term = raw.get("term") if isinstance(raw, dict) else None
    return f"criteria[{index}]" + (f" ({term})" if isinstance(term, str) else "")


def _parse_record(index: int, raw: object, version: str, digits: int, errors: list[str]) -> Criterion | None:
    if not isinstance(raw, dict):
        errors.append(f"criteria[{index}]: must be an object")
        return None
    where = _where(index, raw)
    start = len(errors)
    for key in sorted(set(raw) - _RECORD_KEYS):
        errors.append(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(_RECORD_KEYS))})")
    term = raw.get("term")
    if not isinstance(term, str) or not term.strip():
        errors.append(f"{where}: term must be the CTCAE term name")
        term = "?"
    text = raw.get("ctcae_text")
    if not (isinstance(text, dict) and set(text) == set("12345") and all(isinstance(v, str) for v in text.values())):
        errors.append(f"{where}: ctcae_text must map grades '1'..'5' to the verbatim CTCAE text ('' when undefined)")
        text = {}
    elif not any(v.strip() for v in text.values()):
        errors.append(f"{where}: ctcae_text is empty: copy the grade texts from NCI's CTCAE term list")
    comment = raw.get("comment")
    if not isinstance(comment, str) or not comment.strip():
        errors.append(f"{where}: comment is required: record every assumption behind the thresholds")
        comment = ""
    direction = _enum(Direction, raw.get("direction"), f"{where}: direction", errors)
    unit_system = _enum(UnitSystem, raw.get("unit_system"), f"{where}: unit_system", errors)
    units = raw.get("units")
    if not isinstance(units, list) or not all(isinstance(u, str) and u.strip() for u in units):
        errors.append(f"{where}: units must be a list of unit strings")
        units = []
    elif unit_system is UnitSystem.ANY and units:
        errors.append(f"{where}: unit_system 'any' takes no units (it applies whatever the unit)")
    elif unit_system in (UnitSystem.SI, UnitSystem.CONVENTIONAL) and not units:
        errors.append(f'{where}: unit_system {unit_system.value} needs the accepted units, e.g. ["mmol/L"]')
    else:
        for unit in units:
            if lookup(unit) is None:
                errors.append(
                    f"{where}: unit {unit!r} is not in the unit table (safety_monitor/domain/units.py): "
                    "add it there with its canonical form and exact factor"
                )
    inputs = _inputs(raw.get("inputs"), f"{where}: inputs", errors)
    required = _inputs(raw.get("required", ["value"]), f"{where}: required", errors)
    for name in required:
        if name not in inputs:
            errors.append(f"{where}: required input {name!r} is not listed in inputs")
    result = raw.get("result", "numeric")
    ordinal: dict[str, int] | None = None
    if result == "ordinal":
        raw_ord = raw.get("ordinal")
        if not isinstance(raw_ord, dict) or not raw_ord:
            errors.append(f"{where}: an ordinal record needs 'ordinal': {{result text: grade}}")
        else:
            ordinal = {}
            for key, grade in raw_ord.items():
                if not isinstance(grade, int) or isinstance(grade, bool) or not 0 <= grade <= 5:
                    errors.append(f"{where}: ordinal[{key!r}] = {grade!r}: grades run 0-5")
                else:
                    ordinal[str(key).strip().upper()] = grade
    elif result != "numeric":
        errors.append(f"{where}: result must be 'numeric' or 'ordinal', got {result!r}")
    rules = _rules(raw.get("grades"), f"{where}: grades", inputs, errors, allow_empty=result == "ordinal")
    high_rules: tuple[GradeRule, ...] = ()
    if "grades_if_baseline_high" in raw:
        high_rules = _rules(raw["grades_if_baseline_high"], f"{where}: grades_if_baseline_high", inputs, errors)
        if "baseline_high" not in inputs:
            errors.append(f"{where}: grades_if_baseline_high needs 'baseline_high' in inputs")
    if len(errors) > start or direction is None or unit_system is None:
        return None
    return Criterion(
        term=term,
        direction=direction,
        unit_system=unit_system,
        units=tuple(units),
        inputs=inputs,
        required=required,
        rules=rules,
        ctcae_text=dict(text),
        comment=comment,
        ctcae_version=version,
        rules_if_baseline_high=high_rules,
        ordinal=ordinal,
        precision_decimals=digits,
    )


_E = TypeVar("_E", bound=StrEnum)


def _enum(kind: type[_E], raw: object, where: str, errors: list[str]) -> _E | None:
    allowed = [m.value for m in kind]
    if not isinstance(raw, str) or raw not in allowed:
        errors.append(f"{where} is {raw!r}; allowed: {', '.join(allowed)}")
        return None
    return kind(raw)


def _inputs(raw: object, where: str, errors: list[str]) -> tuple[Input, ...]:
    if not isinstance(raw, list) or not raw:
        errors.append(f"{where} must be a non-empty list drawn from {', '.join(INPUTS)}")
        return ()
    bad = [x for x in raw if x not in INPUTS]
    if bad:
        errors.append(f"{where}: unknown input(s) {', '.join(map(repr, bad))}; allowed: {', '.join(INPUTS)}")
        return ()
    return tuple(cast(Input, x) for x in raw)


def _threshold(raw: dict[str, object], where: str, inputs: tuple[Input, ...], errors: list[str]) -> Threshold | None:
    op = raw.get("op")
    if op not in OPS:
        errors.append(f"{where}: op is {op!r}; allowed: {', '.join(OPS)} (no expressions, no eval)")
        return None
    value, of = raw.get("value"), raw.get("of")
    if (value is None) == (of is None):
        errors.append(f"{where}: give exactly one of 'value' (absolute) or 'of' (lln, uln or baseline)")
        return None
    factor, plus = raw.get("factor", 1), raw.get("plus", 0)
    for name, number in (("value", value), ("factor", factor), ("plus", plus)):
        if number is not None and (not isinstance(number, int | float) or isinstance(number, bool)):
            errors.append(f"{where}: {name} must be a number, got {number!r}")
            return None
    if of is not None:
        if of not in REFERENCES:
            errors.append(f"{where}: of is {of!r}; allowed: {', '.join(REFERENCES)}")
            return None
        if of not in inputs:
            errors.append(f"{where}: uses {of!r} but the record's inputs do not list it")
            return None
    elif "factor" in raw or "plus" in raw:
        errors.append(f"{where}: factor/plus only apply with 'of'")
        return None
    return Threshold(
        op=cast(Op, op),
        value=None if value is None else float(cast(float, value)),
        of=of,
        factor=float(cast(float, factor)),
        plus=float(cast(float, plus)),
    )


def _rules(
    raw: object, where: str, inputs: tuple[Input, ...], errors: list[str], *, allow_empty: bool = False
) -> tuple[GradeRule, ...]:
    if not isinstance(raw, list) or (not raw and not allow_empty):
        errors.append(f"{where} must be a list of thresholds, highest grade first")
        return ()
    rules: list[GradeRule] = []
    previous = 6
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, dict):
            errors.append(f'{here}: must be an object like {{"grade": 3, "op": ">", "factor": 5, "of": "uln"}}')
            continue
        for key in sorted(set(item) - _RULE_KEYS):
            errors.append(f"{here}: unknown key {key!r} (allowed: {', '.join(sorted(_RULE_KEYS))})")
        grade = item.get("grade")
        if not isinstance(grade, int) or isinstance(grade, bool) or not 1 <= grade <= 5:
            errors.append(f"{here}: grade {grade!r} is impossible: CTCAE grades run 1-5 (0 is 'none held')")
            continue
        if grade > previous:
            errors.append(f"{here}: grade {grade} after grade {previous}: list thresholds highest grade first")
        previous = grade
        threshold = _threshold(item, here, inputs, errors)
        also: list[Threshold] = []
        raw_also = item.get("also", [])
        if not isinstance(raw_also, list):
            errors.append(f"{here}: also must be a list of conditions")
            raw_also = []
        for j, cond in enumerate(raw_also):
            if not isinstance(cond, dict):
                errors.append(f"{here}.also[{j}]: must be an object")
                continue
            for key in sorted(set(cond) - _COND_KEYS):
                errors.append(f"{here}.also[{j}]: unknown key {key!r}")
            parsed = _threshold(cond, f"{here}.also[{j}]", inputs, errors)
            if parsed is not None:
                also.append(parsed)
        when_missing = item.get("when_missing", MissingInput.CANNOT_GRADE.value)
        if when_missing not in [m.value for m in MissingInput]:
            errors.append(f"{here}: when_missing is {when_missing!r}; allowed: cannot_grade, skip")
            continue
        provisional = item.get("provisional", False)
        assumption = item.get("assumption", "")
        if not isinstance(provisional, bool):
            errors.append(f"{here}: provisional must be true or false")
            continue
        if not isinstance(assumption, str) or (provisional and not assumption.strip()):
            errors.append(f"{here}: a provisional threshold needs an 'assumption' saying what was assumed")
            continue
        if threshold is None:
            continue
        rules.append(
            GradeRule(
                grade=grade,
                threshold=threshold,
                also=tuple(also),
                when_missing=MissingInput(when_missing),
                provisional=provisional,
                assumption=assumption,
            )
        )
    return tuple(rules)


def _parse_test_codes(raw: object, terms: set[str], errors: list[str]) -> dict[str, TestCodeTerms]:
    if not isinstance(raw, list) or not raw:
        errors.append("top level: test_codes must be a non-empty list mapping test codes to low/high terms")
        return {}
    table: dict[str, TestCodeTerms] = {}
    for i, item in enumerate(raw):
        here = f"test_codes[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{here}: must be an object")
            continue
        for key in sorted(set(item) - _TEST_KEYS):
            errors.append(f"{here}: unknown key {key!r} (allowed: {', '.join(sorted(_TEST_KEYS))})")
        code = item.get("test_code")
        if not isinstance(code, str) or not code.strip():
            errors.append(f"{here}: test_code must be an SDTM test code such as 'ALT'")
            continue
        here = f"{here} ({code})"
        domain = item.get("domain")
        if domain not in ("LB", "EG"):
            errors.append(f"{here}: domain is {domain!r}; allowed: LB, EG (vital signs are graded in grading.py)")
            continue
        low, high = item.get("low"), item.get("high")
        for side, term in (("low", low), ("high", high)):
            if term is not None and (not isinstance(term, str) or term not in terms):
                errors.append(f"{here}: {side} term {term!r} has no criteria record (check the spelling)")
        if low is None and high is None:
            errors.append(f"{here}: give a low or a high term")
        specimens = item.get("specimens", [])
        if not isinstance(specimens, list) or not all(isinstance(s, str) for s in specimens):
            errors.append(f"{here}: specimens must be a list of LBSPEC values")
            specimens = []
        required = item.get("specimen_required", False)
        if not isinstance(required, bool) or (required and not specimens):
            errors.append(f"{here}: specimen_required must be true/false and needs specimens")
            required = False
        plausible_min, plausible_unit = _plausible(item.get("plausible_min"), here, errors)
        key = code.strip().upper()
        if key in table:
            errors.append(f"{here}: test code listed twice")
        table[key] = TestCodeTerms(
            test_code=key,
            domain=MessageType(domain),
            low=low if isinstance(low, str) else None,
            high=high if isinstance(high, str) else None,
            specimens=frozenset(s.strip().upper() for s in specimens),
            specimen_required=required,
            plausible_min=plausible_min,
            plausible_unit=plausible_unit,
        )
    return table


def _plausible(raw: object, where: str, errors: list[str]) -> tuple[float | None, str]:
    """`{"value": 1000, "unit": "/uL", "comment": "..."}`: the lowest plausible result (a unit-typo screen)."""
    if raw is None:
        return None, ""
    hint = 'plausible_min must be {"value": <number > 0>, "unit": <a unit of the unit table>, "comment": <why>}'
    if not isinstance(raw, dict) or set(raw) != {"value", "unit", "comment"}:
        errors.append(f"{where}: {hint}")
        return None, ""
    value, unit, comment = raw["value"], raw["unit"], raw["comment"]
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or value <= 0
        or not isinstance(unit, str)
        or lookup(unit) is None
        or not isinstance(comment, str)
        or not comment.strip()
    ):
        errors.append(f"{where}: {hint}")
        return None, ""
    return float(value), unit


def _check_duplicates(criteria: Sequence[Criterion], errors: list[str]) -> None:
    seen: dict[tuple[str, object], str] = {}
    for crit in criteria:
        for unit in crit.units or ("(any)",):
            key: tuple[str, object] = (crit.term, unit_key(unit))
            if crit.is_ordinal:
                key = (crit.term, "(ordinal)")
            if key in seen:
                same = "" if seen[key] == unit else f" (the same unit as {seen[key]}, domain/units.py)"
                errors.append(f"{crit.term}: unit {unit}{same} is accepted by two records; a unit must pick one record")
            seen[key] = unit
