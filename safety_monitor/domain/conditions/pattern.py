"""Owns the `pattern` condition: per-subject combinations of findings over event time (collection dates).

A pattern is evaluated over the subject's stored findings of the tests it names, sorted by collection date, so
the result does not depend on the order messages arrived in: late or out-of-order results give the same matches
as ordered ones. Results without a full collection date cannot be placed in time and are left out (they are not
evidence for a window).

Identity of an occurrence. Each match is one occurrence in event time, identified by a *measurement*: the
subject plus the collection date/time of one draw or one reading (`--DTC` as sent; the SBP and DBP of one blood
pressure share USUBJID + VSDTC, and the tests of one blood draw share LBDTC). Within a rule the test family is
fixed by the rule's readings, so rule + subject + collection time names the occurrence. It is never a member
message: which message of a measurement arrived first, or in which batch, must not make a second occurrence
(when the SBP and DBP of one reading are cut into two batches the reading is still one reading). The match also
names one member result (`anchor`, for the hit's msg_id): the first of the measurement's results meeting the
reading in the total order (date, time as sent, msg_id), a choice made from the data alone.

Kinds, with the measurement that identifies each occurrence:
- `hys_law`: ALT or AST >= 3 x ULN and total bilirubin >= 2 x ULN collected 0-14 days after it, with ALP < 2 x ULN
  (no initial cholestasis). FDA guidance "Drug-Induced Liver Injury: Premarketing Clinical Evaluation" (2009);
  the 0-14 day order follows admiral's ADLBHY template.
  ALP is checked on results collected between the aminotransferase and the bilirubin elevation; when none was
  measured the match stands and says so (a missed Hy's law is worse than one a reviewer sets aside).
  Identity: the bilirubin draw. Jaundice after hepatocellular injury is what turns a transaminase rise into a
  potential Hy's law case, so the draw whose bilirubin completes the pair is the occurrence; the aminotransferase
  result shown beside it is the highest (x ULN) in the 14 days before, whichever message brought it.
- `repeated`: at least `count` measurements (distinct collection times) meeting any of the readings within
  `window_days`; e.g. two BP readings >= 160/100 (SBP >= 160 or DBP >= 100, CTCAE v5 Hypertension grade 3)
  within 7 days. Identity: each measurement that completes a qualifying cluster (the latest of the cluster).
  A reading meets "160/100" when its SBP or its DBP does, so its two messages are one measurement, in whichever
  order or batch they come.
- `persistent`: consecutive draws (by collection date) all meeting the reading over at least `days` days, with
  no draw in between that does not; e.g. ALT > 5 x ULN for more than 2 weeks (FDA DILI stop-drug criteria). A
  draw meets "ALT or AST > 5 x ULN" when any of its results does, and breaks the run only when none does (an AST
  within limits beside an ALT > 5 x ULN in the same draw does not end the elevation). Identity: the run, named
  by the first draw at or beyond `days` after the run began: the day the stop-drug criterion was met. Draws
  later in the same run confirm it and make no new occurrence.
- `together`: every reading met by some result within `window_days` of a result meeting the first one; e.g. TSH
  above ULN with FT4 below LLN (`window_days: 0`: the same day). Identity: the draw meeting the first reading
  (the TSH draw): the companion results are context for it, and results of the first reading in one draw (ALT and
  AST) are one occurrence.

`repeated` and `together` only grow with data (a new result never takes an occurrence away), so every occurrence
found on part of the data is one of those found on all of it. A `hys_law` occurrence can be taken away by a late
ALP >= 2 x ULN, and a `persistent` run can be split or lengthened backwards by a late result: for these two kinds
the hits stored are replaced by what the results as they stand show. Only the occurrences from a `revision_mark`
on can differ from the stored ones (the proof is with the method); those before it stand as stored
(service/patterns.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from itertools import groupby

from safety_monitor.domain.conditions.finding import Comparison, ValueTest
from safety_monitor.domain.dates import PartialDate
from safety_monitor.domain.grading import Graded, GradeResult
from safety_monitor.domain.messages import Finding, MessageType

GradedFinding = tuple[Finding, tuple[GradeResult, ...]]


class PatternKind(StrEnum):
    HYS_LAW = "hys_law"
    REPEATED = "repeated"
    PERSISTENT = "persistent"
    TOGETHER = "together"


@dataclass(frozen=True, slots=True)
class Reading:
    """A result of one of `tests` (in `domain`) meeting `test`."""

    domain: MessageType
    tests: frozenset[str]
    test: ValueTest

    def applies(self, finding: Finding) -> bool:
        return finding.domain is self.domain and finding.test_code in self.tests

    def holds(self, finding: Finding) -> bool | None:
        return self.test.holds(finding) if self.applies(finding) else None

    def describe(self) -> str:
        return f"{'/'.join(sorted(self.tests))} {self.test.describe()}"


@dataclass(frozen=True, slots=True)
class PatternMatch:
    """One occurrence of a pattern: the measurement that identifies it, a member result to name, the evidence."""

    occurrence: str  # the collection date/time (as sent) of the measurement identifying the occurrence
    anchor: Finding  # a result of that measurement, chosen from the data alone (the hit's msg_id)
    basis: tuple[Finding, ...]
    grade: int  # the worst CTCAE grade among the evidence (0 when none is graded)
    detail: str


@dataclass(frozen=True, slots=True)
class PatternCondition:
    """A named per-subject pattern with typed parameters (see the module docstring for each kind)."""

    pattern: PatternKind
    readings: tuple[Reading, ...]  # hys_law: (aminotransferase, bilirubin, ALP below); others: as configured
    window_days: int = 0
    count: int = 2
    days: int = 0

    kind = "pattern"

    @property
    def label(self) -> str:
        return {
            PatternKind.HYS_LAW: "Potential Hy's law",
            PatternKind.REPEATED: f"{self.count} readings within {self.window_days} days",
            PatternKind.PERSISTENT: f"Persisting over {self.days} days",
            PatternKind.TOGETHER: "Concurrent results",
        }[self.pattern]

    def creates(self, finding: Finding) -> bool:
        """Whether this result can create an occurrence: it meets a reading that is evidence, not a qualifier
        (for Hy's law the ALP reading only excludes, so a normal ALP starts nothing)."""
        evidence = self.readings[:2] if self.pattern is PatternKind.HYS_LAW else self.readings
        return any(r.holds(finding) is True for r in evidence)

    def may_change(self, finding: Finding) -> bool:
        """Whether a result that creates nothing can still change an occurrence: a result not meeting a
        persistent reading breaks its run; any ALP result in a Hy's law window excludes it or adds evidence.
        A result not meeting the readings of `repeated` or `together` changes nothing."""
        if self.pattern is PatternKind.PERSISTENT:
            return self.readings[0].holds(finding) is False
        if self.pattern is PatternKind.HYS_LAW:
            return self.readings[2].applies(finding)
        return False

    @property
    def revisable(self) -> bool:
        """Whether a late result can take an occurrence away (`hys_law`, `persistent`), not only add one."""
        return self.pattern in (PatternKind.HYS_LAW, PatternKind.PERSISTENT)

    @property
    def lookback_days(self) -> int:
        """Days of results before the earliest changed one that `revision_mark` reads first. For `hys_law` they
        are all it needs; for `persistent` twice the run length usually holds a break, else the whole history
        is read."""
        assert self.revisable
        return self.window_days if self.pattern is PatternKind.HYS_LAW else 2 * self.days

    def revision_mark(self, findings: Iterable[GradedFinding], first_changed: date) -> Mark | None:
        """The place in event time from which occurrences can differ once results collected on or after
        `first_changed` are added or graded again; occurrences placed before it (`occurrence_mark`) stand as
        stored. `findings` are the subject's results collected from `lookback_days` before `first_changed` on (at
        least); None when they cannot show the mark, and then the whole history must be evaluated.

        - `hys_law`: an occurrence rests on its bilirubin draw, the aminotransferase results of the `window_days`
          before it and the ALP results in between. A result collected on day d can only change occurrences of
          draws on days d to d + `window_days`; the mark is `first_changed` itself, and the occurrences from it on
          need the results from `first_changed - window_days` on.
        - `persistent`: a run ends at a draw that breaks it (none of its results meets the reading). A break
          collected before `first_changed` is not changed, and neither is anything before it, so the runs it
          ended and their occurrences stand; the runs after it begin after it, and all their draws are read.
          The mark is the last break collected on a day before `first_changed`; without one among `findings` the
          run may reach further back.
        """
        assert self.revisable
        if self.pattern is PatternKind.HYS_LAW:
            return (first_changed, "")
        (reading,) = self.readings
        mark: Mark | None = None
        rows = _dated(f for f in findings if reading.applies(f[0]))
        for draw in _measurements([r for r in rows if r[0] < first_changed]):
            verdicts = [reading.holds(r[1]) for r in draw]
            if True not in verdicts and False in verdicts:
                mark = (draw[0][0], draw[0][1].collected_at.text)
        return mark

    def needed_tests(self) -> frozenset[tuple[MessageType, str]]:
        """The (domain, test code) pairs whose results the pattern reads: load just these for a subject."""
        return frozenset((r.domain, t) for r in self.readings for t in r.tests)

    def evaluate(self, findings: Iterable[GradedFinding]) -> list[PatternMatch]:
        """Every occurrence in one subject's results, in collection order, one per measurement identifying it;
        neither arrival order nor the order of `findings` matters."""
        dated = _dated(f for f in findings if any(r.applies(f[0]) for r in self.readings))
        if self.pattern is PatternKind.HYS_LAW:
            return _hys_law(self, dated)
        if self.pattern is PatternKind.REPEATED:
            return _repeated(self, dated)
        if self.pattern is PatternKind.PERSISTENT:
            return _persistent(self, dated)
        return _together(self, dated)


_Dated = tuple[date, Finding, tuple[GradeResult, ...]]
Mark = tuple[date, str]  # a measurement's place in event time: its collection date, then its date/time as sent


def occurrence_mark(occurrence: str) -> Mark | None:
    """The place in event time of an occurrence (its measurement's collection date/time as sent); None when it
    has no full date (an occurrence always has one: its measurement was placed in time to be found)."""
    try:
        day = PartialDate.parse(occurrence).as_date()
    except ValueError:
        return None
    return None if day is None else (day, occurrence)


def _dated(findings: Iterable[GradedFinding]) -> list[_Dated]:
    """Results with a full collection date, sorted by date, time as sent, then msg_id (a total order)."""
    rows = []
    for finding, grades in findings:
        day = finding.collected_at.as_date()
        if day is not None:
            rows.append((day, finding, grades))
    rows.sort(key=lambda r: (r[0], r[1].collected_at.text, r[1].envelope.msg_id))
    return rows


def _measurements(rows: Sequence[_Dated]) -> list[list[_Dated]]:
    """Sorted rows grouped by measurement: one collection date/time (as sent) of the subject."""
    return [list(group) for _, group in groupby(rows, key=lambda r: r[1].collected_at.text)]


def _worst(rows: Iterable[_Dated]) -> int:
    return max((g.grade for _, _, grades in rows for g in grades if isinstance(g, Graded)), default=0)


def _show(finding: Finding) -> str:
    value = "no value" if finding.value is None else f"{finding.value:g}"
    unit = f" {finding.unit}" if finding.unit else ""
    ratio = f" ({finding.value / finding.uln:.1f} x ULN)" if finding.value is not None and finding.uln else ""
    return f"{finding.test_code} {value}{unit}{ratio} on {finding.collected_at.text}"


def _match(rows: Sequence[_Dated], basis: Sequence[_Dated], detail: str) -> PatternMatch:
    """The occurrence identified by the measurement of `rows` (its results meeting the reading)."""
    first = rows[0][1]
    return PatternMatch(first.collected_at.text, first, tuple(r[1] for r in basis), _worst(basis), detail)


def _hys_law(condition: PatternCondition, rows: Sequence[_Dated]) -> list[PatternMatch]:
    aminotransferase, bilirubin, alp_ok = condition.readings
    window = condition.window_days
    elevated = [r for r in rows if aminotransferase.holds(r[1]) is True]
    matches = []
    for draw in _measurements([r for r in rows if bilirubin.holds(r[1]) is True]):
        day = draw[0][0]
        # Bilirubin 0-14 days after the aminotransferase elevation (same day included).
        before = [a for a in elevated if 0 <= (day - a[0]).days <= window]
        if not before:
            continue
        first_day = min(a[0] for a in before)
        alps = [r for r in rows if alp_ok.applies(r[1]) and first_day <= r[0] <= day]
        if any(alp_ok.holds(r[1]) is False for r in alps):
            continue  # ALP >= 2 x ULN: a cholestatic picture, not Hy's law
        worst_at = max(before, key=lambda a: ((a[1].value or 0.0) / (a[1].uln or 1.0), a[0], a[1].envelope.msg_id))
        alp_note = (
            f"ALP {alp_ok.test.describe()} ({len(alps)} result(s) in the window)"
            if alps
            else "ALP not measured in the window"
        )
        shown = "; ".join(_show(r[1]) for r in (worst_at, *draw))
        matches.append(_match(draw, (worst_at, *alps, *draw), f"{shown}; {alp_note}"))
    return matches


def _repeated(condition: PatternCondition, rows: Sequence[_Dated]) -> list[PatternMatch]:
    # One measurement = one collection time (SBP and DBP of one reading share USUBJID + VSDTC).
    ordered = _measurements([r for r in rows if any(reading.holds(r[1]) is True for reading in condition.readings)])
    matches = []
    for index, measurement in enumerate(ordered):
        day = measurement[0][0]
        cluster = [m for m in ordered[: index + 1] if (day - m[0][0]).days <= condition.window_days]
        if len(cluster) < condition.count:
            continue
        evidence = [row for m in cluster for row in m]
        shown = "; ".join(_show(row[1]) for row in evidence)
        detail = f"{len(cluster)} readings within {condition.window_days} days: {shown}"
        matches.append(_match(measurement, evidence, detail))
    return matches


def _persistent(condition: PatternCondition, rows: Sequence[_Dated]) -> list[PatternMatch]:
    (reading,) = condition.readings
    matches = []
    run: list[list[_Dated]] = []  # the draws of the current run, each as its results meeting the reading
    anchored = False
    for draw in _measurements(rows):
        verdicts = [reading.holds(r[1]) for r in draw]
        if True not in verdicts:
            if False in verdicts:
                run, anchored = [], False  # no result of the draw meets the reading: the run ends
            continue  # nothing comparable (no ULN, no value): neither evidence nor a break
        run.append([r for r, holds in zip(draw, verdicts, strict=True) if holds is True])
        start, day = run[0][0][0], draw[0][0]
        if not anchored and (day - start).days >= condition.days:
            anchored = True
            evidence = [r for d in run for r in d]
            detail = (
                f"{reading.describe()} from {run[0][0][1].collected_at.text} to {draw[0][1].collected_at.text} "
                f"({(day - start).days} days, {len(evidence)} results); latest "
                + "; ".join(_show(r[1]) for r in run[-1])
            )
            matches.append(_match(run[-1], evidence, detail))
    return matches


def _together(condition: PatternCondition, rows: Sequence[_Dated]) -> list[PatternMatch]:
    first, *others = condition.readings
    matches = []
    for draw in _measurements([r for r in rows if first.holds(r[1]) is True]):
        day = draw[0][0]
        evidence = list(draw)
        for other in others:
            near = [r for r in rows if abs((r[0] - day).days) <= condition.window_days and other.holds(r[1]) is True]
            if not near:
                break
            # The closest in time, then the earliest: the choice depends on the data only.
            evidence.append(
                min(near, key=lambda r: (abs((r[0] - day).days), r[0], r[1].collected_at.text, r[1].envelope.msg_id))
            )
        else:
            matches.append(_match(draw, evidence, "; ".join(_show(r[1]) for r in evidence)))
    return matches


def hys_law_readings(
    aminotransferase_x_uln: float = 3.0, bilirubin_x_uln: float = 2.0, alp_below_x_uln: float = 2.0
) -> tuple[Reading, Reading, Reading]:
    """The three readings of the Hy's law pattern (ALT/AST, total bilirubin, ALP below its limit)."""
    lb = MessageType.LB
    return (
        Reading(lb, frozenset({"ALT", "AST"}), ValueTest(Comparison.X_ULN_AT_LEAST, aminotransferase_x_uln)),
        Reading(lb, frozenset({"BILI"}), ValueTest(Comparison.X_ULN_AT_LEAST, bilirubin_x_uln)),
        Reading(lb, frozenset({"ALP"}), ValueTest(Comparison.X_ULN_BELOW, alp_below_x_uln)),
    )
