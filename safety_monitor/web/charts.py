"""Owns the workspace's charts as server-rendered SVG: a subject's timeline (dosing, AEs by grade, liver labs
against ULN, blood pressure, alerts) and the eDISH plot. Every text is escaped; no script, no inline style."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from markupsafe import Markup, escape

from safety_monitor.domain.dates import PartialDate
from safety_monitor.service.workspace_views import LiverPeak, SubjectData

WIDTH, LEFT, RIGHT = 960, 150, 70
GRADE_FILL = {1: "#9ecae1", 2: "#fdae6b", 3: "#e6550d", 4: "#a50f15", 5: "#252525"}
LIVER_TESTS = ("ALT", "AST", "BILI")
LAB_STROKE = {"ALT": "#3182bd", "AST": "#31a354", "BILI": "#e6550d"}


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return PartialDate.parse(text[:10]).as_date()
    except ValueError:
        return None


def _attr(value: object) -> str:
    return str(escape(str(value)))


class _Axis:
    def __init__(self, first: date, last: date) -> None:
        self.first = first
        self.days = max((last - first).days, 1)

    def x(self, day: date) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (day - self.first).days / self.days


def _range(data: SubjectData) -> tuple[date, date] | None:
    days = [
        d
        for d in (
            *(_day(e.on) for e in data.dose_events),
            *(_day(a.onset) for a in data.adverse_events),
            *(_day(a.end) for a in data.adverse_events),
            *(_day(f.collected_at) for f in data.findings),
            *(_day(a.observed_on) for a in data.alerts),
        )
        if d is not None
    ]
    if not days:
        return None
    return min(days), max(days) + timedelta(days=1)


def _dosing(data: SubjectData, axis: _Axis, end: date, top: float) -> tuple[list[str], float]:
    parts: list[str] = []
    drugs = sorted({e.drug for e in data.dose_events if e.drug}) or []
    y = top
    for drug in drugs:
        parts.append(f'<text x="4" y="{y + 12:.0f}" class="lane">{_attr(drug)} dosing</text>')
        start: date | None = None
        for event in data.dose_events:
            if event.drug not in (drug, None):
                continue
            on = _day(event.on)
            if on is None:
                continue
            if event.event in ("FIRST_DOSE", "DOSE_RESUMED") and start is None:
                start = on
            elif event.event in ("DOSE_INTERRUPTED", "DISCONTINUED", "DIED", "COMPLETED") and start is not None:
                parts.append(_bar(axis, start, on, y, "#74c476", f"{drug}: {start} to {on}"))
                label = "interrupted" if event.event == "DOSE_INTERRUPTED" else event.event.lower()
                reason = f" ({event.reason})" if event.reason else ""
                parts.append(
                    f'<g class="dose-stop"><title>{_attr(drug)} {_attr(label)} {_attr(on)}{_attr(reason)}</title>'
                    f'<line x1="{axis.x(on):.1f}" x2="{axis.x(on):.1f}" y1="{y - 2}" y2="{y + 18}" stroke="#636363" '
                    'stroke-width="2"/></g>'
                )
                start = None
        if start is not None:
            parts.append(_bar(axis, start, end, y, "#74c476", f"{drug}: from {start}"))
        y += 24
    return parts, y


def _bar(axis: _Axis, start: date, end: date, y: float, fill: str, title: str) -> str:
    x1, x2 = axis.x(start), max(axis.x(end), axis.x(start) + 2)
    return (
        f'<g><title>{_attr(title)}</title><rect x="{x1:.1f}" y="{y:.0f}" width="{x2 - x1:.1f}" height="16" '
        f'fill="{fill}"/></g>'
    )


def _adverse_events(data: SubjectData, axis: _Axis, end: date, top: float) -> tuple[list[str], float]:
    parts = [f'<text x="4" y="{top + 12:.0f}" class="lane">adverse events</text>']
    y = top
    for ae in data.adverse_events:
        onset = _day(ae.onset)
        if onset is None:
            continue
        stop = _day(ae.end) or end
        grade = ae.investigator_grade or 0
        fill = GRADE_FILL.get(grade, "#bdbdbd")
        title = f"{ae.verbatim_term} ({ae.preferred_term}) grade {grade or '?'}: {ae.onset} to {ae.end or 'ongoing'}"
        parts.append(_bar(axis, onset, stop, y, fill, title))
        near_end = axis.x(onset) > WIDTH - RIGHT - 260  # label to the left of a bar that starts late
        x, anchor = (axis.x(onset) - 3, "end") if near_end else (axis.x(onset) + 3, "start")
        parts.append(
            f'<text x="{x:.1f}" y="{y + 12:.0f}" class="bar-label" text-anchor="{anchor}">G{grade or "?"} '
            f"{_attr(ae.verbatim_term[:40])}</text>"
        )
        y += 20
    return parts, y + 8


def _lines(points: Sequence[tuple[float, float]], stroke: str, title: str) -> str:
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{stroke}"/>' for x, y in points)
    return f'<g><title>{_attr(title)}</title><polyline points="{path}" fill="none" stroke="{stroke}"/>{dots}</g>'


def _labs(data: SubjectData, axis: _Axis, top: float) -> tuple[list[str], float]:
    height = 120
    series: dict[str, list[tuple[date, float]]] = {}
    for f in data.findings:
        day = _day(f.collected_at)
        if f.test_code in LIVER_TESTS and f.value is not None and f.uln and day is not None:
            series.setdefault(f.test_code, []).append((day, f.value / f.uln))
    if not series:
        return [], top
    peak = max(4.0, *(v for values in series.values() for _, v in values))

    def y(ratio: float) -> float:
        return top + 18 + height - height * min(ratio, peak) / peak

    parts = [f'<text x="4" y="{top + 12:.0f}" class="lane">liver labs (x ULN)</text>']
    for ratio, label in ((1.0, "ULN"), (3.0, "3x ULN")):
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(ratio):.1f}" y2="{y(ratio):.1f}" stroke="#969696" '
            f'stroke-dasharray="4 3"/><text x="{LEFT - 4}" y="{y(ratio) + 4:.1f}" class="tick" '
            f'text-anchor="end">{label}</text>'
        )
    for code, values in sorted(series.items()):
        points = [(axis.x(d), y(v)) for d, v in values]
        parts.append(_lines(points, LAB_STROKE[code], f"{code} x ULN"))
        parts.append(f'<text x="{points[-1][0] + 4:.1f}" y="{points[-1][1]:.1f}" class="tick">{code}</text>')
    return parts, top + 18 + height + 16


def _blood_pressure(data: SubjectData, axis: _Axis, top: float) -> tuple[list[str], float]:
    height = 100
    series: dict[str, list[tuple[date, float]]] = {}
    for f in data.findings:
        day = _day(f.collected_at)
        if f.test_code in ("SYSBP", "DIABP") and f.value is not None and day is not None:
            series.setdefault(f.test_code, []).append((day, f.value))
    if not series:
        return [], top

    def y(mm_hg: float) -> float:
        return top + 18 + height - height * (min(max(mm_hg, 40.0), 200.0) - 40.0) / 160.0

    parts = [f'<text x="4" y="{top + 12:.0f}" class="lane">blood pressure (mmHg)</text>']
    # CTCAE v5 hypertension: grade 2 from 140/90, grade 3 from 160/100.
    for mm_hg in (90, 140, 160):
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(mm_hg):.1f}" y2="{y(mm_hg):.1f}" stroke="#d9d9d9"/>'
            f'<text x="{LEFT - 4}" y="{y(mm_hg) + 4:.1f}" class="tick" text-anchor="end">{mm_hg}</text>'
        )
    for code, stroke in (("SYSBP", "#756bb1"), ("DIABP", "#9e9ac8")):
        if code in series:
            parts.append(_lines([(axis.x(d), y(v)) for d, v in series[code]], stroke, code))
    return parts, top + 18 + height + 16


def _alerts(data: SubjectData, axis: _Axis, top: float) -> tuple[list[str], float]:
    parts = [f'<text x="4" y="{top + 12:.0f}" class="lane">alerts</text>']
    for alert in data.alerts:
        day = _day(alert.observed_on) or alert.raised_at.date()
        x = axis.x(day)
        title = f"{alert.rule_title}: {alert.term} grade {alert.grade} ({alert.severity})"
        parts.append(
            f'<a href="/alerts/{_attr(alert.id)}"><g class="alert-mark"><title>{_attr(title)}</title>'
            f'<polygon points="{x:.1f},{top} {x + 7:.1f},{top + 14} {x - 7:.1f},{top + 14}" fill="#cb181d"/></g></a>'
        )
    return parts, top + 24


def timeline(data: SubjectData) -> Markup:
    """The subject's timeline over the days of its records; empty when no record has a full date."""
    span = _range(data)
    if span is None:
        return Markup('<p class="muted">No dated records for this subject yet.</p>')
    first, last = span
    axis = _Axis(first, last)
    parts: list[str] = []
    y = 24.0
    drawn, y = _dosing(data, axis, last, y)
    parts.extend(drawn)
    drawn, y = _adverse_events(data, axis, last, y)
    parts.extend(drawn)
    drawn, y = _labs(data, axis, y)
    parts.extend(drawn)
    drawn, y = _blood_pressure(data, axis, y)
    parts.extend(drawn)
    drawn, y = _alerts(data, axis, y)
    parts.extend(drawn)
    ticks = _date_ticks(axis, first, last, y)
    height = y + 24
    body = "".join([*parts, *ticks])
    return Markup(  # noqa: S704 (every text and attribute value in `body` went through _attr, i.e. escape)
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="{WIDTH}" height="{height:.0f}" aria-label="subject timeline">{body}</svg>'
    )


