"""Owns loading routing.yaml: receivers, the route tree, inhibit rules, silences, digest schedules; every error."""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from safety_monitor.domain.cron import CronError
from safety_monitor.domain.routing import (
    DIGEST_PERIODS,
    GROUP_BY_ALL,
    DigestSchedule,
    InhibitRule,
    Matcher,
    MatchOp,
    Receiver,
    Route,
    Routing,
    Silence,
    Timing,
    reserved_domain,
)
from safety_monitor.domain.rules import Severity
from safety_monitor.ruleset.cron import Cron
from safety_monitor.ruleset.errors import ConfigError, ConfigInvalid
from safety_monitor.ruleset.located_yaml import DuplicateKey, KeyPath, Located, format_path, load_located

ROUTING_FILE = "routing.yaml"
TOP_KEYS = {"receivers", "defaults", "route", "inhibit_rules", "silences", "digests"}
RECEIVER_KEYS = {"email", "role"}
TIMING_KEYS = ("group_wait", "group_interval", "repeat_interval")
DEFAULT_KEYS = {"group_by", *TIMING_KEYS}
ROUTE_KEYS = {"receiver", "matchers", "continue", "routes", *DEFAULT_KEYS}
INHIBIT_KEYS = {"name", "source_matchers", "target_matchers", "equal"}
SILENCE_KEYS = {"id", "matchers", "author", "reason", "starts_at", "ends_at"}
DIGEST_KEYS = {"name", "kind", "receivers", "schedule", "time_zone", "template"}
BUILT_IN_DEFAULTS: dict[str, Any] = {
    "group_by": [GROUP_BY_ALL],
    "group_wait": "0s",
    "group_interval": "0s",
    "repeat_interval": "never",
}

_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+$")
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"\s]*))\s*$')
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class _Ctx:
    file: str
    doc: Located
    errors: list[ConfigError]
    environ: Mapping[str, str] = field(default_factory=dict)
    deliverable: bool = False  # MAIL_BACKEND=smtp: every receiver must reach real addresses

    def error(self, path: KeyPath, message: str) -> None:
        self.errors.append(ConfigError(self.file, self.doc.line(path), format_path(path), message))


