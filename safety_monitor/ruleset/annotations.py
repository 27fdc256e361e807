"""Owns rule annotations: Jinja2 text templates (StrictUndefined) compiled and test-rendered when rules load."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from jinja2 import Environment, StrictUndefined, Template, TemplateError

# Annotations are plain text (summaries, descriptions); HTML outputs escape them where they are shown.
_ENV = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)  # noqa: S701

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
            return self.template.render(context)
        except Exception as exc:  # runtime data the sample did not foresee: say so in the annotation itself
            return f"(annotation could not be rendered: {type(exc).__name__}: {exc})"


def compile_annotation(source: str, labels: Mapping[str, str]) -> JinjaAnnotation | str:
    """The compiled annotation, or why it does not render against the sample context (with the rule's labels)."""
    try:
        template = _ENV.from_string(source)
        template.render({**SAMPLE_CONTEXT, "labels": dict(labels)})
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (template line {line})" if line else ""
        return f"{type(exc).__name__}: {exc.message or exc}{where}"
    except Exception as exc:  # a filter failing on the sample values, e.g. int('x')
        return f"{type(exc).__name__}: {exc}"
    return JinjaAnnotation(source, template)