def _date_ticks(axis: _Axis, first: date, last: date, y: float) -> Iterable[str]:
    step = max(1, axis.days // 8)
    day = first
    while day <= last:
        x = axis.x(day)
        yield (
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="16" y2="{y:.0f}" stroke="#f0f0f0"/>'
            f'<text x="{x:.1f}" y="{y + 14:.0f}" class="tick" text-anchor="middle">{day.isoformat()}</text>'
        )
        day += timedelta(days=step)


EDISH_SIZE, EDISH_PAD = 520, 56
EDISH_MIN, EDISH_MAX = 0.1, 100.0


def _log_position(value: float) -> float:
    low, high = math.log10(EDISH_MIN), math.log10(EDISH_MAX)
    clamped = min(max(value, EDISH_MIN), EDISH_MAX)
    return (math.log10(clamped) - low) / (high - low) * (EDISH_SIZE - 2 * EDISH_PAD)


def edish(points: Sequence[LiverPeak]) -> Markup:
    """eDISH (evaluation of drug-induced serious hepatotoxicity): each subject's peak ALT against peak total
    bilirubin, both as multiples of the ULN on log axes, with Hy's law lines at ALT 3x ULN and bilirubin 2x ULN
    (FDA guidance on drug-induced liver injury, 2009). Each point links to the subject's timeline."""

    def x(value: float) -> float:
        return EDISH_PAD + _log_position(value)

    def y(value: float) -> float:
        return EDISH_SIZE - EDISH_PAD - _log_position(value)

    parts = [
        f'<rect x="{EDISH_PAD}" y="{EDISH_PAD}" width="{EDISH_SIZE - 2 * EDISH_PAD}" '
        f'height="{EDISH_SIZE - 2 * EDISH_PAD}" fill="none" stroke="#636363"/>'
    ]
    for tick in (0.1, 1, 10, 100):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{EDISH_SIZE - EDISH_PAD + 16}" class="tick" text-anchor="middle">{tick:g}'
            f'</text><text x="{EDISH_PAD - 6}" y="{y(tick) + 4:.1f}" class="tick" text-anchor="end">{tick:g}</text>'
        )
    parts.append(
        f'<line class="hy-alt" x1="{x(3):.1f}" x2="{x(3):.1f}" y1="{EDISH_PAD}" y2="{EDISH_SIZE - EDISH_PAD}" '
        'stroke="#cb181d" stroke-dasharray="5 3"/>'
        f'<line class="hy-bili" x1="{EDISH_PAD}" x2="{EDISH_SIZE - EDISH_PAD}" y1="{y(2):.1f}" y2="{y(2):.1f}" '
        'stroke="#cb181d" stroke-dasharray="5 3"/>'
        f'<text x="{EDISH_SIZE - EDISH_PAD - 4}" y="{EDISH_PAD + 14}" class="tick" text-anchor="end">'
        "Possible Hy's law range</text>"
        f'<text x="{EDISH_PAD + 4}" y="{EDISH_PAD + 14}" class="tick">Hyperbilirubinaemia</text>'
        f'<text x="{EDISH_SIZE - EDISH_PAD - 4}" y="{EDISH_SIZE - EDISH_PAD - 6}" class="tick" text-anchor="end">'
        "Temple's corollary</text>"
        f'<text x="{EDISH_SIZE / 2:.0f}" y="{EDISH_SIZE - 12}" class="axis" text-anchor="middle">'
        "peak ALT (x ULN)</text>"
        f'<text x="14" y="{EDISH_SIZE / 2:.0f}" class="axis" text-anchor="middle" '
        f'transform="rotate(-90 14 {EDISH_SIZE / 2:.0f})">peak total bilirubin (x ULN)</text>'
    )
    for p in points:
        hy = p.peak_alt_x_uln >= 3 and p.peak_bili_x_uln >= 2
        fill = "#cb181d" if hy else "#3182bd"
        title = f"{p.subject_id}: ALT {p.peak_alt_x_uln:.2f}x ULN, bilirubin {p.peak_bili_x_uln:.2f}x ULN"
        parts.append(
            f'<a href="/subjects/{_attr(p.subject_id)}" class="edish-point"><g><title>{_attr(title)}</title>'
            f'<circle cx="{x(p.peak_alt_x_uln):.1f}" cy="{y(p.peak_bili_x_uln):.1f}" r="5" fill="{fill}" '
            'fill-opacity="0.8"/></g></a>'
        )
    body = "".join(parts)
    return Markup(  # noqa: S704 (every text and attribute value in `body` went through _attr, i.e. escape)
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {EDISH_SIZE} {EDISH_SIZE}" '
        f'width="{EDISH_SIZE}" height="{EDISH_SIZE}" aria-label="eDISH plot">{body}</svg>'
    )
