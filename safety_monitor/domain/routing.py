"""Owns alert routing: labels, matchers, the route tree, grouping, silences and inhibit rules (Alertmanager's shape)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from safety_monitor.domain.alerts import Alert
from safety_monitor.domain.cron import CronSchedule

Labels = Mapping[str, str]

# Labels every alert carries; a rule's own `labels` come beside them and cannot override them.
BUILT_IN_LABELS = ("alertname", "severity", "kind", "study_id", "subject_id", "term", "grade")
GROUP_BY_ALL = "..."  # group_by: [...] -> every alert is its own group (grouped by its identity)


class MatchOp(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """`label op value`; regexes are anchored at both ends (as in Alertmanager); a missing label reads as ""."""

    label: str
    op: MatchOp
    value: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, label: str, op: MatchOp | str, value: str) -> Matcher:
        """Raises re.error for a bad regex."""
        op = MatchOp(op)
        regex = op in (MatchOp.REGEX, MatchOp.NOT_REGEX)
        if regex:
            re.compile(value)  # report the user's own pattern's error, not the anchored one's
        return cls(label, op, value, re.compile(f"(?:{value})\\Z") if regex else None)

    def matches(self, labels: Labels) -> bool:
        actual = labels.get(self.label, "")
        if self.op is MatchOp.EQUAL:
            return actual == self.value
        if self.op is MatchOp.NOT_EQUAL:
            return actual != self.value
        assert self.pattern is not None
        found = self.pattern.match(actual) is not None
        return found if self.op is MatchOp.REGEX else not found

    def __str__(self) -> str:
        return f'{self.label}{self.op.value}"{self.value}"'


def matches_all(matchers: Iterable[Matcher], labels: Labels) -> bool:
    return all(m.matches(labels) for m in matchers)


@dataclass(frozen=True, slots=True)
class Timing:
    """How long to wait before the first email of a group, between emails of a group, and before repeating."""

    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta | None  # None: an open alert is never re-notified


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str
    emails: tuple[str, ...]
    role: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    """A node of the route tree, with its inherited settings already resolved by the loader."""

    id: str  # its key path in the routing file ("route.routes[1]"): part of every group's identity
    receiver: str
    matchers: tuple[Matcher, ...] = ()
    group_by: tuple[str, ...] = (GROUP_BY_ALL,)
    timing: Timing = Timing(timedelta(0), timedelta(0), None)
    continue_matching: bool = False
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """While an open alert matches `source`, alerts matching `target` with the same `equal` labels are held."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]
    name: str = ""


@dataclass(frozen=True, slots=True)
class Silence:
    """Matching alerts are not emailed between `starts_at` and `ends_at`; held, and sent if still open after."""

    id: str
    matchers: tuple[Matcher, ...]
    author: str
    reason: str
    starts_at: datetime
    ends_at: datetime

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def silences(self, labels: Labels, now: datetime) -> bool:
        return self.active(now) and matches_all(self.matchers, labels)


# Domains that never deliver (RFC 2606 and RFC 6761): an address there is a placeholder, not a person.
_RESERVED_DOMAINS = ("example.org", "example.com", "example.net", "example", "test", "invalid", "localhost")


def reserved_domain(address: str) -> str | None:
    """The reserved domain an address is in (example.org, .test, .invalid, localhost...), or None."""
    domain = address.rpartition("@")[2].lower().rstrip(".")
    return next((r for r in _RESERVED_DOMAINS if domain == r or domain.endswith("." + r)), None)


# The digest kinds and the period each covers when no digest of its kind was sent before: daily for the medical
# monitors, weekly for the DSMB (after the last one sent, a digest covers everything since).
DIGEST_PERIODS: Mapping[str, timedelta] = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """Which receivers get which digest kind, when (cron in a time zone), rendered with which template."""

    name: str
    kind: str
    receivers: tuple[str, ...]
    schedule: CronSchedule
    template: str = "digest"
    source: str = ""  # "rules/routing.yaml:60"


@dataclass(frozen=True, slots=True)
class Routing:
    """The routing file, parsed and cross-checked: who hears which alert, how batched, how often."""

    receivers: Mapping[str, Receiver]
    route: Route
    inhibit_rules: tuple[InhibitRule, ...] = ()
    silences: tuple[Silence, ...] = ()
    digests: tuple[DigestSchedule, ...] = ()
    content_hash: str = ""
    source: str = ""  # the file, or "" for the fallback built from ALERT_RECIPIENTS


def fallback_routing(recipients: tuple[str, ...]) -> Routing:
    """No routing file: every alert to ALERT_RECIPIENTS at once, each alert its own group, never repeated."""
    return Routing({"default": Receiver("default", recipients)}, Route("route", "default"))


def alert_labels(alert: Alert, rule_labels: Iterable[tuple[str, str]] = (), kind: str = "") -> dict[str, str]:
    """The labels routes, silences and inhibit rules match on: the rule's own labels plus the built-in ones."""
    labels = dict(rule_labels)
    labels.update(
        alertname=alert.rule_id,
        severity=alert.severity,
        kind=kind,
        study_id=alert.study_id,
        subject_id=alert.subject_id,
        term=alert.term,
        grade=str(alert.grade),
    )
    return labels


