"""Tests the `boundaries` commands end to end through click: json and table output, usage errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from safety_monitor.cli.boundaries import boundaries

LOOKS = "5,10,15,20,25,30,35,40"
BETA_BINOMIAL = [
    "beta-binomial",
    "--theta",
    "0.10",
    "--prior",
    "0.2",
    "1.8",
    "--cutoff",
    "0.90",
    "--looks",
    LOOKS,
]
SPRT = ["sprt", "--p0", "0.10", "--p1", "0.25", "--alpha", "0.05", "--beta", "0.20", "--looks", LOOKS]


def run(args: list[str]) -> Result:
    return CliRunner().invoke(boundaries, args)


def worked_rows(stops: list[int]) -> list[dict[str, int]]:
    return [{"n": n, "stop_at": s} for n, s in zip(range(5, 45, 5), stops, strict=True)]


def test_beta_binomial_json_is_the_worked_table() -> None:
    result = run([*BETA_BINOMIAL, "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document == {
        "design": "beta-binomial",
        "parameters": {"theta": 0.10, "prior": {"a": 0.2, "b": 1.8}, "cutoff": 0.90},
        "table": worked_rows([2, 3, 4, 5, 5, 6, 7, 7]),
    }


def test_sprt_json_is_the_worked_table_with_walds_boundaries() -> None:
    result = run([*SPRT, "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["design"] == "sprt"
    assert document["table"] == worked_rows([4, 5, 6, 6, 7, 8, 9, 10])
    parameters = document["parameters"]
    assert parameters["upper_boundary"] == pytest.approx(2.772589, abs=1e-6)  # log(0.80 / 0.05)
    assert parameters["lower_boundary"] == pytest.approx(-1.558145, abs=1e-6)  # log(0.20 / 0.95)
    assert "operating_characteristics" not in document


@pytest.mark.parametrize("command", [BETA_BINOMIAL, SPRT], ids=["beta-binomial", "sprt"])
def test_json_operating_characteristics_per_true_rate(command: list[str]) -> None:
    result = run([*command, "--format", "json", "--true-rates", "0.05,0.10,0.20"])
    assert result.exit_code == 0, result.output
    ocs = json.loads(result.output)["operating_characteristics"]
    assert [oc["true_rate"] for oc in ocs] == [0.05, 0.10, 0.20]
    for oc in ocs:
        assert [look["n"] for look in oc["by_look"]] == list(range(5, 45, 5))
        assert oc["by_look"][-1]["p_stop_by"] == pytest.approx(oc["p_stop"])
        assert sum(look["p_stop_at"] for look in oc["by_look"]) == pytest.approx(oc["p_stop"])
        assert 5 <= oc["expected_n"] <= 40
    assert [oc["p_stop"] for oc in ocs] == sorted(oc["p_stop"] for oc in ocs)


def test_beta_binomial_json_operating_characteristics_values() -> None:
    result = run([*BETA_BINOMIAL, "--format", "json", "--true-rates", "0.10"])
    (oc,) = json.loads(result.output)["operating_characteristics"]
    assert oc["p_stop"] == pytest.approx(0.208297, abs=1e-6)
    assert oc["expected_n"] == pytest.approx(34.987498, abs=1e-6)


def test_beta_binomial_table_output() -> None:
    result = run([*BETA_BINOMIAL, "--format", "table"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Bayesian beta-binomial stopping boundary (Thall, Simon & Estey 1995)"
    assert lines[1] == "stop when Pr(rate > 0.1 | events, n) > 0.9 under a Beta(0.2, 1.8) prior"
    assert lines[3:] == [
        " n  stop at",
        " 5        2",
        "10        3",
        "15        4",
        "20        5",
        "25        5",
        "30        6",
        "35        7",
        "40        7",
    ]


def test_table_is_the_default_format_and_columns_align_with_true_rates() -> None:
    result = run([*SPRT, "--true-rates", "0.1,0.25"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Wald SPRT stopping boundary (Wald 1945)"
    table = lines[lines.index("") + 1 :]
    assert table[0].split("  ")[-1] == "P(stop by n | rate=0.25)"
    assert len({len(line) for line in table}) == 1  # every row as wide as the header: aligned columns
    assert table[1].split() == ["5", "4", "0.0005", "0.0156"]
    assert table[-2].split()[0] == "overall"
    assert table[-1].split()[:2] == ["expected", "n"]


def test_table_marks_looks_that_cannot_stop() -> None:
    result = run(["sprt", "--p0", "0.10", "--p1", "0.25", "--alpha", "0.05", "--beta", "0.20", "--looks", "2,5"])
    assert result.exit_code == 0, result.output
    assert "2        -" in result.output
    assert result.output.rstrip().endswith("- : no number of events stops the cohort at this look")


def test_json_stop_at_is_null_when_a_look_cannot_stop() -> None:
    result = run(
        [
            "sprt",
            "--p0",
            "0.1",
            "--p1",
            "0.25",
            "--alpha",
            "0.05",
            "--beta",
            "0.2",
            "--looks",
            "2,5",
            "--format",
            "json",
        ]
    )
    assert json.loads(result.output)["table"] == [{"n": 2, "stop_at": None}, {"n": 5, "stop_at": 4}]


def replace(args: list[str], option: str, *values: str) -> list[str]:
    index = args.index(option)
    width = 3 if option == "--prior" else 2
    return [*args[:index], option, *values, *args[index + width :]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (replace(BETA_BINOMIAL, "--looks", "10,5"), "--looks must be increasing whole numbers, got 10,5"),
        (replace(BETA_BINOMIAL, "--looks", "5,5"), "--looks must be increasing whole numbers, got 5,5"),
        (
            replace(BETA_BINOMIAL, "--looks", "0,5"),
            "--looks must be whole numbers above 0 separated by commas, got 0,5",
        ),
        (
            replace(SPRT, "--looks", "5,ten"),
            "--looks must be whole numbers above 0 separated by commas, got 5,ten",
        ),
        (
            replace(SPRT, "--looks", "5,7.5"),
            "--looks must be whole numbers above 0 separated by commas, got 5,7.5",
        ),
        (replace(BETA_BINOMIAL, "--theta", "1.5"), "--theta must be strictly between 0 and 1, got 1.5"),
        (replace(BETA_BINOMIAL, "--cutoff", "0"), "--cutoff must be strictly between 0 and 1, got 0.0"),
        (
            replace(BETA_BINOMIAL, "--prior", "0", "1.8"),
            "--prior needs two numbers above 0 (Beta a b), got 0.0 1.8",
        ),
        (
            replace(SPRT, "--p0", "0.3"),
            "--p0 must be below --p1 (H0 is the acceptable rate), got 0.3 and 0.25",
        ),
        (replace(SPRT, "--alpha", "1"), "--alpha must be strictly between 0 and 1, got 1.0"),
        (replace(SPRT, "--beta", "0.96"), "--alpha plus --beta must be below 1, got 0.05 and 0.96"),
        (
            [*SPRT, "--true-rates", "0.1,1.2"],
            "--true-rates must be rates between 0 and 1 separated by commas, got 0.1,1.2",
        ),
        (
            [*SPRT, "--true-rates", "low"],
            "--true-rates must be rates between 0 and 1 separated by commas, got low",
        ),
    ],
    ids=[
        "looks-decreasing",
        "looks-repeated",
        "looks-zero",
        "looks-word",
        "looks-fraction",
        "theta",
        "cutoff",
        "prior",
        "p0>=p1",
        "alpha",
        "alpha+beta",
        "true-rate-above-1",
        "true-rate-word",
    ],
)
def test_bad_parameters_are_usage_errors_with_a_plain_hint(args: list[str], message: str) -> None:
    result = run(args)
    assert result.exit_code == 2, result.output
    assert f"Error: {message}\n" in result.output
    assert result.output.startswith("Usage: ")


def test_format_must_be_json_or_table() -> None:
    result = run([*SPRT, "--format", "csv"])
    assert result.exit_code == 2
    assert "'csv' is not one of 'json', 'table'" in result.output
