"""Rules a message visits: the ruleset's index by PT and test finds exactly the hits, in the order, of every rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from safety_monitor.cli.rule_tests import default_grader
from safety_monitor.domain.messages import AdverseEvent, Finding
from safety_monitor.domain.rules import Ruleset, evaluate_ae, evaluate_finding
from safety_monitor.ruleset.loader import load_ruleset
from streams.decoding import Decoded, decode
from tests.conftest import ROOT
from tests.factories import ae, lb, vs


@pytest.fixture(scope="module")
def catalogue() -> Ruleset:
    return load_ruleset(ROOT / "rules")


def message(payload: dict[str, Any]) -> Any:
    decoded = decode(json.dumps(payload), "t:1")
    assert isinstance(decoded, Decoded), getattr(decoded, "reason", "")
    return decoded.message


AES = [
    ae(term="Haemoptysis", grade=3),
    ae(term="HAEMOPTYSIS", grade=1),  # PTs match case-insensitively
    ae(term="Diarrhoea", grade=2, soc="Gastrointestinal disorders"),
    ae(term="Hypertension", grade=4, soc="Vascular disorders", AESDTH="Y", AEOUT="FATAL"),
    ae(term="Skin reaction", grade=2, soc="Skin", AETERM="hand-foot syndrome"),  # a verbatim rule, PT named nowhere
    ae(term="Fatigue", grade=5, soc="General disorders"),  # no rule names the PT; fatal-ae covers any AE
    ae(term="Fatigue", grade=1, soc="General disorders"),
]


@pytest.mark.parametrize("payload", AES, ids=[f"{m['AEDECOD']}-G{m['AETOXGR']}" for m in AES])
def test_an_ae_gets_the_hits_of_every_ae_rule(catalogue: Ruleset, payload: dict[str, Any]) -> None:
    event = message(payload)
    assert isinstance(event, AdverseEvent)
    every = [rule.id for rule in catalogue.ae_rules if rule.condition.grade(event) is not None]
    assert [hit.rule.id for hit in evaluate_ae(catalogue, event, "5.0")] == every


FINDINGS = [
    lb(test="ALT", value=212),
    lb(test="AST", value=130),
    lb(test="PLAT", value=40, LBSTRESU="10^9/L", LBSTNRLO=150, LBSTNRHI=400, LBNRIND="LOW"),
    lb(test="GLUC", value=5.1, LBSTRESU="mmol/L", LBSTNRLO=3.9, LBSTNRHI=6.1, LBNRIND="NORMAL"),
    vs(test="SYSBP", value=172),
    vs(test="DIABP", value=104),
    vs(test="HR", value=80, VSSTRESU="beats/min"),
]


@pytest.mark.parametrize("payload", FINDINGS, ids=lambda m: f"{m.get('LBTESTCD', m.get('VSTESTCD'))}")
def test_a_finding_gets_the_hits_of_every_finding_rule_and_visits_the_patterns_that_read_its_test(
    catalogue: Ruleset, payload: dict[str, Any]
) -> None:
    finding = message(payload)
    assert isinstance(finding, Finding)
    grades = default_grader().grade(finding, None, {})
    every = [rule.id for rule in catalogue.finding_rules if rule.condition.match(finding, grades) is not None]
    assert [hit.rule.id for hit in evaluate_finding(catalogue, finding, grades, "5.0")] == every

    reading = [rule.id for rule in catalogue.pattern_rules if any(r.applies(finding) for r in rule.condition.readings)]
    assert [rule.id for rule in catalogue.pattern_rules_for(finding)] == reading


def test_the_index_is_not_empty_where_the_catalogue_names_tests(catalogue: Ruleset) -> None:
    # A guard for the tests above: they would pass on an index that finds nothing if no rule matched at all.
    hits = [evaluate_finding(catalogue, f, default_grader().grade(f, None, {}), "5.0") for f in map(message, FINDINGS)]
    assert {h.rule.id for found in hits for h in found} >= {"alt-grade-2", "hypertension-grade-3", "platelets-below-50"}
    assert {h.rule.id for h in evaluate_ae(catalogue, message(AES[4]), "5.0")} == {"hand-foot-skin-reaction-grade-2"}
