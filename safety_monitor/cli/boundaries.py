"""Owns the `safety-monitor boundaries` commands: stopping tables and operating characteristics."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence

import click

from safety_monitor.domain.boundaries import (
    OperatingCharacteristics,
    StoppingRow,
    beta_binomial_table,
    operating_characteristics,
    sprt_boundaries,
    sprt_table,
)

_WHOLE = re.compile(r"\d+")


# --- option parsing -----------------------------------------------------------------------------------------


def _parse_looks(_ctx: click.Context, _param: click.Parameter, raw: str) -> tuple[int, ...]:
    parts = [part.strip() for part in raw.split(",")]
    if not all(_WHOLE.fullmatch(part) and int(part) > 0 for part in parts):
        raise click.UsageError(f"--looks must be whole numbers above 0 separated by commas, got {raw}")
    looks = tuple(int(part) for part in parts)
    if any(later <= earlier for earlier, later in itertools.pairwise(looks)):
        raise click.UsageError(f"--looks must be increasing whole numbers, got {raw}")
    return looks


def _parse_rates(_ctx: click.Context, _param: click.Parameter, raw: str | None) -> tuple[float, ...]:
    if raw is None:
        return ()
    try:
        rates = tuple(float(part) for part in raw.split(","))
    except ValueError:
        rates = ()
    if not rates or not all(0.0 <= rate <= 1.0 for rate in rates):
        raise click.UsageError(f"--true-rates must be rates between 0 and 1 separated by commas, got {raw}")
    return rates


def _open_unit(_ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0.0 < value < 1.0:
        raise click.UsageError(f"--{param.name} must be strictly between 0 and 1, got {value}")
    return value


def _prior(_ctx: click.Context, _param: click.Parameter, value: tuple[float, float]) -> tuple[float, float]:
    a, b = value
    if not (a > 0.0 and b > 0.0):
        raise click.UsageError(f"--prior needs two numbers above 0 (Beta a b), got {a} {b}")
    return value


_LOOKS_OPTION = click.option(
    "--looks",
    required=True,
    callback=_parse_looks,
    help="Evaluable subjects at each look, comma separated, e.g. 5,10,15.",
)
_RATES_OPTION = click.option(
    "--true-rates",
    "true_rates",
    default=None,
    callback=_parse_rates,
    help="True event rates for the operating characteristics, comma separated, e.g. 0.05,0.10,0.20.",
)
_FORMAT_OPTION = click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "table"]),
    default="table",
    show_default=True,
    help="json for machines, table for charters.",
)


# --- rendering ----------------------------------------------------------------------------------------------


def _oc_json(oc: OperatingCharacteristics) -> dict[str, object]:
    return {
        "true_rate": oc.true_rate,
        "p_stop": oc.p_stop,
        "expected_n": oc.expected_n,
        "by_look": [{"n": look.n, "p_stop_at": look.p_stop_at, "p_stop_by": look.p_stop_by} for look in oc.looks],
    }


def _aligned(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    return [
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    ]


def _table_text(title: str, rule: str, table: Sequence[StoppingRow], ocs: Sequence[OperatingCharacteristics]) -> str:
    headers = ["n", "stop at", *(f"P(stop by n | rate={oc.true_rate:g})" for oc in ocs)]
    rows: list[list[str]] = []
    for index, row in enumerate(table):
        stop_at = "-" if row.stop_at is None else str(row.stop_at)
        rows.append([str(row.n), stop_at, *(f"{oc.looks[index].p_stop_by:.4f}" for oc in ocs)])
    if ocs:
        rows.append(["overall", "", *(f"{oc.p_stop:.4f}" for oc in ocs)])
        rows.append(["expected n", "", *(f"{oc.expected_n:.2f}" for oc in ocs)])
    lines = [title, rule, "", *_aligned(headers, rows)]
    if any(row.stop_at is None for row in table):
        lines += ["", "- : no number of events stops the cohort at this look"]
    return "\n".join(lines)


def _emit(
    output_format: str,
    design: str,
    parameters: dict[str, object],
    table: Sequence[StoppingRow],
    true_rates: Sequence[float],
    title: str,
    rule: str,
) -> None:
    ocs = [operating_characteristics(table, rate) for rate in true_rates]
    if output_format == "json":
        document: dict[str, object] = {
            "design": design,
            "parameters": parameters,
            "table": [row.as_dict() for row in table],
        }
        if ocs:
            document["operating_characteristics"] = [_oc_json(oc) for oc in ocs]
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(_table_text(title, rule, table, ocs))


# --- commands -----------------------------------------------------------------------------------------------


@click.group()
def boundaries() -> None:
    """Stopping boundaries for cohort safety monitoring: stopping tables and operating characteristics."""


@boundaries.command("beta-binomial")
@click.option("--theta", type=float, required=True, callback=_open_unit, help="Unacceptable event rate, e.g. 0.10.")
@click.option(
    "--prior",
    type=(float, float),
    required=True,
    callback=_prior,
    metavar="A B",
    help="Beta(a, b) prior on the event rate, e.g. 0.2 1.8.",
)
@click.option("--cutoff", type=float, required=True, callback=_open_unit, help="Stop when Pr(rate > theta) > cutoff.")
@_LOOKS_OPTION
@_RATES_OPTION
@_FORMAT_OPTION
def beta_binomial(
    theta: float,
    prior: tuple[float, float],
    cutoff: float,
    looks: tuple[int, ...],
    true_rates: tuple[float, ...],
    output_format: str,
) -> None:
    """Bayesian beta-binomial boundary (Thall, Simon & Estey 1995): fewest events that stop at each look."""
    a, b = prior
    table = beta_binomial_table(theta, a, b, cutoff, looks)
    _emit(
        output_format,
        "beta-binomial",
        {"theta": theta, "prior": {"a": a, "b": b}, "cutoff": cutoff},
        table,
        true_rates,
        "Bayesian beta-binomial stopping boundary (Thall, Simon & Estey 1995)",
        f"stop when Pr(rate > {theta:g} | events, n) > {cutoff:g} under a Beta({a:g}, {b:g}) prior",
    )


@boundaries.command("sprt")
@click.option("--p0", type=float, required=True, callback=_open_unit, help="Acceptable event rate (H0).")
@click.option("--p1", type=float, required=True, callback=_open_unit, help="Unacceptable event rate (H1).")
@click.option("--alpha", type=float, required=True, callback=_open_unit, help="Type I error, e.g. 0.05.")
@click.option("--beta", type=float, required=True, callback=_open_unit, help="Type II error, e.g. 0.20.")
@_LOOKS_OPTION
@_RATES_OPTION
@_FORMAT_OPTION
def sprt(
    p0: float,
    p1: float,
    alpha: float,
    beta: float,
    looks: tuple[int, ...],
    true_rates: tuple[float, ...],
    output_format: str,
) -> None:
    """Wald SPRT (Wald 1945) for a binomial rate: fewest events whose LLR reaches the upper boundary."""
    if not p0 < p1:
        raise click.UsageError(f"--p0 must be below --p1 (H0 is the acceptable rate), got {p0} and {p1}")
    if not alpha + beta < 1.0:
        raise click.UsageError(f"--alpha plus --beta must be below 1, got {alpha} and {beta}")
    lower, upper = sprt_boundaries(alpha, beta)
    table = sprt_table(p0, p1, alpha, beta, looks)
    _emit(
        output_format,
        "sprt",
        {"p0": p0, "p1": p1, "alpha": alpha, "beta": beta, "upper_boundary": upper, "lower_boundary": lower},
        table,
        true_rates,
        "Wald SPRT stopping boundary (Wald 1945)",
        f"H0 p={p0:g} vs H1 p={p1:g}, alpha={alpha:g}, beta={beta:g}: stop when LLR >= {upper:.4f}\n"
        f"(the accept-H0 boundary {lower:.4f} is reported, it does not end safety monitoring)",
    )
