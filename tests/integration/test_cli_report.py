"""`safety-monitor report` as an operator runs it: options refused with a reason, files written, JSON strict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_harness import invoke, trial_rules_without_routing, use_embedded_defaults


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_embedded_defaults(monkeypatch, tmp_path, trial_rules_without_routing(tmp_path))


def test_a_bad_data_cut_or_format_is_refused_with_a_reason(workdir: Path) -> None:
    result = invoke("report", "--as-of", "2026-13-01", "-o", "r.html", code=2)
    assert "expected a date YYYY-MM-DD" in result.output
    result = invoke("report", "--format", "pdf", "-o", "r.pdf", code=2)
    assert "'pdf' is not one of" in result.output
    result = invoke("report", "--as-of", "2026-05-01", "--since", "2026-06-01", "-o", "r.html", code=2)
    assert "after the data cut" in result.output
    assert not (workdir / "r.html").exists()


def test_an_empty_store_gives_a_report_that_says_so(workdir: Path) -> None:
    invoke("db", "upgrade")
    out = invoke("report", "--as-of", "2026-05-31", "--format", "json", "-o", "r.json").output
    assert "data cut 2026-05-31" in out
    figures = json.loads((workdir / "r.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert figures["population"]["safety"] == 0 and figures["deaths"] == [] and figures["orr"]["rate"] is None
    invoke("report", "--as-of", "2026-05-31", "-o", "r.html")
    assert "No treatment-emergent AEs." in (workdir / "r.html").read_text()
