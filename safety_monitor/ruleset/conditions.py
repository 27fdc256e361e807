"""Owns parsing each condition kind (`when:`) into its typed domain condition, with clinical sanity checks.

Each kind registers a parser in `CONDITION_PARSERS`; a new kind is a new entry, not a rewrite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from safety_monitor.domain.conditions.ae import DRUGS, NOT_ATTRIBUTED, SERIOUSNESS_CRITERIA, AeCondition, GradeSource
from safety_monitor.domain.conditions.cohort import BetaBinomial, Boundary, CohortCondition, Sprt
from safety_monitor.domain.conditions.deadline import DEFAULT_RELATED, DeadlineCondition
from safety_monitor.domain.conditions.finding import ABSOLUTE, Comparison, FindingCondition, ValueTest
from safety_monitor.domain.conditions.pattern import PatternCondition, PatternKind, Reading, hys_law_readings
from safety_monitor.domain.conditions.subject import SubjectCondition
from safety_monitor.domain.messages import MessageType, SubjectEventKind
from safety_monitor.domain.rules import Condition
from safety_monitor.ruleset.located_yaml import KeyPath
from safety_monitor.ruleset.parsing import (
    ParseContext,
    check_keys,
    did_you_mean,
    flag,
    grade,
    mapping,
    number,
    string_list,
    suggestion,
    whole,
)

ConditionParser = Callable[[ParseContext, dict[str, Any], KeyPath], Condition | None]

DOMAINS = {"lab": MessageType.LB, "vital": MessageType.VS, "ecg": MessageType.EG}


@cache
def ctcae_terms() -> frozenset[str]:
    """CTCAE terms the grader derives from values (package data, read once, lazily) plus hypertension."""
    text = resources.files("safety_monitor.data").joinpath("ctcae_v5.json").read_text(encoding="utf-8")
    return frozenset({c["term"] for c in json.loads(text)["criteria"]} | {"Hypertension"})


# --- ae ------------------------------------------------------------------------------------------------------

AE_KEYS = {
    "kind",
    "terms",
    "verbatim_contains",
    "soc",
    "grade_at_least",
    "grade_source",
    "serious",
    "seriousness",
    "related_to",
    "immune_related",
    "fatal",
}
IMMUNE_VALUES = {"Y", "N", "U", NOT_ATTRIBUTED}


def parse_ae(ctx: ParseContext, when: dict[str, Any], path: KeyPath) -> AeCondition | None:
    check_keys(ctx, when, path, AE_KEYS)
    ok = True
    terms = verbatim = socs = None
    if "terms" in when:
        terms = string_list(ctx, when["terms"], (*path, "terms"))
        ok &= terms is not None
    if "verbatim_contains" in when:
        verbatim = string_list(ctx, when["verbatim_contains"], (*path, "verbatim_contains"))
        ok &= verbatim is not None
    if "soc" in when:
        socs = string_list(ctx, when["soc"], (*path, "soc"))
        ok &= socs is not None
    level = grade(ctx, when.get("grade_at_least", 1), (*path, "grade_at_least"))
    ok &= level is not None
    source = GradeSource.INVESTIGATOR
    if "grade_source" in when:
        raw = when["grade_source"]
        if raw not in {s.value for s in GradeSource}:
            ctx.error(
                (*path, "grade_source"),
                f"grade_source {raw!r} is not one of investigator, derived, worst "
                "(the investigator's AETOXGR, the grade derived from values, or the worse of both)",
            )
            ok = False
        else:
            source = GradeSource(raw)
    immune: frozenset[str] | None = None
    if "immune_related" in when:
        values = string_list(ctx, when["immune_related"], (*path, "immune_related"))
        if values is not None:
            wrong = [v for v in values if v not in IMMUNE_VALUES]
            if wrong:
                ctx.error(
                    (*path, "immune_related"),
                    f"immune_related accepts Y, N, U and {NOT_ATTRIBUTED!r} (not yet attributed), got {wrong}",
                )
                ok = False
            immune = frozenset(values)
        else:
            ok = False
    serious = None
    if "serious" in when and when["serious"] is not None:
        serious = flag(ctx, when["serious"], (*path, "serious"))
        ok &= serious is not None
    fatal = None
    if "fatal" in when:
        fatal = flag(ctx, when["fatal"], (*path, "fatal"))
        ok &= fatal is not None
    seriousness: frozenset[str] = frozenset()
    if "seriousness" in when:
        criteria = string_list(ctx, when["seriousness"], (*path, "seriousness"))
        if criteria is not None:
            wrong = [c for c in criteria if c not in SERIOUSNESS_CRITERIA]
            for name in wrong:
                ctx.error(
                    (*path, "seriousness"),
                    f"seriousness criterion {name!r} is unknown{did_you_mean(name, set(SERIOUSNESS_CRITERIA))}",
                )
            ok &= not wrong
            seriousness = frozenset(criteria)
        else:
            ok = False
    related = _related_to(ctx, when, path)
    ok &= related is not None
    if ok and not (terms or verbatim or socs) and level == 1 and not (serious or seriousness or related or fatal):
        ctx.error(
            path,
            "this 'ae' condition matches every AE: name terms, verbatim_contains or soc, or a qualifier "
            "(grade_at_least above 1, serious, seriousness, related_to, fatal)",
        )
        return None
    if not ok or level is None or related is None:
        return None
    return AeCondition(
        terms=frozenset(t.casefold() for t in terms or ()),
        grade_at_least=level,
        immune_related=immune,
        serious=serious,
        verbatim_contains=tuple(v.casefold() for v in verbatim or ()),
        socs=frozenset(s.casefold() for s in socs or ()),
        grade_source=source,
        seriousness=seriousness,
        related_to=related,
        fatal=fatal,
    )


def _related_to(
    ctx: ParseContext, when: dict[str, Any], path: KeyPath
) -> tuple[tuple[str, frozenset[str]], ...] | None:
    if "related_to" not in when:
        return ()
    where = (*path, "related_to")
    raw = mapping(ctx, when["related_to"], where, "drug -> causality values, e.g. {anlotinib: [PROBABLE, RELATED]}")
    if raw is None:
        return None
    if not raw:
        ctx.error(where, f"related_to must name at least one drug ({', '.join(DRUGS)})")
        return None
    ok = check_keys(ctx, raw, where, set(DRUGS))
    result = []
    for drug in DRUGS:
        if drug in raw:
            values = string_list(ctx, raw[drug], (*where, drug))
            if values is None:
                ok = False
                continue
            result.append((drug, frozenset(v.upper() for v in values)))
    return tuple(result) if ok else None


# --- lab, vital, ecg -----------------------------------------------------------------------------------------

COMPARISON_KEYS = {c.value for c in Comparison}
FINDING_KEYS = {"kind", "tests", "term", "grade_at_least", "unit", *COMPARISON_KEYS}
_ULN_OR_BASELINE = {
    Comparison.X_ULN_AT_LEAST,
    Comparison.X_ULN_ABOVE,
    Comparison.X_ULN_BELOW,
    Comparison.X_BASELINE_AT_LEAST,
}


def _value_tests(ctx: ParseContext, raw: dict[str, Any], path: KeyPath) -> tuple[list[ValueTest], bool]:
    """The comparisons named in `raw` (with its `unit`), and whether they all parsed."""
    tests: list[ValueTest] = []
    ok = True
    unit = raw.get("unit")
    if unit is not None and (not isinstance(unit, str) or not unit.strip()):
        ctx.error((*path, "unit"), f"unit must be a unit name such as mmHg, got {unit!r}")
        ok, unit = False, None
    absolute = False
    for comparison in Comparison:
        if comparison.value not in raw:
            continue
        where = (*path, comparison.value)
        value = raw[comparison.value]
        if comparison is Comparison.BELOW_LLN:
            if value is not True:
                ctx.error(where, f"below_lln must be true (drop the key otherwise), got {value!r}")
                ok = False
                continue
            tests.append(ValueTest(comparison))
            continue
        if comparison in _ULN_OR_BASELINE:
            limit = number(ctx, value, where, above=0, hint=": a multiple of the reference, e.g. 3 for 3 x ULN")
        else:
            limit = number(ctx, value, where)
        if limit is None:
            ok = False
            continue
        if comparison in ABSOLUTE:
            absolute = True
            if unit is None:
                ctx.error(
                    where,
                    f"{comparison.value} needs a unit (e.g. unit: mmHg): a result in another unit is not compared",
                )
                ok = False
                continue
        tests.append(ValueTest(comparison, limit, unit.strip() if (comparison in ABSOLUTE and unit) else None))
    if unit is not None and not absolute and ok:
        ctx.error(
            (*path, "unit"),
            "unit applies to absolute values only (value_above, value_at_least, value_below, value_at_most)",
        )
        ok = False
    return tests, ok


def _term(ctx: ParseContext, raw: Any, path: KeyPath) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        ctx.error(path, f"term must be a CTCAE term name, got {raw!r}")
        return None
    known = ctcae_terms()
    if raw.strip() not in known:
        ctx.error(
            path, f"term {raw.strip()!r} is not a CTCAE term graded from values{did_you_mean(raw.strip(), known)}"
        )
        return None
    return raw.strip()


def _finding_parser(domain: MessageType) -> ConditionParser:
    def parse(ctx: ParseContext, when: dict[str, Any], path: KeyPath) -> FindingCondition | None:
        check_keys(ctx, when, path, FINDING_KEYS)
        kind = when["kind"]
        if "tests" not in when:
            ctx.error(path, f"a '{kind}' condition needs tests")
            return None
        tests = string_list(ctx, when["tests"], (*path, "tests"))
        term = level = None
        ok = tests is not None
        has_term, has_grade = "term" in when, "grade_at_least" in when
        if has_term != has_grade:
            ctx.error(
                path,
                f"a '{kind}' condition needs {'grade_at_least' if has_term else 'term'}: "
                "term and grade_at_least go together",
            )
            ok = False
        if has_term:
            term = _term(ctx, when["term"], (*path, "term"))
            ok &= term is not None
        if has_grade:
            level = grade(ctx, when["grade_at_least"], (*path, "grade_at_least"))
            ok &= level is not None
        value_tests, tests_ok = _value_tests(ctx, when, path)
        ok &= tests_ok
        if ok and term is None and not value_tests:
            ctx.error(
                path,
                f"a '{kind}' condition needs term and grade_at_least, or a value criterion "
                f"({', '.join(sorted(COMPARISON_KEYS))})",
            )
            return None
        if not ok or tests is None:
            return None
        return FindingCondition(domain, frozenset(t.upper() for t in tests), term, level, tuple(value_tests))

    return parse


# --- pattern -------------------------------------------------------------------------------------------------

PATTERN_KEYS: dict[PatternKind, set[str]] = {
    PatternKind.HYS_LAW: {"aminotransferase_x_uln", "bilirubin_x_uln", "alp_below_x_uln", "window_days"},
    PatternKind.REPEATED: {"any_of", "count", "window_days"},
    PatternKind.PERSISTENT: {"reading", "days"},
    PatternKind.TOGETHER: {"all_of", "window_days"},
}


def _reading(ctx: ParseContext, raw: Any, path: KeyPath) -> Reading | None:
    """`{lab: ALT, x_uln_above: 5}`: one domain key naming the test codes, and one comparison."""
    item = mapping(ctx, raw, path, "a reading such as {lab: ALT, x_uln_above: 5}")
    if item is None:
        return None
    check_keys(ctx, item, path, {*DOMAINS, "unit", *COMPARISON_KEYS})
    domains = [d for d in DOMAINS if d in item]
    if len(domains) != 1:
        ctx.error(
            path,
            "a reading names exactly one of lab, vital or ecg with its test codes, e.g. {lab: ALT, x_uln_above: 5}",
        )
        return None
    tests = string_list(ctx, item[domains[0]], (*path, domains[0]))
    value_tests, ok = _value_tests(ctx, item, path)
    if ok and len(value_tests) != 1:
        ctx.error(path, f"a reading needs exactly one comparison ({', '.join(sorted(COMPARISON_KEYS))})")
        return None
    if tests is None or not ok:
        return None
    return Reading(DOMAINS[domains[0]], frozenset(t.upper() for t in tests), value_tests[0])


def _readings(ctx: ParseContext, raw: Any, path: KeyPath, at_least: int) -> list[Reading] | None:
    if not isinstance(raw, list) or len(raw) < at_least:
        ctx.error(
            path,
            f"{path[-1]} must be a list of at least {at_least} reading(s) "
            "such as {vital: SYSBP, value_at_least: 160, unit: mmHg}",
        )
        return None
    readings = [_reading(ctx, item, (*path, index)) for index, item in enumerate(raw)]
    return None if any(r is None for r in readings) else [r for r in readings if r is not None]


def parse_pattern(ctx: ParseContext, when: dict[str, Any], path: KeyPath) -> PatternCondition | None:
    name = when.get("pattern")
    kinds = {k.value for k in PatternKind}
    if name not in kinds:
        shown = "missing" if name is None else f"{name!r} is unknown{did_you_mean(str(name), kinds)}"
        ctx.error(
            (*path, "pattern") if name is not None else path, f"pattern {shown}; one of {', '.join(sorted(kinds))}"
        )
        return None
    kind = PatternKind(name)
    allowed = {"kind", "pattern", *PATTERN_KEYS[kind]}
    ok = check_keys(ctx, when, path, allowed)
    window = 0
    if "window_days" in when:
        parsed = whole(ctx, when["window_days"], (*path, "window_days"), at_least=0)
        ok &= parsed is not None
        window = parsed or 0
    if kind is PatternKind.HYS_LAW:
        factors = {}
        for key, default in (("aminotransferase_x_uln", 3.0), ("bilirubin_x_uln", 2.0), ("alp_below_x_uln", 2.0)):
            value = number(ctx, when.get(key, default), (*path, key), above=0)
            ok &= value is not None
            factors[key] = value or default
        window = window if "window_days" in when else 14
        if not ok:
            return None
        return PatternCondition(kind, hys_law_readings(**factors), window_days=window)
    if kind is PatternKind.REPEATED:
        readings = _readings(ctx, when.get("any_of"), (*path, "any_of"), 1)
        count = whole(
            ctx,
            when.get("count", 2),
            (*path, "count"),
            at_least=2,
            hint=": a pattern of one reading is a vital/lab rule",
        )
        if "window_days" not in when:
            ctx.error(path, "a 'repeated' pattern needs window_days")
            ok = False
        if not ok or readings is None or count is None:
            return None
        return PatternCondition(kind, tuple(readings), window_days=window, count=count)
    if kind is PatternKind.PERSISTENT:
        reading = _reading(ctx, when.get("reading"), (*path, "reading"))
        days = whole(ctx, when.get("days"), (*path, "days"), at_least=1)
        if not ok or reading is None or days is None:
            return None
        return PatternCondition(kind, (reading,), days=days)
    readings = _readings(ctx, when.get("all_of"), (*path, "all_of"), 2)
    if not ok or readings is None:
        return None
    return PatternCondition(kind, tuple(readings), window_days=window)


# --- cohort --------------------------------------------------------------------------------------------------

COHORT_KEYS = {"kind", "terms", "grade_at_least", "evaluable", "boundary"}
BOUNDARY_KEYS = {"beta_binomial": {"theta", "prior", "cutoff"}, "sprt": {"p0", "p1", "alpha", "beta"}}


def _boundary(ctx: ParseContext, raw: Any, path: KeyPath) -> Boundary | None:
    item = mapping(ctx, raw, path, "{beta_binomial: {theta, prior, cutoff}} or {sprt: {p0, p1, alpha, beta}}")
    if item is None:
        return None
    if len(item) != 1 or next(iter(item)) not in BOUNDARY_KEYS:
        names = [str(k) for k in item]
        hint = suggestion(names[0], set(BOUNDARY_KEYS)) if len(names) == 1 else ""
        ctx.error(path, f"boundary must be exactly one of beta_binomial, sprt, got {names}{hint}")
        return None
    design, params = next(iter(item.items()))
    where = (*path, design)
    params = mapping(ctx, params, where, f"the {design} parameters {', '.join(sorted(BOUNDARY_KEYS[design]))}")
    if params is None or not check_keys(ctx, params, where, BOUNDARY_KEYS[design]):
        return None
    missing = sorted(BOUNDARY_KEYS[design] - params.keys())
    if missing:
        ctx.error(where, f"{design} needs {', '.join(missing)}")
        return None
    if design == "beta_binomial":
        prior = params["prior"]
        if not (isinstance(prior, list) and len(prior) == 2):
            ctx.error((*where, "prior"), f"prior must be [a, b] of a Beta(a, b) prior, got {prior!r}")
            return None
        values = [number(ctx, v, (*where, "prior", i)) for i, v in enumerate(prior)]
        theta = number(ctx, params["theta"], (*where, "theta"))
        cutoff = number(ctx, params["cutoff"], (*where, "cutoff"))
        if theta is None or cutoff is None or values[0] is None or values[1] is None:
            return None
        boundary: Boundary = BetaBinomial(theta, values[0], values[1], cutoff)
    else:
        p0, p1, alpha, beta = (number(ctx, params[k], (*where, k)) for k in ("p0", "p1", "alpha", "beta"))
        if p0 is None or p1 is None or alpha is None or beta is None:
            return None
        boundary = Sprt(p0, p1, alpha, beta)
    try:
        boundary.evaluate(0, 0)  # the boundaries module states what a valid design is; its words are the hint
    except ValueError as exc:
        ctx.error(where, f"{design}: {exc}")
        return None
    return boundary


def parse_cohort(ctx: ParseContext, when: dict[str, Any], path: KeyPath) -> CohortCondition | None:
    check_keys(ctx, when, path, COHORT_KEYS)
    missing = [k for k in ("terms", "grade_at_least", "boundary") if k not in when]
    if missing:
        ctx.error(path, f"a 'cohort' condition needs {', '.join(missing)}")
        return None
    terms = string_list(ctx, when["terms"], (*path, "terms"))
    level = grade(ctx, when["grade_at_least"], (*path, "grade_at_least"))
    boundary = _boundary(ctx, when["boundary"], (*path, "boundary"))
    days: int | None = 0
    if "evaluable" in when:
        evaluable = mapping(ctx, when["evaluable"], (*path, "evaluable"), "{min_days_on_treatment: N}")
        if evaluable is None or not check_keys(ctx, evaluable, (*path, "evaluable"), {"min_days_on_treatment"}):
            days = None
        else:
            days = whole(
                ctx,
                evaluable.get("min_days_on_treatment", 0),
                (*path, "evaluable", "min_days_on_treatment"),
                at_least=0,
            )
    if terms is None or level is None or boundary is None or days is None:
        return None
    return CohortCondition(frozenset(t.casefold() for t in terms), level, boundary, days)


# --- deadline ------------------------------------------------------------------------------------------------

DEADLINE_KEYS = {"kind", "related", "fatal_or_life_threatening_days", "other_days", "remind_days_before"}


def parse_deadline(ctx: ParseContext, when: dict[str, Any], path: KeyPath) -> DeadlineCondition | None:
    ok = check_keys(ctx, when, path, DEADLINE_KEYS)
    related = DEFAULT_RELATED
    if "related" in when:
        values = string_list(ctx, when["related"], (*path, "related"))
        ok &= values is not None
        related = frozenset(v.upper() for v in values or ())
    short = whole(
        ctx, when.get("fatal_or_life_threatening_days", 7), (*path, "fatal_or_life_threatening_days"), at_least=1
    )
    other = whole(ctx, when.get("other_days", 15), (*path, "other_days"), at_least=1)
    if short is not None and other is not None and short > other:
        ctx.error(
            (*path, "fatal_or_life_threatening_days"),
            f"fatal_or_life_threatening_days ({short}) must not exceed other_days ({other}): "
            "ICH E2A gives fatal or life-threatening SUSARs the shorter clock (7 against 15 days)",
        )
        ok = False
    reminders: list[int] = [3, 1]
    if "remind_days_before" in when:
        raw = when["remind_days_before"]
        if not isinstance(raw, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in raw):
            ctx.error(
                (*path, "remind_days_before"), f"remind_days_before must be a list of whole days >= 1, got {raw!r}"
            )
            ok = False
        else:
            reminders = raw
    if not ok or short is None or other is None:
        return None
    too_early = [d for d in reminders if d >= short]
    if too_early:
        ctx.error(
            (*path, "remind_days_before"),
            f"remind_days_before {too_early} would remind on or before day 0 of a {short}-day clock",
        )
        return None
    return DeadlineCondition(related, short, other, tuple(sorted(set(reminders), reverse=True)))


# --- subject -------------------------------------------------------------------------------------------------

SUBJECT_KEYS = {"kind", "events", "reason_contains"}


def parse_subject(ctx: ParseContext, when: dict[str, Any], path: KeyPath) -> SubjectCondition | None:
    check_keys(ctx, when, path, SUBJECT_KEYS)
    if "events" not in when:
        ctx.error(path, "a 'subject' condition needs events (e.g. [DIED])")
        return None
    events = string_list(ctx, when["events"], (*path, "events"))
    if events is None:
        return None
    known = {k.value for k in SubjectEventKind}
    wrong = [e for e in events if e not in known]
    for name in wrong:
        ctx.error((*path, "events"), f"subject event {name!r} is unknown{did_you_mean(name, known)}")
    reasons: list[str] | None = []
    if "reason_contains" in when:
        reasons = string_list(ctx, when["reason_contains"], (*path, "reason_contains"))
    if wrong or reasons is None:
        return None
    return SubjectCondition(frozenset(SubjectEventKind(e) for e in events), tuple(r.casefold() for r in reasons))


CONDITION_PARSERS: dict[str, ConditionParser] = {
    "ae": parse_ae,
    "lab": _finding_parser(MessageType.LB),
    "vital": _finding_parser(MessageType.VS),
    "ecg": _finding_parser(MessageType.EG),
    "pattern": parse_pattern,
    "cohort": parse_cohort,
    "deadline": parse_deadline,
    "subject": parse_subject,
}
