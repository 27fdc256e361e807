"""Owns the best overall response (RECIST 1.1, unconfirmed) and the objective response counts of the report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from safety_monitor.domain.messages import OverallResponse

SubjectKey = tuple[str, str]

# Best first: a subject's best overall response is the first of these among their assessments. Unconfirmed: RECIST
# 1.1 section 4.4 asks single-arm trials to confirm CR/PR at >= 4 weeks; this live report does not.
BEST_ORDER = (
    OverallResponse.CR,
    OverallResponse.PR,
    OverallResponse.SD,
    OverallResponse.NON_CR_NON_PD,
    OverallResponse.PD,
    OverallResponse.NE,
)

METHOD = (
    "Objective response rate: subjects whose best overall response is CR or PR, among subjects with at least one "
    "tumour assessment (RS OVRLRESP with a complete RSDTC on or before the cut). Best overall response is the best "
    "of CR > PR > SD > NON-CR/NON-PD > PD > NE. Responses are unconfirmed (no confirmation at >= 4 weeks and no "
    "minimum duration of SD are required). 95 % interval: Clopper-Pearson (exact binomial)."
)


@dataclass(frozen=True, slots=True)
class ResponseSummary:
    evaluable: int
    responders: int
    best: tuple[tuple[str, int], ...]  # best overall response -> subjects


def best_overall(assessments: list[tuple[date, OverallResponse]]) -> OverallResponse:
    found = {r for _, r in assessments}
    return next(r for r in BEST_ORDER if r in found)


def summarise(assessments: Mapping[SubjectKey, list[tuple[date, OverallResponse]]]) -> ResponseSummary:
    best = [best_overall(items) for items in assessments.values() if items]
    counts = {r.value: sum(1 for b in best if b is r) for r in BEST_ORDER}
    responders = counts[OverallResponse.CR.value] + counts[OverallResponse.PR.value]
    return ResponseSummary(len(best), responders, tuple(counts.items()))
