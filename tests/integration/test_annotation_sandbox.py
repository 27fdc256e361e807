"""Rule files are configuration, not code: an annotation can never run anything (issue 10, item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety_monitor.ruleset.annotations import compile_annotation
from tests.cli_harness import invoke, use_embedded_defaults

RULE = """rules:
  - id: hemoptysis
    title: Hemoptysis (any grade)
    when: {{kind: ae, terms: [Haemoptysis], grade_at_least: 1}}
    severity: critical
    annotations:
      summary: "{template}"
"""

ESCAPES = [
    "{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}",
    "{{{{ joiner.__init__.__globals__.os.popen('touch {marker}').read() }}}}",
    "{{{{ namespace.__init__.__globals__.os.popen('touch {marker}').read() }}}}",
    "{{{{ ''.__class__.__mro__[1].__subclasses__() }}}}{{{{ lipsum.__globals__.os.popen('touch {marker}') }}}}",
    "{{{{ self.__init__.__globals__.__builtins__.open('{marker}', 'w') }}}}",
    "{{{{ labels.update(x=1) }}}}{{{{ labels.clear() }}}}",
    "{{{{ rule_id.format.__globals__ }}}}",
]


@pytest.mark.parametrize("template", ESCAPES, ids=[f"escape-{n}" for n in range(len(ESCAPES))])
def test_an_unsafe_annotation_is_a_load_time_error_with_file_and_line_and_never_runs(
    template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hostile.yaml").write_text(RULE.format(template=template.format(marker=marker)), encoding="utf-8")
    use_embedded_defaults(monkeypatch, tmp_path, rules)
    result = invoke("rules", "check", str(rules), code=1)
    assert "hostile.yaml" in result.output and "line 7" in result.output, result.output
    assert "annotation 'summary'" in result.output
    assert not marker.exists(), "the annotation ran a command"


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'x' * 100000000 }}",
        "{{ 'ab' ~ ('c' * 9999999) }}",
        "{{ 7 ** 100000000 }}",
        "{% for i in range(10**9) %}{% endfor %}",
    ],
    ids=["repeat", "concat", "power", "range"],
)
def test_an_annotation_that_would_exhaust_memory_or_time_is_refused(template: str) -> None:
    assert isinstance(compile_annotation(template, {}), str)


def test_safe_annotations_still_render() -> None:
    compiled = compile_annotation("{{ subject_id }} grade {{ grade }} ({{ labels.signal | upper }})", {"signal": "h"})
    assert not isinstance(compiled, str)
    text = compiled.render({"subject_id": "S-1", "grade": 3, "labels": {"signal": "haemorrhage"}})
    assert text == "S-1 grade 3 (HAEMORRHAGE)"
