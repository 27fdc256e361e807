"""The indexed inhibition (one lookup per rule) answers exactly as the plain rule: every rule, every open alert."""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from safety_monitor.domain.routing import (
    Inhibitions,
    InhibitionSources,
    InhibitRule,
    Labels,
    Matcher,
    MatchOp,
    matches_all,
)

# Few names and values, so that sources, targets and equal labels collide often; "" is a value too (a label
# present but empty reads like a missing one).
LABEL_NAMES = ("severity", "grade", "subject_id", "study_id", "term")
VALUES = ("", "a", "b", "5", "medium")

labels_st = st.dictionaries(st.sampled_from(LABEL_NAMES), st.sampled_from(VALUES), max_size=len(LABEL_NAMES))
matcher_st = st.builds(
    Matcher.of,
    st.sampled_from(LABEL_NAMES),
    st.sampled_from(list(MatchOp)),
    st.sampled_from(("", "a", "b", "5", "a|b", "[0-9]", "med.*")),
)
rule_st = st.builds(
    InhibitRule,
    source=st.lists(matcher_st, max_size=2).map(tuple),
    target=st.lists(matcher_st, max_size=2).map(tuple),
    equal=st.lists(st.sampled_from(LABEL_NAMES), max_size=3).map(tuple),
    name=st.text(alphabet="xyz", max_size=3),
)
# Keys may repeat (a receiver's log entry per alert), and the target may be among the open alerts itself.
open_alerts_st = st.lists(st.tuples(st.sampled_from(("k1", "k2", "k3", "k4")), labels_st), max_size=8)


def plain_rule(
    rules: Iterable[InhibitRule], target: Labels, target_key: str, open_alerts: Iterable[tuple[str, Labels]]
) -> tuple[InhibitRule, str] | None:
    """The rule as stated (and as it was computed before the index): every rule against every open alert."""
    sources = list(open_alerts)
    for rule in rules:
        if not matches_all(rule.target, target):
            continue
        for key, labels in sources:
            if key == target_key or not matches_all(rule.source, labels):
                continue
            if all(labels.get(name, "") == target.get(name, "") for name in rule.equal):
                return rule, key
    return None


@settings(max_examples=400, deadline=None)
@given(
    rules=st.lists(rule_st, max_size=3),
    open_alerts=open_alerts_st,
    target=labels_st,
    target_key=st.sampled_from(("k1", "k2", "other")),
)
def test_indexed_inhibition_equals_the_plain_rule(
    rules: list[InhibitRule], open_alerts: list[tuple[str, dict[str, str]]], target: dict[str, str], target_key: str
) -> None:
    index = Inhibitions.index(rules, open_alerts)
    assert index.inhibiting(target, target_key) == plain_rule(rules, target, target_key, open_alerts)


def test_the_first_rule_and_the_first_source_in_order_win() -> None:
    death = InhibitRule((Matcher.of("grade", "=", "5"),), (), ("subject_id",), "death")
    any_high = InhibitRule((Matcher.of("severity", "=", "high"),), (), ("subject_id",), "high")
    sources = [("self", {"grade": "5", "subject_id": "S1"}), ("b", {"grade": "5", "subject_id": "S1"})]
    sources += [("c", {"grade": "5", "severity": "high", "subject_id": "S1"})]
    index = Inhibitions.index([death, any_high], sources)
    assert index.inhibiting({"subject_id": "S1"}, "self") == (death, "b")  # itself skipped, then file order
    assert index.inhibiting({"subject_id": "S2"}, "self") is None
    assert Inhibitions.index([any_high], sources).inhibiting({"subject_id": "S1"}, "c") is None  # only itself


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(rule_st, max_size=3),
    open_alerts=open_alerts_st,
    page=st.integers(min_value=1, max_value=4),
    target=labels_st,
    target_key=st.sampled_from(("k1", "k2", "other")),
)
def test_sources_fed_a_page_at_a_time_answer_as_all_at_once(
    rules: list[InhibitRule],
    open_alerts: list[tuple[str, dict[str, str]]],
    page: int,
    target: dict[str, str],
    target_key: str,
) -> None:
    sources = InhibitionSources(tuple(rules))
    for start in range(0, len(open_alerts), page):
        sources.add(open_alerts[start : start + page])
    paged = sources.build()
    assert paged.inhibiting(target, target_key) == plain_rule(rules, target, target_key, open_alerts)
    assert paged == Inhibitions.index(rules, open_alerts)
