"""Rule files for every condition kind: each class of error is exact, with file, line, key path and hint, and
the good neighbour still loads."""

from pathlib import Path

import pytest

from safety_monitor.domain.conditions.ae import AeCondition, GradeSource
from safety_monitor.domain.conditions.cohort import BetaBinomial, CohortCondition, Sprt
from safety_monitor.domain.conditions.deadline import DeadlineCondition
from safety_monitor.domain.conditions.finding import Comparison, FindingCondition
from safety_monitor.domain.conditions.pattern import PatternCondition, PatternKind
from safety_monitor.domain.rules import Recommendation
from safety_monitor.ruleset.errors import ConfigInvalid
from safety_monitor.ruleset.loader import load_ruleset
from tests.unit.test_ruleset_loader import GOOD, errors_for

HEAD = "rules:\n  - id: x\n    title: t\n    severity: high\n"


def bad(when: str, extra: str = "") -> str:
    return f"{HEAD}    when: {when}\n{extra}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            bad("{kind: ae, terms: [A], grade_source: investigatr}"),
            "line 5 (rules[0].when.grade_source): grade_source 'investigatr' is not one of investigator, derived, "
            "worst (the investigator's AETOXGR, the grade derived from values, or the worse of both)",
        ),
        (
            bad("{kind: ae, terms: [A], related_to: {anlotnib: [PROBABLE]}}"),
            "line 5 (rules[0].when.related_to.anlotnib): 'anlotnib' is not an option (did you mean 'anlotinib'?)",
        ),
        (
            bad("{kind: ae, terms: [A], seriousness: [hospitalization]}"),
            "line 5 (rules[0].when.seriousness): seriousness criterion 'hospitalization' is unknown "
            "(did you mean 'hospitalisation'?)",
        ),
        (
            bad("{kind: ae}"),
            "line 5 (rules[0].when): this 'ae' condition matches every AE: name terms, verbatim_contains or soc, or "
            "a qualifier (grade_at_least above 1, serious, seriousness, related_to, fatal)",
        ),
        (
            bad("{kind: ae, terms: [A], fatal: yes please}"),
            "line 5 (rules[0].when.fatal): fatal must be true or false, got 'yes please'",
        ),
        (
            bad("{kind: lab, tests: [ALT], x_uln_at_least: 0}"),
            "line 5 (rules[0].when.x_uln_at_least): x_uln_at_least must be above 0, got 0: a multiple of the "
            "reference, e.g. 3 for 3 x ULN",
        ),
        (
            bad("{kind: vital, tests: [SYSBP], value_above: 160}"),
            "line 5 (rules[0].when.value_above): value_above needs a unit (e.g. unit: mmHg): a result in another "
            "unit is not compared",
        ),
        (
            bad("{kind: lab, tests: [ALT], term: Alanine aminotransferase increasd, grade_at_least: 2}"),
            "line 5 (rules[0].when.term): term 'Alanine aminotransferase increasd' is not a CTCAE term graded from "
            "values (did you mean 'Alanine aminotransferase increased'?)",
        ),
        (
            bad("{kind: lab, tests: [ALT], term: Alanine aminotransferase increased}"),
            "line 5 (rules[0].when): a 'lab' condition needs grade_at_least: term and grade_at_least go together",
        ),
        (
            bad(
                "{kind: ecg, tests: [QTCF], term: Electrocardiogram QT corrected interval prolonged, grade_at_least: 6}"
            ),
            "line 5 (rules[0].when.grade_at_least): grade_at_least: 6 is impossible: CTCAE grades run 1-5",
        ),
        (
            bad("{kind: pattern, pattern: hys_laws}"),
            "line 5 (rules[0].when.pattern): pattern 'hys_laws' is unknown (did you mean 'hys_law'?); one of "
            "hys_law, persistent, repeated, together",
        ),
        (
            bad(
                "{kind: pattern, pattern: repeated, any_of: [{vital: SYSBP, value_at_least: 160, unit: mmHg}], count: 1, window_days: 7}"
            ),
            "line 5 (rules[0].when.count): count must be at least 2, got 1: a pattern of one reading is a "
            "vital/lab rule",
        ),
        (
            bad("{kind: pattern, pattern: persistent, reading: {lab: ALT, vital: SYSBP, x_uln_above: 5}, days: 14}"),
            "line 5 (rules[0].when.reading): a reading names exactly one of lab, vital or ecg with its test codes, "
            "e.g. {lab: ALT, x_uln_above: 5}",
        ),
        (
            bad(
                "{kind: cohort, terms: [Pneumonitis], grade_at_least: 3, boundary: {beta_binomial: {theta: 1.5, prior: [0.2, 1.8], cutoff: 0.9}}}"
            ),
            "line 5 (rules[0].when.boundary.beta_binomial): beta_binomial: theta must be strictly between 0 and 1, "
            "got 1.5",
        ),
        (
            bad(
                "{kind: cohort, terms: [Pneumonitis], grade_at_least: 3, boundary: {sprt: {p0: 0.3, p1: 0.2, alpha: 0.05, beta: 0.2}}}"
            ),
            "line 5 (rules[0].when.boundary.sprt): sprt: p0 must be below p1 (H0 is the acceptable rate), got "
            "p0=0.3, p1=0.2",
        ),
        (
            bad("{kind: cohort, terms: [Pneumonitis], grade_at_least: 3, boundary: {bayes: {}}}"),
            "line 5 (rules[0].when.boundary): boundary must be exactly one of beta_binomial, sprt, got ['bayes']",
        ),
        (
            bad("{kind: deadline, fatal_or_life_threatening_days: 20, other_days: 15}"),
            "line 5 (rules[0].when.fatal_or_life_threatening_days): fatal_or_life_threatening_days (20) must not "
            "exceed other_days (15): ICH E2A gives fatal or life-threatening SUSARs the shorter clock (7 against "
            "15 days)",
        ),
        (
            bad("{kind: subject, events: [DEAD]}"),
            "line 5 (rules[0].when.events): subject event 'DEAD' is unknown (did you mean 'DIED'?)",
        ),
        (
            bad("{kind: ae, terms: [A]}", "    action: {recommend: pause, text: hold it}\n"),
            "line 6 (rules[0].action.recommend): action.recommend 'pause' is not one of continue, hold, "
            "discontinue, dsmb_review",
        ),
        (
            bad("{kind: ae, terms: [A]}", "    action: hold anlotinib\n"),
            "line 6 (rules[0].action): action must be a mapping: {recommend: one of continue, hold, discontinue, "
            "dsmb_review, text: the protocol action in words}",
        ),
        (
            bad("{kind: ae, terms: [A]}", "    rationale: {text: why, sauce: ALTER0303}\n"),
            "line 6 (rules[0].rationale.sauce): 'sauce' is not an option (did you mean 'source'?)",
        ),
        (
            bad("{kind: ae, terms: [A]}", "    annotations: {summary: '{{ subjectid }} grade {{ grade }}'}\n"),
            "line 6 (rules[0].annotations.summary): annotation 'summary' does not render: UndefinedError: "
            "'subjectid' is undefined",
        ),
        (
            bad("{kind: ae, terms: [A]}", "    annotations: {summary: '{{ grade '}\n"),
            "line 6 (rules[0].annotations.summary): annotation 'summary' does not render: TemplateSyntaxError: "
            "unexpected end of template, expected 'end of print statement'. (template line 1)",
        ),
    ],
    ids=[
        "grade-source",
        "drug-typo",
        "seriousness-typo",
        "ae-matches-everything",
        "fatal-type",
        "x-uln-zero",
        "absolute-needs-unit",
        "ctcae-term-typo",
        "term-without-grade",
        "ecg-grade-6",
        "pattern-typo",
        "repeated-count-1",
        "reading-two-domains",
        "beta-binomial-theta",
        "sprt-p0-above-p1",
        "boundary-kind",
        "deadline-order",
        "subject-event",
        "action-recommend",
        "action-string",
        "rationale-key",
        "annotation-undefined",
        "annotation-syntax",
    ],
)
def test_config_errors_of_each_kind_are_exact(tmp_path: Path, text: str, expected: str) -> None:
    assert errors_for(tmp_path, text) == [f"Invalid config at b_bad.yaml, {expected}"]


