"""Rule files: each class of error is reported with file, line, key path and a hint; good neighbours load."""

from pathlib import Path

import pytest

from safety_monitor.domain.conditions.ae import AeCondition
from safety_monitor.ruleset.errors import ConfigInvalid
from safety_monitor.ruleset.loader import load_ruleset
from tests.conftest import ROOT

GOOD = """\
rules:
  - id: good-neighbour
    title: Any haemoptysis
    when: {kind: ae, terms: [Haemoptysis]}
    severity: critical
"""


def errors_for(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "a_good.yaml").write_text(GOOD)
    (tmp_path / "b_bad.yaml").write_text(text)
    with pytest.raises(ConfigInvalid) as caught:
        load_ruleset(tmp_path)
    return [str(e).replace(str(tmp_path) + "/", "") for e in caught.value.errors]


def test_the_trial_rules_load(catalogue) -> None:
    assert {"hypertension-grade-3", "hemoptysis", "pneumonitis-grade-2"} <= {r.id for r in catalogue.rules}
    pneumonitis = next(r for r in catalogue.rules if r.id == "pneumonitis-grade-2")
    assert isinstance(pneumonitis.condition, AeCondition)
    assert pneumonitis.condition.immune_related == frozenset({"Y", "unknown"})
    assert pneumonitis.source.endswith("pulmonary.yaml:40")


def test_the_hash_changes_with_the_content(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    first = load_ruleset(tmp_path).content_hash
    (tmp_path / "a.yaml").write_text(GOOD.replace("Any haemoptysis", "Any hemoptysis"))
    assert load_ruleset(tmp_path).content_hash != first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n  - id: x\n    title: t\n    when: {kind: ae, terms: [Pneumonitis], grade_at_least: 6}\n"
            "    severity: high\n",
            [
                "Invalid config at b_bad.yaml, line 4 (rules[0].when.grade_at_least): "
                "grade_at_least: 6 is impossible: CTCAE grades run 1-5"
            ],
        ),
        (
            "rules:\n  - id: x\n    title: t\n    when: {kind: ae, terms: [Pneumonitis]}\n    severity: high\n"
            "    grup_by: [subject]\n",
            [
                "Invalid config at b_bad.yaml, line 6 (rules[0].grup_by): 'grup_by' is not an option; allowed: "
                "action, annotations, id, labels, rationale, severity, title, when"
            ],
        ),
        (
            "rules:\n  - id: x\n    title: t\n    when: {kind: ae, terms: [Pneumonitis]}\n    severity: hihg\n"
            "    titel: oops\n",
            [
                "Invalid config at b_bad.yaml, line 5 (rules[0].severity): severity 'hihg' is not one of "
                "critical, high, medium, info",
                "Invalid config at b_bad.yaml, line 6 (rules[0].titel): 'titel' is not an option (did you mean 'title'?)",
            ],
        ),
        (
            "rules:\n  - id: x\n    title: t\n    when: {kind: labb, tests: [ALT]}\n    severity: high\n",
            ["Invalid config at b_bad.yaml, line 4 (rules[0].when.kind): kind 'labb' is unknown (did you mean 'lab'?)"],
        ),
        (
            "rules:\n  - id: good-neighbour\n    title: t\n    when: {kind: ae, terms: [Pneumonitis]}\n"
            "    severity: high\n",
            [
                "Invalid config at b_bad.yaml, line 2 (id): duplicate rule id 'good-neighbour': also defined at "
                "a_good.yaml:2"
            ],
        ),
        (
            "rules:\n  - id: x\n    title: t\n  - title: no id\n",
            [
                "Invalid config at b_bad.yaml, line 2 (rules[0]): rule 'x' is missing when, severity",
                "Invalid config at b_bad.yaml, line 4 (rules[1]): rule '(no id)' is missing id, when, severity",
            ],
        ),
        (
            "rules:\n  - id: x\n    title: t\n    when: {kind: ae, terms: [A], immune_related: [maybe]}\n"
            "    severity: high\n",
            [
                "Invalid config at b_bad.yaml, line 4 (rules[0].when.immune_related): immune_related accepts Y, N, U "
                "and 'unknown' (not yet attributed), got ['maybe']"
            ],
        ),
        (
            "rules: [\n",
            [
                "Invalid config at b_bad.yaml, line 2: not valid YAML: expected the node content, but found '<stream end>'"
            ],
        ),
        (
            "rules:\n  - id: x\n    id: y\n",
            ["Invalid config at b_bad.yaml, line 3: key 'id' appears twice in the same mapping"],
        ),
    ],
    ids=[
        "grade-6",
        "unknown-key",
        "typo-hint-and-severity",
        "unknown-kind",
        "duplicate-id",
        "missing-keys",
        "immune-values",
        "yaml-syntax",
        "duplicate-key",
    ],
)
def test_config_errors_are_exact_and_collected(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert errors_for(tmp_path, text) == expected


def test_errors_from_several_files_come_together(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(
        "rules:\n  - id: a\n    title: t\n    when: {kind: ae, terms: []}\n    severity: high\n"
    )
    (tmp_path / "two.yaml").write_text(
        "rules:\n  - id: b\n    title: t\n    when: {kind: vital, tests: [SYSBP]}\n    severity: high\n"
    )
    with pytest.raises(ConfigInvalid) as caught:
        load_ruleset(tmp_path)
    assert [(Path(e.file).name, e.line) for e in caught.value.errors] == [("one.yaml", 4), ("two.yaml", 4)]


def test_the_shipped_rules_directory_checks_clean() -> None:
    assert len(load_ruleset(ROOT / "rules").rules) == 23
