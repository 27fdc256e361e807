"""Owns loading rule files: strict keys, typed values, clinical sanity checks, a content hash for the ruleset.

Each condition kind registers a parser in `CONDITION_PARSERS`; a new kind is a new entry, not a rewrite.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from safety_monitor.domain.conditions.ae import NOT_ATTRIBUTED, AeCondition
from safety_monitor.domain.conditions.finding import FindingCondition
from safety_monitor.domain.messages import MessageType
from safety_monitor.domain.rules import Condition, Rule, Ruleset, Severity
from safety_monitor.ruleset.errors import ConfigError, ConfigInvalid
from safety_monitor.ruleset.located_yaml import DuplicateKey, KeyPath, Located, format_path, load_located

# Files in the rules directory that are not rule files: who hears what (routing) is configured beside the rules.
NOT_RULE_FILES = frozenset({"routing.yaml", "routing.yml"})
RULE_KEYS = {"id", "title", "when", "severity", "action", "rationale", "labels"}
REQUIRED_RULE_KEYS = ("id", "title", "when", "severity")


@dataclass
class _Context:
    file: str
    doc: Located
    errors: list[ConfigError]

    def error(self, path: KeyPath, message: str) -> None:
        self.errors.append(ConfigError(self.file, self.doc.line(path), format_path(path), message))


def _did_you_mean(key: str, allowed: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(sorted(allowed))}"


def _check_keys(ctx: _Context, mapping: dict[str, Any], path: KeyPath, allowed: set[str]) -> None:
    for key in mapping:
        if key not in allowed:
            ctx.error((*path, key), f"{key!r} is not an option{_did_you_mean(str(key), allowed)}")


def _grade(ctx: _Context, value: Any, path: KeyPath, *, allow_zero: bool = False) -> int | None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.error(path, f"{path[-1]} must be a whole CTCAE grade {low}-5, got {value!r}")
        return None
    if not low <= value <= 5:
        ctx.error(path, f"{path[-1]}: {value} is impossible: CTCAE grades run 1-5")
        return None
    return value


def _string_list(ctx: _Context, value: Any, path: KeyPath) -> list[str] | None:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        ctx.error(path, f"{path[-1]} must be a non-empty list of names, got {value!r}")
        return None
    return [v.strip() for v in value]


AE_KEYS = {"kind", "terms", "grade_at_least", "immune_related", "serious"}
IMMUNE_VALUES = {"Y", "N", "U", NOT_ATTRIBUTED}


def _parse_ae(ctx: _Context, when: dict[str, Any], path: KeyPath) -> AeCondition | None:
    _check_keys(ctx, when, path, AE_KEYS)
    if "terms" not in when:
        ctx.error(path, "an 'ae' condition needs 'terms': the MedDRA preferred terms it matches")
        return None
    terms = _string_list(ctx, when["terms"], (*path, "terms"))
    grade = _grade(ctx, when.get("grade_at_least", 1), (*path, "grade_at_least"))
    immune: frozenset[str] | None = None
    if "immune_related" in when:
        values = _string_list(ctx, when["immune_related"], (*path, "immune_related"))
        if values is not None:
            wrong = [v for v in values if v not in IMMUNE_VALUES]
            if wrong:
                ctx.error(
                    (*path, "immune_related"),
                    f"immune_related accepts Y, N, U and {NOT_ATTRIBUTED!r} (not yet attributed), got {wrong}",
                )
            immune = frozenset(values)
    serious = when.get("serious")
    if serious is not None and not isinstance(serious, bool):
        ctx.error((*path, "serious"), f"serious must be true or false, got {serious!r}")
        serious = None
    if terms is None or grade is None:
        return None
    return AeCondition(frozenset(t.casefold() for t in terms), grade, immune, serious)


FINDING_KEYS = {"kind", "tests", "term", "grade_at_least"}


def _finding_parser(
    domain: MessageType,
) -> Callable[[_Context, dict[str, Any], KeyPath], FindingCondition | None]:
    def parse(ctx: _Context, when: dict[str, Any], path: KeyPath) -> FindingCondition | None:
        _check_keys(ctx, when, path, FINDING_KEYS)
        missing = [k for k in ("tests", "term", "grade_at_least") if k not in when]
        if missing:
            ctx.error(path, f"a '{when['kind']}' condition needs {', '.join(missing)}")
            return None
        tests = _string_list(ctx, when["tests"], (*path, "tests"))
        term = when["term"]
        if not isinstance(term, str) or not term.strip():
            ctx.error((*path, "term"), f"term must be a CTCAE term name, got {term!r}")
        grade = _grade(ctx, when["grade_at_least"], (*path, "grade_at_least"))
        if tests is None or grade is None or not isinstance(term, str):
            return None
        return FindingCondition(domain, frozenset(t.upper() for t in tests), term.strip(), grade)

    return parse


ConditionParser = Callable[[_Context, dict[str, Any], KeyPath], Condition | None]
CONDITION_PARSERS: dict[str, ConditionParser] = {
    "ae": _parse_ae,
    "lab": _finding_parser(MessageType.LB),
    "vital": _finding_parser(MessageType.VS),
    "ecg": _finding_parser(MessageType.EG),
}


def _parse_rule(ctx: _Context, raw: Any, path: KeyPath) -> Rule | None:
    if not isinstance(raw, dict):
        ctx.error(path, "each rule must be a mapping with id, title, when, severity")
        return None
    _check_keys(ctx, raw, path, RULE_KEYS)
    missing = [k for k in REQUIRED_RULE_KEYS if k not in raw]
    if missing:
        ctx.error(path, f"rule {raw.get('id', '(no id)')!r} is missing {', '.join(missing)}")
        return None
    ok = True
    rule_id = raw["id"]
    if not isinstance(rule_id, str) or not rule_id.strip():
        ctx.error((*path, "id"), f"id must be a non-empty name, got {rule_id!r}")
        ok = False
    for key in ("title", "action", "rationale"):
        if key in raw and not isinstance(raw[key], str):
            ctx.error((*path, key), f"{key} must be text, got {raw[key]!r}")
            ok = False
    severity = raw["severity"]
    if severity not in {s.value for s in Severity}:
        ctx.error(
            (*path, "severity"),
            f"severity {severity!r} is not one of {', '.join(s.value for s in Severity)}",
        )
        ok = False
    labels = raw.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        ctx.error((*path, "labels"), "labels must be a mapping of names to text")
        ok = False
    when = raw["when"]
    condition = None
    if not isinstance(when, dict) or "kind" not in when:
        ctx.error((*path, "when"), f"when must be a mapping with a kind ({', '.join(CONDITION_PARSERS)})")
    elif when["kind"] not in CONDITION_PARSERS:
        kind = str(when["kind"])
        ctx.error((*path, "when", "kind"), f"kind {kind!r} is unknown{_did_you_mean(kind, set(CONDITION_PARSERS))}")
    else:
        condition = CONDITION_PARSERS[when["kind"]](ctx, when, (*path, "when"))
    if not ok or condition is None:
        return None
    return Rule(
        id=rule_id.strip(),
        title=raw["title"],
        condition=condition,
        severity=Severity(severity),
        action=raw.get("action", ""),
        rationale=raw.get("rationale", ""),
        labels=tuple(sorted((str(k), v) for k, v in labels.items())),
        source=f"{ctx.file}:{ctx.doc.line(path)}",
    )


def _parse_file(file: str, text: str, errors: list[ConfigError]) -> list[Rule]:
    try:
        doc = load_located(text)
    except DuplicateKey as exc:
        errors.append(ConfigError(file, exc.line, "", str(exc)))
        return []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        errors.append(ConfigError(file, line, "", f"not valid YAML: {problem}"))
        return []
    ctx = _Context(file, doc, errors)
    if not isinstance(doc.data, dict) or "rules" not in doc.data:
        ctx.error((), "a rule file is a mapping with a 'rules' list")
        return []
    _check_keys(ctx, doc.data, (), {"rules"})
    raw_rules = doc.data["rules"]
    if not isinstance(raw_rules, list):
        ctx.error(("rules",), "'rules' must be a list")
        return []
    rules = [_parse_rule(ctx, raw, ("rules", index)) for index, raw in enumerate(raw_rules)]
    return [r for r in rules if r is not None]


def load_ruleset(directory: Path) -> Ruleset:
    """Every `*.yaml` / `*.yml` file in `directory`, validated together; raises ConfigInvalid with all errors."""
    if not directory.is_dir():
        raise ConfigInvalid([ConfigError(str(directory), None, "", "rules directory not found")])
    files = sorted(p for p in [*directory.glob("*.yaml"), *directory.glob("*.yml")] if p.name not in NOT_RULE_FILES)
    errors: list[ConfigError] = []
    digest = hashlib.sha256()
    rules: list[Rule] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        digest.update(path.name.encode() + b"\0" + text.encode() + b"\0")
        rules.extend(_parse_file(str(path), text, errors))
    if not files:
        errors.append(ConfigError(str(directory), None, "", "no rule files (*.yaml) found"))
    seen: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in seen:
            file, _, line = rule.source.rpartition(":")
            errors.append(
                ConfigError(
                    file,
                    int(line),
                    "id",
                    f"duplicate rule id {rule.id!r}: also defined at {seen[rule.id].source}",
                )
            )
        seen[rule.id] = rule
    if errors:
        raise ConfigInvalid(errors)
    return Ruleset(tuple(rules), digest.hexdigest())