def test_the_good_neighbour_loads_alone(tmp_path: Path) -> None:
    (tmp_path / "a_good.yaml").write_text(GOOD)
    assert [r.id for r in load_ruleset(tmp_path).rules] == ["good-neighbour"]


def test_errors_of_several_kinds_are_reported_together(tmp_path: Path) -> None:
    text = (
        "rules:\n"
        "  - {id: a, title: t, severity: high, when: {kind: ae, terms: [A], grade_at_least: 7}}\n"
        "  - {id: b, title: t, severity: high, when: {kind: cohort, terms: [A]}}\n"
        "  - {id: c, title: t, severity: high, when: {kind: pattern, pattern: together, all_of: [{lab: TSH, x_uln_above: 1}]}}\n"
    )
    assert errors_for(tmp_path, text) == [
        "Invalid config at b_bad.yaml, line 2 (rules[0].when.grade_at_least): grade_at_least: 7 is impossible: "
        "CTCAE grades run 1-5",
        "Invalid config at b_bad.yaml, line 3 (rules[1].when): a 'cohort' condition needs grade_at_least, boundary",
        "Invalid config at b_bad.yaml, line 4 (rules[2].when.all_of): all_of must be a list of at least 2 "
        "reading(s) such as {vital: SYSBP, value_at_least: 160, unit: mmHg}",
    ]


