"""Owns rule annotations: Jinja2 text templates (StrictUndefined) compiled in a sandbox and test-rendered when
rules load.

Rule files are configuration, not code: an annotation may show the alert's fields and the rule's labels, test
them, filter them through a short list of text filters, and nothing else. It renders in Jinja2's
ImmutableSandboxedEnvironment (no access to Python internals, no changing what it is given), with no globals,
no loops, assignments, macros, imports or method calls, and with repetition and powers bounded; anything else is
a load-time error naming the rule file and line, never executed.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT = 10_000  # characters an annotation may produce, and a repetition may build

# What a template may be made of: output, names, constants, attribute and item look-ups, filters and tests,
# conditions, comparisons, arithmetic and string concatenation.
_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Filter,
    nodes.Test,
    nodes.If,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Concat,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.Pow,
    nodes.Tuple,
    nodes.List,
    nodes.Dict,
    nodes.Pair,
    nodes.Keyword,
)
# Text filters that cannot amplify their input.
_FILTERS = (
    *("abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int", "last", "length"),
    *("lower", "max", "min", "round", "string", "striptags", "title", "trim", "truncate", "upper", "wordcount"),
)


class _AnnotationSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with `*`, `**` and `%` bounded (a string repeated a billion times would exhaust memory)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise SecurityError("a power above 64 is not allowed in an annotation")
            return operator.pow(left, right)
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > MAX_OUTPUT:
                    raise SecurityError(f"a repetition longer than {MAX_OUTPUT} is not allowed in an annotation")
            return operator.mul(left, right)
        if isinstance(left, str):
            raise SecurityError("%-formatting is not allowed in an annotation: use filters")
        return operator.mod(left, right)


def _environment() -> _AnnotationSandbox:
    # Annotations are plain text (summaries, descriptions); HTML outputs escape them where they are shown.
    env = _AnnotationSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.globals.clear()  # no range, cycler, joiner, namespace, lipsum, dict
    env.filters = {name: env.filters[name] for name in _FILTERS}
    return env


_ENV = _environment()


def _refuse_constructs(source: str) -> str | None:
    """Why the template uses something an annotation may not (a loop, an assignment, a call...), or None."""
    for node in _ENV.parse(source).find_all(nodes.Node):
        if not isinstance(node, _ALLOWED_NODES):
            what = type(node).__name__
            return f"SecurityError: {what} is not allowed in an annotation (line {node.lineno} of the template)"
    return None


# What an annotation may use: the fields of the alert it describes (as in the notice context) and the rule's
# labels. Rendering this sample at load time catches undefined names and syntax errors before a rule is used.
SAMPLE_CONTEXT: Mapping[str, object] = {
    "rule_id": "sample-rule",
    "rule_title": "Sample rule",
    "severity": "high",
    "action": "Hold anlotinib",
    "recommendation": "hold",
    "study_id": "ALTER-ICI-01",
    "subject_id": "ALTER-ICI-01-012-0007",
    "subject_ref": "AE:AE-14",
    "term": "Haemoptysis",
    "observed_on": "2026-04-29",
    "grade": 3,
    "previous_grade": 2,
    "status": "open",
    "change": "raised",
    "detail": "Haemoptysis grade 3 (investigator)",
    "ruleset_hash": "0" * 64,
    "ctcae_version": "5.0",
    "labels": {"signal": "haemorrhage", "drug": "anlotinib"},
}


@dataclass(frozen=True, slots=True)
class JinjaAnnotation:
    """One compiled annotation; `render` never raises (a failure becomes visible text, not a lost alert)."""

    source: str
    template: Template = field(compare=False, repr=False)

    def __deepcopy__(self, memo: dict[int, object]) -> JinjaAnnotation:
        return self  # immutable: a compiled template is shared, never copied

    def render(self, context: Mapping[str, object]) -> str:
        try:
            text = self.template.render(context)
            return text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + "..."
        except Exception as exc:  # runtime data the sample did not foresee: say so in the annotation itself
            return f"(annotation could not be rendered: {type(exc).__name__}: {exc})"


def compile_annotation(source: str, labels: Mapping[str, str]) -> JinjaAnnotation | str:
    """The compiled annotation, or why it does not render against the sample context (with the rule's labels)."""
    try:
        if (unsafe := _refuse_constructs(source)) is not None:
            return unsafe
        template = _ENV.from_string(source)
        template.render({**SAMPLE_CONTEXT, "labels": dict(labels)})
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (template line {line})" if line else ""
        return f"{type(exc).__name__}: {exc.message or exc}{where}"
    except Exception as exc:  # a filter failing on the sample values, e.g. int('x')
        return f"{type(exc).__name__}: {exc}"
    return JinjaAnnotation(source, template)
