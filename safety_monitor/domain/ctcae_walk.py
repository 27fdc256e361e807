"""Owns the compiled CTCAE walk: one criterion's clauses turned once into a Python function, for batch grading."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from safety_monitor.domain.ctcae import (
    REFERENCE_LABELS,
    REFERENCES,
    Criterion,
    GradeRule,
    MissingInput,
    threshold_terms,
)

# (value, lln, uln, baseline, baseline_high) -> index into CompiledWalk.outcomes
WalkFunction = Callable[[float, float | None, float | None, float | None, bool | None], int]
Outcome = tuple[int, bool, str]  # as ctcae.evaluate returns it: (grade or -1 = cannot grade, provisional, note)

_ARGS = ("lln", "uln", "baseline")  # the reference names as the generated function's parameters
_HIGH_NOTE = "baseline above ULN: graded against multiples of baseline"
_UNKNOWN_NOTE = "baseline unknown: graded against ULN (worst case) until a baseline is known"


@dataclass(frozen=True, slots=True)
class CompiledWalk:
    """`ctcae.evaluate` for one criterion, as a function returning the index of its outcome.

    Every outcome `evaluate` can give for the criterion is known in advance, notes included, so the function
    only compares: the clause walk is unrolled into straight-line code with each clause's constants in place
    (no tuples unpacked, no loop, no string built per record). It makes the interpreter's float operations in
    its order, less multiplications by 1 and additions of 0 (see _holds), so it gives the same outcome for every
    input, NaN and infinities included (tests/unit/test_ctcae_walk.py checks it against the interpreter)."""

    walk: WalkFunction
    outcomes: tuple[Outcome, ...]
    source: str  # the generated code, for a reader

    def evaluate(
        self, value: float, lln: float | None, uln: float | None, baseline: float | None, baseline_high: bool | None
    ) -> Outcome:
        return self.outcomes[self.walk(value, lln, uln, baseline, baseline_high)]


class _Writer:
    """The generated source and the outcomes it returns, each outcome listed once."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.outcomes: list[Outcome] = []
        self.constants: dict[str, float] = {}  # non-finite floats, which have no literal

    def outcome(self, outcome: Outcome) -> int:
        if outcome not in self.outcomes:
            self.outcomes.append(outcome)
        return self.outcomes.index(outcome)

    def number(self, x: float) -> str:
        if math.isfinite(x):
            return repr(float(x))
        name = f"_k{len(self.constants)}"
        self.constants[name] = x
        return name

    def line(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)


def _reference(ref: int) -> str:
    return _ARGS[ref]  # -1 (a threshold with neither limit nor reference) reads the baseline, as refs[-1] does


def _holds(writer: _Writer, terms: tuple[float, float, float | None, int, float, float]) -> str:
    """`not (sign * (value - limit) <= slack)`, with the sign and the limit's arithmetic written out.

    Negation and `1.0 * x` are exact, and `x + 0.0` differs from x only for x = -0.0, whose difference from the
    value compares the same, so dropping them changes no comparison. `not (... <= ...)` keeps NaN holding."""
    sign, slack, absolute, ref, factor, plus = terms
    if absolute is not None:
        limit = writer.number(absolute)
    else:
        limit = _reference(ref)
        if factor != 1.0:
            limit = f"{writer.number(factor)} * {limit}"
        if plus != 0.0:
            limit = f"{limit} + {writer.number(plus)}"
    difference = f"(value - ({limit}))"
    if sign != 1.0:
        difference = f"{writer.number(sign)} * {difference}"
    return f"not ({difference} <= {writer.number(slack)})"


def _walk(
    writer: _Writer,
    criterion: Criterion,
    rules: tuple[GradeRule, ...],
    note: str,
    provisional: bool,
    indent: int,
    present: frozenset[str],
) -> None:
    """The clauses of one walk, each returning its outcome when it holds; grade 0 when none does.

    `present`: the references already known not to be None here (no test of them is written again)."""
    known = set(present)
    digits = criterion.precision_decimals
    for rule in rules:
        terms = threshold_terms(rule.threshold, digits)
        conditions: list[str] = []
        if terms[2] is None:
            ref = _reference(terms[3])
            if ref in known:
                pass
            elif rule.when_missing is MissingInput.SKIP:
                conditions.append(f"{ref} is not None")
            else:
                known.add(ref)
                label = REFERENCE_LABELS[REFERENCES[terms[3]]]
                missing = (-1, False, f"{label} missing: needed for grade {rule.grade} of {criterion.term}")
                writer.line(indent, f"if {ref} is None:")
                writer.line(indent + 1, f"return {writer.outcome(missing)}")
        conditions.append(_holds(writer, terms))
        for also in rule.also:
            also_terms = threshold_terms(also, digits)
            if also_terms[2] is None and _reference(also_terms[3]) not in known:
                conditions.append(f"{_reference(also_terms[3])} is not None")
            conditions.append(_holds(writer, also_terms))
        if rule.grade == 0:
            outcome: Outcome = (0, False, "")
        elif rule.provisional:
            outcome = (rule.grade, True, f"{note}; {rule.assumption}" if note else rule.assumption)
        else:
            outcome = (rule.grade, provisional, note)
        writer.line(indent, f"if {' and '.join(conditions)}:")
        writer.line(indent + 1, f"return {writer.outcome(outcome)}")
    writer.line(indent, f"return {writer.outcome((0, False, ''))}")


def compile_walk(criterion: Criterion) -> CompiledWalk:
    """The criterion's walk as generated Python, giving what `ctcae.evaluate(criterion, ...)` gives."""
    writer = _Writer()
    writer.line(0, "def walk(value, lln, uln, baseline, baseline_high):")
    required = frozenset(name for name in criterion.required if name in _ARGS)
    for name in criterion.required:
        if name in _ARGS:
            reason = f"{REFERENCE_LABELS[name]} missing: needed to grade {criterion.term}"
            writer.line(1, f"if {name} is None:")
            writer.line(2, f"return {writer.outcome((-1, False, reason))}")
    if criterion.rules_if_baseline_high:
        writer.line(1, "if baseline_high is True:")
        missing = (-1, False, f"baseline above ULN but baseline value missing for {criterion.term}")
        writer.line(2, "if baseline is None:")
        writer.line(3, f"return {writer.outcome(missing)}")
        _walk(writer, criterion, criterion.rules_if_baseline_high, _HIGH_NOTE, False, 2, required | {"baseline"})
        writer.line(1, "if baseline_high is None:")
        _walk(writer, criterion, criterion.rules, _UNKNOWN_NOTE, True, 2, required)
    _walk(writer, criterion, criterion.rules, "", False, 1, required)
    source = "\n".join(writer.lines) + "\n"
    namespace: dict[str, object] = dict(writer.constants)
    code = compile(source, f"<CTCAE walk: {criterion.term}, {criterion.unit_system}>", "exec")
    exec(code, namespace)  # noqa: S102 -- the source is built above from numbers and reference names only
    return CompiledWalk(cast(WalkFunction, namespace["walk"]), tuple(writer.outcomes), source)