def test_the_catalogue_parses_into_typed_conditions(catalogue) -> None:
    rules = {r.id: r for r in catalogue.rules}
    ae = rules["hypertension-ae-grade-3"].condition
    assert isinstance(ae, AeCondition) and ae.grade_source is GradeSource.WORST
    hys = rules["potential-hys-law"].condition
    assert isinstance(hys, PatternCondition) and hys.pattern is PatternKind.HYS_LAW and hys.window_days == 14
    cohort = rules["cohort-pneumonitis-haemorrhage-grade-3"].condition
    assert isinstance(cohort, CohortCondition) and cohort.boundary == BetaBinomial(0.10, 0.2, 1.8, 0.90)
    assert cohort.min_days_on_treatment == 21
    clock = rules["sae-reporting-clock"].condition
    assert isinstance(clock, DeadlineCondition) and (clock.fatal_days, clock.other_days) == (7, 15)
    assert rules["hemoptysis-grade-3"].recommendation is Recommendation.DISCONTINUE
    for rule in catalogue.rules:  # every shipped rule says why (with a source) and what to do
        assert rule.rationale and rule.rationale_source and rule.action and rule.recommendation, rule.id
    summary = dict(rules["hemoptysis"].annotations)["summary"]
    assert summary.render({"subject_id": "S-1", "term": "Haemoptysis", "grade": 3, "observed_on": "2026-05-01"}) == (
        "S-1: Haemoptysis grade 3 (onset 2026-05-01)"
    )


def test_value_criteria_and_sprt_parse(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "rules:\n"
        "  - {id: a, title: t, severity: high, when: {kind: ecg, tests: [QTCF], above_baseline_by: 60}}\n"
        "  - {id: b, title: t, severity: high, when: {kind: vital, tests: [SYSBP], value_at_least: 160, unit: mmHg}}\n"
        "  - id: c\n    title: t\n    severity: high\n"
        "    when: {kind: cohort, terms: [A], grade_at_least: 3, boundary: {sprt: {p0: 0.1, p1: 0.25, alpha: 0.05, beta: 0.2}}}\n"
    )
    rules = {r.id: r for r in load_ruleset(tmp_path).rules}
    a = rules["a"].condition
    assert isinstance(a, FindingCondition) and a.value_tests[0].comparison is Comparison.ABOVE_BASELINE_BY
    c = rules["c"].condition
    assert isinstance(c, CohortCondition) and c.boundary == Sprt(0.1, 0.25, 0.05, 0.2)


def test_a_broken_file_is_not_half_loaded(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(GOOD + bad("{kind: ae, terms: [A], grade_at_least: 0}").replace("rules:\n", ""))
    with pytest.raises(ConfigInvalid):
        load_ruleset(tmp_path)