def match_routes(route: Route, labels: Labels) -> list[Route]:
    """The routes an alert goes to: depth first, the first matching child wins unless it says `continue`;
    a node none of whose children match takes the alert itself. The root matches everything."""
    matched: list[Route] = []
    for child in route.routes:
        if not matches_all(child.matchers, labels):
            continue
        matched.extend(match_routes(child, labels))
        if not child.continue_matching:
            break
    return matched or [route]


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one alert change goes: a receiver, in one group of one route."""

    route: Route
    receiver: str
    group_id: str
    group_labels: tuple[tuple[str, str], ...]


def group_id(route: Route, receiver: str, group_labels: Iterable[tuple[str, str]]) -> str:
    basis = "\x1f".join([route.id, receiver, *(f"{k}={v}" for k, v in group_labels)])
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def destinations(routing: Routing, labels: Labels, alert_key: str) -> list[Destination]:
    """One destination per receiver (the first matching route that names it decides the group and timing)."""
    found: dict[str, Destination] = {}
    for route in match_routes(routing.route, labels):
        if route.receiver in found:
            continue
        if GROUP_BY_ALL in route.group_by:
            grouped: tuple[tuple[str, str], ...] = (("alert", alert_key),)
        else:
            grouped = tuple((name, labels.get(name, "")) for name in route.group_by)
        found[route.receiver] = Destination(route, route.receiver, group_id(route, route.receiver, grouped), grouped)
    return list(found.values())


def silenced_by(silences: Iterable[Silence], labels: Labels, now: datetime) -> Silence | None:
    return next((s for s in silences if s.silences(labels, now)), None)


@dataclass(frozen=True, slots=True)
class Inhibitions:
    """The inhibit rules in force with their open source alerts indexed by each rule's `equal` labels.

    Built once per delivery pass from the open alerts (as Alertmanager indexes its inhibition sources), so what
    holds one notification is found with one lookup per rule, whatever the number of open alerts. The answer is
    the plain rule's: the first rule (in file order) whose target matchers match, with the first open alert (in
    the order given) other than the target itself that matches its source matchers and has the same value
    (a missing label reads as "") for every `equal` label.
    """

    rules: tuple[InhibitRule, ...] = ()
    # per rule: `equal` label values -> the first two distinct source alert keys with them (one may be the target)
    sources: tuple[Mapping[tuple[str, ...], tuple[str, ...]], ...] = ()

    @classmethod
    def index(cls, rules: Iterable[InhibitRule], open_alerts: Iterable[tuple[str, Labels]]) -> Inhibitions:
        sources = InhibitionSources(tuple(rules))
        sources.add(open_alerts)
        return sources.build()

    def inhibiting(self, target: Labels, target_key: str) -> tuple[InhibitRule, str] | None:
        """(rule, source alert key) inhibiting `target`, if an open alert other than itself is a source for it."""
        for rule, index in zip(self.rules, self.sources, strict=True):
            if not matches_all(rule.target, target):
                continue
            for key in index.get(tuple(target.get(name, "") for name in rule.equal), ()):
                if key != target_key:
                    return rule, key
        return None


NO_INHIBITIONS = Inhibitions()


@dataclass(slots=True)
class InhibitionSources:
    """Builds `Inhibitions` from open alerts fed in any number of chunks, in order, keeping only the index.

    A delivery pass reads the open alerts a page at a time: only the alerts that match a rule's source matchers
    are kept, as their key under the rule's `equal` values, so its memory follows the index, not the store. An
    alert fed more than once (its log entry for each receiver) is a source under each entry's labels.
    """

    rules: tuple[InhibitRule, ...]
    _indexes: tuple[dict[tuple[str, ...], tuple[str, ...]], ...] = field(init=False)

    def __post_init__(self) -> None:
        self._indexes = tuple({} for _ in self.rules)

    def add(self, open_alerts: Iterable[tuple[str, Labels]]) -> None:
        if not self.rules:
            return
        for key, labels in open_alerts:
            for rule, index in zip(self.rules, self._indexes, strict=True):
                if not matches_all(rule.source, labels):
                    continue
                values = tuple(labels.get(name, "") for name in rule.equal)
                found = index.get(values, ())
                if len(found) < 2 and key not in found:
                    index[values] = (*found, key)

    def build(self) -> Inhibitions:
        return Inhibitions(self.rules, self._indexes) if self.rules else NO_INHIBITIONS


def group_due_at(
    *,
    earliest_pending: datetime,
    last_flush_at: datetime | None,
    timing: Timing,
    urgent: bool,
) -> datetime:
    """When a group with pending notifications is emailed next.

    An escalation goes at once, whatever any wait or interval says. A group not emailed within the last
    `group_interval` is a fresh group: it waits `group_wait` after its first pending change, to batch what
    follows. A group emailed recently waits until `group_interval` after that email.
    """
    if urgent:
        return earliest_pending
    if last_flush_at is None or last_flush_at + timing.group_interval <= earliest_pending:
        return earliest_pending + timing.group_wait
    return last_flush_at + timing.group_interval


def repeat_due(last_notified_at: datetime | None, repeat_interval: timedelta | None, now: datetime) -> bool:
    """An open alert is re-notified `repeat_interval` after the last email that carried it."""
    return last_notified_at is not None and repeat_interval is not None and last_notified_at + repeat_interval <= now
