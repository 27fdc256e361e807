"""An independent reading of raw wire messages for the DSMB report's figures: plain Python, none of the product's
code (no domain module, no scipy, no lifelines), so a test comparing the two compares two computations."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date
from typing import Any

SubjectKey = str  # USUBJID (one study in these tests)


def current_messages(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Valid JSON objects, first use of each msg_id only, the highest record_version of each AE / RS record."""
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    top: dict[tuple[Any, ...], int] = {}
    for line in lines:
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if not isinstance(m, dict) or m.get("msg_id") in seen or "USUBJID" not in m:
            continue
        if m.get("msg_type") not in ("AE", "LB", "VS", "EG", "SUBJECT", "RS"):
            continue
        if m["msg_type"] == "AE" and (not 1 <= int(m["AETOXGR"]) <= 5 or "-13-" in str(m.get("AESTDTC"))):
            continue
        seen.add(m["msg_id"])
        key: tuple[Any, ...] | None = None
        if m["msg_type"] == "AE":
            key = ("AE", m["USUBJID"], m["AESPID"])
        elif m["msg_type"] == "RS":
            key = ("RS", m["USUBJID"], m["RSTESTCD"], m["RSDTC"])
        if key is not None:
            if m["record_version"] <= top.get(key, 0):
                continue
            top[key] = m["record_version"]
            kept = [k for k in kept if _key(k) != key]
        kept.append(m)
    return kept


def _key(m: dict[str, Any]) -> tuple[Any, ...] | None:
    if m["msg_type"] == "AE":
        return ("AE", m["USUBJID"], m["AESPID"])
    if m["msg_type"] == "RS":
        return ("RS", m["USUBJID"], m["RSTESTCD"], m["RSDTC"])
    return None


def first_day(text: str) -> date:
    parts = text[:10].split("-")
    return date(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1, int(parts[2]) if len(parts) > 2 else 1)


def events(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["msg_type"] == "SUBJECT" and m["EVENT"] == kind]


def exposure_days(messages: list[dict[str, Any]], cut: date) -> dict[SubjectKey, int]:
    """First dose to the earliest of discontinuation of every drug started, completion, death or cut; both days."""
    starts: dict[str, dict[str, date]] = {}
    for m in events(messages, "FIRST_DOSE"):
        d = first_day(m["EVENTDTC"])
        if d <= cut:
            drugs = starts.setdefault(m["USUBJID"], {})
            drugs[m["DRUG"]] = min(drugs.get(m["DRUG"], d), d)
    days = {}
    for subject, drugs in starts.items():
        first = min(drugs.values())
        ends = [
            first_day(m["EVENTDTC"])
            for k in ("COMPLETED", "DIED")
            for m in events(messages, k)
            if m["USUBJID"] == subject
        ]
        ends += [
            first_day(m["EVENTDTC"])
            for m in events(messages, "DISCONTINUED")
            if m["USUBJID"] == subject and m["DRUG"] is None
        ]
        stops = {}
        for drug, start in drugs.items():
            own = [
                first_day(m["EVENTDTC"])
                for m in events(messages, "DISCONTINUED")
                if m["USUBJID"] == subject and m["DRUG"] == drug and first_day(m["EVENTDTC"]) >= start
            ]
            if own:
                stops[drug] = min(own)
        if len(stops) == len(drugs):
            ends.append(max(stops.values()))
        end = min([cut, *[e for e in ends if e <= cut]])
        days[subject] = (end - first).days + 1
    return days


def kaplan_meier(times: list[int], observed: list[bool]) -> list[tuple[int, float, int]]:
    """(t, S(t), at risk) at each distinct event time: the product-limit estimate by hand."""
    steps = []
    s = 1.0
    for t in sorted({t for t, o in zip(times, observed, strict=True) if o}):
        at_risk = sum(1 for u in times if u >= t)
        d = sum(1 for u, o in zip(times, observed, strict=True) if u == t and o)
        s *= 1 - d / at_risk
        steps.append((t, s, at_risk))
    return steps


def km_median(steps: list[tuple[int, float, int]]) -> float | None:
    return next((float(t) for t, s, _ in steps if s <= 0.5 + 1e-12), None)


def _poisson_cdf(k: int, mu: float) -> float:
    term = total = math.exp(-mu)
    for i in range(1, k + 1):
        term *= mu / i
        total += term
    return total


def _bisect(f: Any, lo: float, hi: float) -> float:
    for _ in range(200):
        mid = (lo + hi) / 2
        if f(mid):
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def poisson_exact(k: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact limits by inverting the Poisson tails (not the chi-square form): P(X >= k; low) = P(X <= k; high) = a/2."""
    a = (1 - confidence) / 2
    low = 0.0 if k == 0 else _bisect(lambda mu: 1 - _poisson_cdf(k - 1, mu) < a, 0.0, 10.0 * k + 10)
    high = _bisect(lambda mu: _poisson_cdf(k, mu) > a, 0.0, 10.0 * k + 50)
    return low, high


def _binom_cdf(x: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(x + 1))


def clopper_pearson(x: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    a = (1 - confidence) / 2
    low = 0.0 if x == 0 else _bisect(lambda p: 1 - _binom_cdf(x - 1, n, p) < a, 0.0, 1.0)
    high = 1.0 if x == n else _bisect(lambda p: _binom_cdf(x, n, p) > a, 0.0, 1.0)
    return low, high
