"""Owns the DSMB report's charts (matplotlib, no global state): Kaplan-Meier curves with numbers at risk, the
cohort boundary paths and the EAIR forest plot, as SVG for the HTML file and PNG for the mail's CID images."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib import rc_context
from matplotlib.figure import Figure

_BLUE, _RED, _GREY = "#1f5f99", "#b03a2e", "#7f7f7f"
EAIR_ROWS = 15  # the forest plot shows the PTs with the highest rates


SVG, PNG = "svg", "png"


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart: a stable name (the CID's local part), a caption and the figure as SVG markup or PNG bytes."""

    name: str
    caption: str
    svg: str = ""
    png: bytes = b""


def _render(figure: Figure, name: str, caption: str, fmt: str) -> Chart:
    if fmt == SVG:
        svg = io.StringIO()
        # Text as SVG <text> in the reader's own sans-serif (not glyph outlines): smaller, faster, still selectable.
        with rc_context({"svg.fonttype": "none"}):
            figure.savefig(svg, format="svg", metadata={"Date": None})  # no timestamp: same figures, same bytes
        text = svg.getvalue()
        return Chart(name, caption, svg=text[text.index("<svg") :])
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=110, metadata={"Software": None})
    return Chart(name, caption, png=png.getvalue())


def _ticks(horizon: float) -> list[float]:
    """Times for the numbers at risk: every 30 days (90 beyond a year), up to the horizon."""
    step = 30 if horizon <= 400 else 90
    return [float(t) for t in range(0, int(horizon) + 1, step)]


def _at_risk(steps: Sequence[Mapping[str, Any]], subjects: int, t: float) -> int:
    """Subjects still at risk at time t: at risk at the first step at or after t (0 past the last)."""
    for step in steps:
        if step["t_days"] >= t:
            return int(step["at_risk"])
    return 0 if steps else subjects


def km_chart(name: str, title: str, curve: Mapping[str, Any], fmt: str = SVG) -> Chart:
    steps = curve["km"]
    figure = Figure(figsize=(7.0, 4.2))
    axes, table = figure.subplots(2, 1, gridspec_kw={"height_ratios": [5, 1]}, sharex=True)
    times, survival = [0.0], [1.0]
    censored_t, censored_s = [], []
    for step in steps:
        times.append(step["t_days"])
        survival.append(step["survival"])
        if step["censored"]:
            censored_t.append(step["t_days"])
            censored_s.append(step["survival"])
    horizon = max([30.0, *times])
    axes.step(times, survival, where="post", color=_BLUE, linewidth=1.6)
    axes.plot(censored_t, censored_s, linestyle="none", marker="|", markersize=8, color=_BLUE)
    median = curve["median_days"]
    low, high = curve["median_ci95"]
    label = "not reached" if median is None else f"{median:g} days"
    interval = f" (95 % CI {_num(low)} to {_num(high)})" if median is not None else ""
    axes.set_title(
        f"{title}: median {label}{interval}; {curve['events']} events, {curve['censored']} censored", fontsize=9
    )
    axes.set_ylim(0, 1.03)
    axes.set_ylabel("Probability")
    axes.axhline(0.5, color=_GREY, linewidth=0.6, linestyle=":")
    axes.grid(alpha=0.25)
    ticks = _ticks(horizon)
    table.set_yticks([])
    table.set_ylim(0, 1)
    table.set_xlabel("Days from randomisation")
    table.set_title("Number at risk", fontsize=8, loc="left")
    for t in ticks:
        table.text(t, 0.4, str(_at_risk(steps, curve["subjects"], t)), ha="center", fontsize=8)
    table.set_xticks(ticks)
    table.set_xlim(-horizon * 0.02, horizon * 1.03)
    for spine in table.spines.values():
        spine.set_visible(False)
    figure.subplots_adjust(left=0.1, right=0.97, top=0.92, bottom=0.11, hspace=0.35)  # fixed: no layout search
    return _render(figure, name, f"{title} (Kaplan-Meier)", fmt)


def _num(value: float | None) -> str:
    return "NR" if value is None else f"{value:g}"


def boundary_chart(name: str, boundary: Mapping[str, Any], fmt: str = SVG) -> Chart:
    path = boundary["path"]
    figure = Figure(figsize=(7.0, 3.2))
    axes = figure.subplots()
    x = list(range(len(path)))
    axes.plot(
        x, [p["statistic"] for p in path], color=_BLUE, marker="o", markersize=3, label=boundary["statistic_name"]
    )
    axes.plot(x, [p["boundary"] for p in path], color=_RED, linestyle="--", label="stopping boundary")
    labels = [f"{p['on'][5:]}\n{p['events']}/{p['evaluable']}" for p in path]
    keep = max(1, math.ceil(len(path) / 8))
    axes.set_xticks(x[::keep], labels[::keep], fontsize=7)
    axes.set_xlabel("Evaluation date, events / evaluable", fontsize=8)
    if boundary["statistic_name"].startswith("Pr("):
        axes.set_ylim(0, 1.02)  # a posterior probability
    axes.legend(fontsize=7, loc="best")
    axes.grid(alpha=0.25)
    axes.set_title(f"{boundary['title']}"[:110], fontsize=8)
    figure.subplots_adjust(left=0.08, right=0.97, top=0.9, bottom=0.24)
    return _render(figure, name, f"Stopping boundary path: {boundary['rule_id']}", fmt)


def eair_chart(name: str, rows: Sequence[Mapping[str, Any]], fmt: str = SVG) -> Chart:
    shown = sorted(
        (r for r in rows if r["pt"] is not None and r["per_100py"] is not None),
        key=lambda r: (-r["per_100py"], r["pt"]),
    )[:EAIR_ROWS]
    figure = Figure(figsize=(7.0, 0.9 + 0.28 * max(1, len(shown))))
    axes = figure.subplots()
    for i, row in enumerate(reversed(shown)):
        low, high = row["ci95"]
        axes.plot([low, high], [i, i], color=_GREY, linewidth=1.2)
        axes.plot([row["per_100py"]], [i], marker="s", color=_BLUE, markersize=5)
    axes.set_yticks(range(len(shown)), [r["pt"][:40] for r in reversed(shown)], fontsize=7)
    axes.set_xlabel("Subjects with the event per 100 patient-years (exact Poisson 95 % CI)", fontsize=8)
    axes.set_xlim(left=0)
    axes.grid(axis="x", alpha=0.25)
    height = 0.9 + 0.28 * max(1, len(shown))
    figure.subplots_adjust(left=0.36, right=0.97, top=1 - 0.15 / height, bottom=0.55 / height)
    return _render(figure, name, "Exposure-adjusted incidence rates, highest first", fmt)


def report_charts(report: Mapping[str, Any], fmt: str = SVG) -> list[Chart]:
    """Every chart of the report, from its figures: OS and PFS always, one per cohort boundary, the EAIR plot; as
    SVG (the HTML file) or PNG (the mail)."""
    charts = [
        km_chart("os", "Overall survival", report["os"], fmt),
        km_chart("pfs", "Progression-free survival", report["pfs"], fmt),
    ]
    for index, boundary in enumerate(report["boundaries"]):
        charts.append(boundary_chart(f"boundary-{index + 1}", boundary, fmt))
    if report["eair"]:
        charts.append(eair_chart("eair", report["eair"], fmt))
    return charts