def _did_you_mean(value: str, allowed: set[str] | list[str]) -> str:
    close = difflib.get_close_matches(value, sorted(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(sorted(allowed)) or 'none'}"


def _keys(ctx: _Ctx, mapping: dict[str, Any], path: KeyPath, allowed: set[str]) -> None:
    for key in mapping:
        if key not in allowed:
            ctx.error((*path, key), f"{key!r} is not an option{_did_you_mean(str(key), allowed)}")


def _mapping(ctx: _Ctx, value: Any, path: KeyPath, what: str) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        ctx.error(path, f"{what} must be a mapping, got {value!r}")
        return None
    return value


def _text(ctx: _Ctx, raw: dict[str, Any], key: str, path: KeyPath, *, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            ctx.error(path, f"{key!r} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        ctx.error((*path, key), f"{key} must be non-empty text, got {value!r}")
        return None
    return value.strip()


def _names(ctx: _Ctx, value: Any, path: KeyPath) -> list[str] | None:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        ctx.error(path, f"{path[-1]} must be a list of names, got {value!r}")
        return None
    return [v.strip() for v in value]


def parse_duration(value: Any) -> timedelta | None:
    """'30s', '5m', '4h', '1d', '1w' or combinations ('1h30m'); 0 is allowed. None if not a duration."""
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return timedelta(0)
    match = _DURATION.match(value) if isinstance(value, str) and value else None
    if match is None:
        return None
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def _duration(ctx: _Ctx, value: Any, path: KeyPath) -> timedelta | None:
    parsed = parse_duration(value)
    if parsed is None:
        ctx.error(path, f"{path[-1]}: {value!r} is not a duration: write e.g. 30s, 5m, 4h, 1d or 1h30m")
    return parsed


def parse_matcher(text: str) -> Matcher:
    """'severity="critical"', 'signal=~"haem.*|pneumonitis"', 'grade!=1'; raises ValueError with a hint."""
    match = _MATCHER.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a matcher: write label, operator (=, !=, =~, !~) and value, e.g. 'severity=\"critical\"'"
        )
    label, op, quoted, bare = match.groups()
    value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
    try:
        return Matcher.of(label, MatchOp(op), value)
    except re.error as exc:
        raise ValueError(f"{text!r}: the regular expression does not compile: {exc}") from None


def _matchers(ctx: _Ctx, value: Any, path: KeyPath) -> tuple[Matcher, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        ctx.error(path, f"{path[-1]} must be a list of matchers such as 'severity=\"critical\"', got {value!r}")
        return None
    found: list[Matcher] = []
    severities = {s.value for s in Severity}
    for index, text in enumerate(value):
        try:
            matcher = parse_matcher(text)
        except ValueError as exc:
            ctx.error((*path, index), str(exc))
            continue
        exact = matcher.op in (MatchOp.EQUAL, MatchOp.NOT_EQUAL)
        if exact and matcher.label == "severity" and matcher.value not in severities:
            hint = _did_you_mean(matcher.value, severities)
            ctx.error((*path, index), f"severity {matcher.value!r} is not a severity{hint}")
            continue
        if exact and matcher.label == "grade" and matcher.value not in {"1", "2", "3", "4", "5"}:
            ctx.error((*path, index), f"grade {matcher.value!r} is impossible: CTCAE grades run 1-5")
            continue
        found.append(matcher)
    return tuple(found) if len(found) == len(value) else None


def _expand(ctx: _Ctx, entries: list[str], path: KeyPath, receiver: str) -> list[str] | None:
    """Addresses with `${NAME}` / `${NAME:-default}` replaced from the environment, each value split at commas:
    the file says who (the role), the deployment says the addresses. An unset variable without a default is an
    error: a receiver must never silently lose its addresses."""
    addresses: list[str] = []
    ok = True
    for entry in entries:
        missing = [v for v, default in _VARIABLE.findall(entry) if not ctx.environ.get(v, "").strip() and not default]
        if missing:
            for variable in missing:
                ctx.error(
                    path,
                    f"receiver {receiver!r}: {variable} is not set; export {variable}=ADDRESS[,ADDRESS...]",
                )
            ok = False
            continue
        expanded = _VARIABLE.sub(lambda m: ctx.environ.get(m.group(1), "").strip() or (m.group(2) or ""), entry)
        if "${" in expanded:
            ctx.error(path, f"receiver {receiver!r}: {entry!r} is not a ${{VARIABLE}} or ${{VARIABLE:-default}}")
            ok = False
            continue
        addresses.extend(a.strip() for a in expanded.split(",") if a.strip())
    return addresses if ok else None


def _receivers(ctx: _Ctx, raw: Any) -> dict[str, Receiver]:
    path: KeyPath = ("receivers",)
    table = _mapping(ctx, raw, path, "receivers")
    if not table:
        if table is not None:
            ctx.error(path, "define at least one receiver (a name with its email addresses)")
        return {}
    receivers: dict[str, Receiver] = {}
    for name, body in table.items():
        where = (*path, name)
        if not isinstance(name, str) or not _NAME.match(name):
            ctx.error(where, f"receiver name {name!r}: use letters, digits, '-', '_' and '.'")
            continue
        spec = _mapping(ctx, body, where, f"receiver {name!r}")
        if spec is None:
            continue
        _keys(ctx, spec, where, RECEIVER_KEYS)
        emails = spec.get("email")
        if emails is None:
            ctx.error(where, f"receiver {name!r} needs 'email': the addresses that receive its alerts")
            continue
        names = _names(ctx, emails, (*where, "email"))
        if names is None:
            continue
        addresses = _expand(ctx, names, (*where, "email"), name)
        if addresses is None:
            continue
        wrong = [a for a in addresses if not _EMAIL.match(a)]
        if wrong or not addresses:
            ctx.error((*where, "email"), f"not an email address: {', '.join(wrong) or '(empty list)'}")
            continue
        placeholders = [a for a in addresses if reserved_domain(a)]
        if ctx.deliverable and placeholders:
            variables = ", ".join(sorted({v for n in names for v, _ in _VARIABLE.findall(n)})) or "its addresses"
            ctx.error(
                (*where, "email"),
                f"receiver {name!r} would be mailed at {', '.join(placeholders)}, a reserved domain that delivers "
                f"nowhere, with MAIL_BACKEND=smtp: set {variables} to the real addresses",
            )
            continue
        role = spec.get("role", "")
        if not isinstance(role, str):
            ctx.error((*where, "role"), f"role must be text, got {role!r}")
            continue
        receivers[name] = Receiver(name, tuple(addresses), role)
    return receivers


@dataclass(frozen=True, slots=True)
class _Inherited:
    receiver: str | None
    group_by: tuple[str, ...]
    timing: Timing


def _settings(ctx: _Ctx, raw: dict[str, Any], path: KeyPath, parent: _Inherited) -> _Inherited:
    """group_by and the three timings of a node: its own where given, else the parent's."""
    group_by = parent.group_by
    if "group_by" in raw:
        names = _names(ctx, raw["group_by"], (*path, "group_by"))
        if names is not None:
            if GROUP_BY_ALL in names and len(names) > 1:
                ctx.error((*path, "group_by"), "group_by: [...] groups by every label: list nothing beside it")
            group_by = tuple(names)
    values: dict[str, timedelta | None] = {
        "group_wait": parent.timing.group_wait,
        "group_interval": parent.timing.group_interval,
        "repeat_interval": parent.timing.repeat_interval,
    }
    for key in TIMING_KEYS:
        if key not in raw:
            continue
        if key == "repeat_interval" and raw[key] in ("never", None):
            values[key] = None
            continue
        parsed = _duration(ctx, raw[key], (*path, key))
        if parsed is not None:
            values[key] = parsed
    if values["repeat_interval"] is not None and values["repeat_interval"] <= timedelta(0):
        ctx.error((*path, "repeat_interval"), "repeat_interval must be above 0 (or 'never')")
    wait, interval = values["group_wait"], values["group_interval"]
    assert wait is not None and interval is not None
    return _Inherited(parent.receiver, group_by, Timing(wait, interval, values["repeat_interval"]))


def _route(
    ctx: _Ctx, raw: Any, path: KeyPath, parent: _Inherited, receivers: dict[str, Receiver], root: bool
) -> Route | None:
    spec = _mapping(ctx, raw, path, "a route")
    if spec is None:
        return None
    _keys(ctx, spec, path, ROUTE_KEYS)
    inherited = _settings(ctx, spec, path, parent)
    receiver = _text(ctx, spec, "receiver", path, required=root) or inherited.receiver
    if receiver is not None and receivers and receiver not in receivers:
        ctx.error(
            (*path, "receiver"),
            f"undefined receiver {receiver!r} used in route{_did_you_mean(receiver, set(receivers))}",
        )
    if root and "matchers" in spec:
        ctx.error((*path, "matchers"), "the root route takes every alert: it has no matchers")
    matchers = _matchers(ctx, spec.get("matchers"), (*path, "matchers"))
    proceed = spec.get("continue", False)
    if not isinstance(proceed, bool):
        ctx.error((*path, "continue"), f"continue must be true or false, got {proceed!r}")
    if root and "continue" in spec:
        ctx.error((*path, "continue"), "the root route has nothing after it to continue to")
    here = _Inherited(receiver, inherited.group_by, inherited.timing)
    children_raw = spec.get("routes", [])
    children: list[Route | None] = []
    if not isinstance(children_raw, list):
        ctx.error((*path, "routes"), "routes must be a list of routes")
    else:
        children = [
            _route(ctx, child, (*path, "routes", i), here, receivers, False) for i, child in enumerate(children_raw)
        ]
    if receiver is None or matchers is None or any(c is None for c in children):
        return None
    return Route(
        id=format_path(path),
        receiver=receiver,
        matchers=matchers,
        group_by=inherited.group_by,
        timing=inherited.timing,
        continue_matching=proceed is True,
        routes=tuple(c for c in children if c is not None),
    )


def _inhibit_rules(ctx: _Ctx, raw: Any) -> list[InhibitRule]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        ctx.error(("inhibit_rules",), "inhibit_rules must be a list")
        return []
    rules: list[InhibitRule] = []
    for index, body in enumerate(raw):
        path: KeyPath = ("inhibit_rules", index)
        spec = _mapping(ctx, body, path, "an inhibit rule")
        if spec is None:
            continue
        _keys(ctx, spec, path, INHIBIT_KEYS)
        missing = [k for k in ("source_matchers", "target_matchers") if not spec.get(k)]
        if missing:
            ctx.error(
                path, f"an inhibit rule needs {' and '.join(missing)} (a rule without them would hold everything)"
            )
            continue
        source = _matchers(ctx, spec["source_matchers"], (*path, "source_matchers"))
        target = _matchers(ctx, spec["target_matchers"], (*path, "target_matchers"))
        equal = _names(ctx, spec.get("equal", []), (*path, "equal")) if "equal" in spec else []
        name = spec.get("name", f"inhibit_rules[{index}]")
        if not isinstance(name, str):
            ctx.error((*path, "name"), f"name must be text, got {name!r}")
            continue
        if source is not None and target is not None and equal is not None:
            rules.append(InhibitRule(source, target, tuple(equal), name))
    return rules


def _instant(ctx: _Ctx, spec: dict[str, Any], key: str, path: KeyPath) -> datetime | None:
    value = spec.get(key)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            ctx.error((*path, key), f"{key}: {value!r} is not an ISO 8601 date-time (2026-05-01T08:00:00+08:00)")
            return None
    if isinstance(value, date) and not isinstance(value, datetime):
        ctx.error((*path, key), f"{key}: give a date-time with a UTC offset, not only the date {value}")
        return None
    if not isinstance(value, datetime):
        ctx.error((*path, key) if key in spec else path, f"a silence needs {key} (a date-time with a UTC offset)")
        return None
    if value.tzinfo is None:
        ctx.error((*path, key), f"{key}: {value.isoformat()} has no UTC offset: add one (e.g. +08:00 or Z)")
        return None
    return value.astimezone(UTC)


def _silences(ctx: _Ctx, raw: Any) -> list[Silence]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        ctx.error(("silences",), "silences must be a list")
        return []
    silences: list[Silence] = []
    seen: set[str] = set()
    for index, body in enumerate(raw):
        path: KeyPath = ("silences", index)
        spec = _mapping(ctx, body, path, "a silence")
        if spec is None:
            continue
        _keys(ctx, spec, path, SILENCE_KEYS)
        silence_id = _text(ctx, spec, "id", path)
        author = spec.get("author")
        reason = spec.get("reason")
        ok = True
        for key, value in (("author", author), ("reason", reason)):
            if not isinstance(value, str) or not value.strip():
                ctx.error((*path, key) if key in spec else path, f"a silence needs {key}: who silenced it and why")
                ok = False
        if not spec.get("matchers"):
            ctx.error(path, "a silence needs matchers (a silence without them would hold every alert)")
            ok = False
        matchers = _matchers(ctx, spec.get("matchers"), (*path, "matchers"))
        starts, ends = _instant(ctx, spec, "starts_at", path), _instant(ctx, spec, "ends_at", path)
        if starts is not None and ends is not None and ends <= starts:
            ctx.error((*path, "ends_at"), "ends_at must be after starts_at")
            ok = False
        if silence_id is not None and silence_id in seen:
            ctx.error((*path, "id"), f"duplicate silence id {silence_id!r}")
            ok = False
        if silence_id is not None:
            seen.add(silence_id)
        if ok and silence_id and matchers and starts and ends:
            assert isinstance(author, str) and isinstance(reason, str)
            silences.append(Silence(silence_id, matchers, author.strip(), reason.strip(), starts, ends))
    return silences


def parse_silences(file: str, doc: Located, errors: list[ConfigError]) -> list[Silence]:
    """The `silences` list of `doc` (a mapping), checked as in a routing file; every problem appended to `errors`
    (a rules test case states its own silences this way)."""
    data = doc.data.get("silences") if isinstance(doc.data, dict) else None
    return _silences(_Ctx(file, doc, errors), data)


def _template_files(name: str) -> tuple[str, str, str]:
    return f"{name}_subject.txt.j2", f"{name}.txt.j2", f"{name}.html.j2"


def _digests(ctx: _Ctx, raw: Any, receivers: dict[str, Receiver], templates_dir: Path | None) -> list[DigestSchedule]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        ctx.error(("digests",), "digests must be a list")
        return []
    digests: list[DigestSchedule] = []
    seen: set[str] = set()
    for index, body in enumerate(raw):
        path: KeyPath = ("digests", index)
        spec = _mapping(ctx, body, path, "a digest schedule")
        if spec is None:
            continue
        _keys(ctx, spec, path, DIGEST_KEYS)
        name, kind = _text(ctx, spec, "name", path), _text(ctx, spec, "kind", path)
        if kind is not None and kind not in DIGEST_PERIODS:
            ctx.error((*path, "kind"), f"digest kind {kind!r} is unknown: use {' or '.join(DIGEST_PERIODS)}")
            kind = None
        expression, zone = _text(ctx, spec, "schedule", path), _text(ctx, spec, "time_zone", path)
        template = _text(ctx, spec, "template", path, required=False) or "digest"
        who = _names(ctx, spec.get("receivers"), (*path, "receivers")) if "receivers" in spec else None
        if "receivers" not in spec:
            ctx.error(path, "a digest schedule needs receivers")
        ok = who is not None
        for receiver in who or []:
            if receivers and receiver not in receivers:
                hint = _did_you_mean(receiver, set(receivers))
                ctx.error((*path, "receivers"), f"undefined receiver {receiver!r} used in digest{hint}")
                ok = False
        if name is not None and name in seen:
            ctx.error((*path, "name"), f"duplicate digest name {name!r}")
            ok = False
        if name is not None:
            seen.add(name)
        schedule = None
        if expression is not None and zone is not None:
            try:
                schedule = Cron.parse(expression, zone)
            except CronError as exc:
                key = "time_zone" if str(exc).startswith("unknown time zone") else "schedule"
                ctx.error((*path, key), str(exc))
        if templates_dir is not None:
            missing = [f for f in _template_files(template) if not (templates_dir / f).is_file()]
            if missing:
                where = (*path, "template") if "template" in spec else path
                ctx.error(where, f"template {template!r} needs {', '.join(missing)} in {templates_dir}")
                ok = False
        if ok and name and kind and schedule and who:
            source = f"{ctx.file}:{ctx.doc.line(path)}"
            digests.append(DigestSchedule(name, kind, tuple(who), schedule, template, source))
    return digests


def parse_routing(
    file: str,
    text: str,
    errors: list[ConfigError],
    templates_dir: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    deliverable: bool = False,
) -> Routing | None:
    """Parse one routing document, appending every problem to `errors`; None if there was any.

    Receivers' `${VARIABLE}`s come from `environ` (default: the process environment); `deliverable` (real mail)
    refuses receivers whose addresses are placeholders in a reserved domain."""
    before = len(errors)
    try:
        doc = load_located(text)
    except DuplicateKey as exc:
        errors.append(ConfigError(file, exc.line, "", str(exc)))
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        errors.append(ConfigError(file, mark.line + 1 if mark else None, "", f"not valid YAML: {problem}"))
        return None
    ctx = _Ctx(file, doc, errors, os.environ if environ is None else environ, deliverable)
    if not isinstance(doc.data, dict):
        ctx.error((), "a routing file is a mapping with receivers and route")
        return None
    data: dict[str, Any] = doc.data
    _keys(ctx, data, (), TOP_KEYS)
    for key in ("receivers", "route"):
        if key not in data:
            ctx.error((), f"a routing file needs {key!r}")
    receivers = _receivers(ctx, data.get("receivers", {})) if "receivers" in data else {}
    defaults_raw = data.get("defaults", {})
    defaults = _mapping(ctx, defaults_raw, ("defaults",), "defaults") or {}
    _keys(ctx, defaults, ("defaults",), DEFAULT_KEYS)
    built_in = _Inherited(None, (GROUP_BY_ALL,), Timing(timedelta(0), timedelta(0), None))
    inherited = _settings(ctx, {k: v for k, v in defaults.items() if k in DEFAULT_KEYS}, ("defaults",), built_in)
    route = _route(ctx, data["route"], ("route",), inherited, receivers, True) if "route" in data else None
    inhibit = _inhibit_rules(ctx, data.get("inhibit_rules"))
    silences = _silences(ctx, data.get("silences"))
    digests = _digests(ctx, data.get("digests"), receivers, templates_dir)
    if len(errors) > before or route is None:
        return None
    return Routing(
        receivers=receivers,
        route=route,
        inhibit_rules=tuple(inhibit),
        silences=tuple(silences),
        digests=tuple(digests),
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        source=file,
    )


def load_routing(
    path: Path,
    templates_dir: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    deliverable: bool = False,
) -> Routing:
    """Load and check one routing file; raises ConfigInvalid with every error found (see `parse_routing`)."""
    if not path.is_file():
        raise ConfigInvalid([ConfigError(str(path), None, "", "routing file not found")])
    errors: list[ConfigError] = []
    text = path.read_text(encoding="utf-8")
    routing = parse_routing(str(path), text, errors, templates_dir, environ=environ, deliverable=deliverable)
    if errors or routing is None:
        raise ConfigInvalid(errors)
    return routing
