"""Owns loading rule files: strict keys, typed values, clinical sanity checks, a content hash for the ruleset.

Each condition kind registers a parser in `ruleset.conditions.CONDITION_PARSERS`; a new kind is a new entry.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from safety_monitor.domain.rules import AnnotationTemplate, Recommendation, Rule, Ruleset, Severity
from safety_monitor.ruleset.annotations import compile_annotation
from safety_monitor.ruleset.conditions import CONDITION_PARSERS, ConditionParser
from safety_monitor.ruleset.errors import ConfigError, ConfigInvalid
from safety_monitor.ruleset.located_yaml import DuplicateKey, KeyPath, load_located
from safety_monitor.ruleset.parsing import ParseContext, check_keys, did_you_mean, mapping, suggestion

__all__ = ["CONDITION_PARSERS", "ConditionParser", "load_ruleset"]

# Files in the rules directory that are not rule files: who hears what (routing) is configured beside the rules.
NOT_RULE_FILES = frozenset({"routing.yaml", "routing.yml"})
RULE_KEYS = {"id", "title", "when", "severity", "action", "rationale", "labels", "annotations"}
REQUIRED_RULE_KEYS = ("id", "title", "when", "severity")
ACTION_KEYS = {"recommend", "text"}
RATIONALE_KEYS = {"text", "source"}
RECOMMENDATIONS = ", ".join(r.value for r in Recommendation)


def _action(ctx: ParseContext, raw: Any, path: KeyPath) -> tuple[Recommendation | None, str] | None:
    """`action: {recommend: hold, text: "..."}`: the protocol action (continue / hold / discontinue /
    dsmb_review) and its wording."""
    item = mapping(ctx, raw, path, f"{{recommend: one of {RECOMMENDATIONS}, text: the protocol action in words}}")
    if item is None or not check_keys(ctx, item, path, ACTION_KEYS):
        return None
    recommend = item.get("recommend")
    if recommend not in {r.value for r in Recommendation}:
        shown = "missing" if recommend is None else f"{recommend!r} is not one of {RECOMMENDATIONS}"
        hint = suggestion(recommend, {r.value for r in Recommendation}) if isinstance(recommend, str) else ""
        ctx.error((*path, "recommend"), f"action.recommend {shown}{hint}")
        return None
    text = item.get("text", "")
    if not isinstance(text, str):
        ctx.error((*path, "text"), f"action.text must be text, got {text!r}")
        return None
    return Recommendation(recommend), text.strip()


def _rationale(ctx: ParseContext, raw: Any, path: KeyPath) -> tuple[str, str] | None:
    """`rationale: {text: why, source: the clinical source}`."""
    item = mapping(ctx, raw, path, "{text: why the rule exists, source: the trial, guideline or label it rests on}")
    if item is None or not check_keys(ctx, item, path, RATIONALE_KEYS):
        return None
    text, source = item.get("text"), item.get("source", "")
    if not isinstance(text, str) or not text.strip():
        ctx.error((*path, "text"), f"rationale.text must be text, got {text!r}")
        return None
    if not isinstance(source, str):
        ctx.error((*path, "source"), f"rationale.source must be text, got {source!r}")
        return None
    return " ".join(text.split()), " ".join(source.split())


def _annotations(
    ctx: ParseContext, raw: Any, path: KeyPath, labels: dict[str, str]
) -> tuple[tuple[str, AnnotationTemplate], ...] | None:
    item = mapping(ctx, raw, path, "names to Jinja2 templates, e.g. {summary: '{{ term }} grade {{ grade }}'}")
    if item is None:
        return None
    result: list[tuple[str, AnnotationTemplate]] = []
    ok = True
    for name, source in item.items():
        where = (*path, name)
        if not isinstance(source, str):
            ctx.error(where, f"annotation {name!r} must be a template text, got {source!r}")
            ok = False
            continue
        compiled = compile_annotation(source, labels)
        if isinstance(compiled, str):
            ctx.error(where, f"annotation {name!r} does not render: {compiled}")
            ok = False
            continue
        result.append((str(name), compiled))
    return tuple(result) if ok else None


def _parse_rule(ctx: ParseContext, raw: Any, path: KeyPath) -> Rule | None:
    if not isinstance(raw, dict):
        ctx.error(path, "each rule must be a mapping with id, title, when, severity")
        return None
    check_keys(ctx, raw, path, RULE_KEYS)
    missing = [k for k in REQUIRED_RULE_KEYS if k not in raw]
    if missing:
        ctx.error(path, f"rule {raw.get('id', '(no id)')!r} is missing {', '.join(missing)}")
        return None
    ok = True
    rule_id = raw["id"]
    if not isinstance(rule_id, str) or not rule_id.strip():
        ctx.error((*path, "id"), f"id must be a non-empty name, got {rule_id!r}")
        ok = False
    if not isinstance(raw["title"], str):
        ctx.error((*path, "title"), f"title must be text, got {raw['title']!r}")
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
        ok, labels = False, {}
    action: tuple[Recommendation | None, str] | None = (None, "")
    if "action" in raw:
        action = _action(ctx, raw["action"], (*path, "action"))
        ok &= action is not None
    rationale: tuple[str, str] | None = ("", "")
    if "rationale" in raw:
        rationale = _rationale(ctx, raw["rationale"], (*path, "rationale"))
        ok &= rationale is not None
    annotations: tuple[tuple[str, AnnotationTemplate], ...] | None = ()
    if "annotations" in raw:
        annotations = _annotations(ctx, raw["annotations"], (*path, "annotations"), labels)
        ok &= annotations is not None
    when = raw["when"]
    condition = None
    if not isinstance(when, dict) or "kind" not in when:
        ctx.error((*path, "when"), f"when must be a mapping with a kind ({', '.join(CONDITION_PARSERS)})")
    elif when["kind"] not in CONDITION_PARSERS:
        kind = str(when["kind"])
        ctx.error((*path, "when", "kind"), f"kind {kind!r} is unknown{did_you_mean(kind, set(CONDITION_PARSERS))}")
    else:
        condition = CONDITION_PARSERS[when["kind"]](ctx, when, (*path, "when"))
    if not ok or condition is None or action is None or rationale is None or annotations is None:
        return None
    return Rule(
        id=rule_id.strip(),
        title=raw["title"],
        condition=condition,
        severity=Severity(severity),
        action=action[1],
        rationale=rationale[0],
        labels=tuple(sorted((str(k), v) for k, v in labels.items())),
        source=f"{ctx.file}:{ctx.line(path)}",
        recommendation=action[0],
        rationale_source=rationale[1],
        annotations=annotations,
    )


def _parse_file(file: str, text: str, errors: list[ConfigError], ids: list[tuple[str, str, int]]) -> list[Rule]:
    """The file's rules that parse; every rule item's id goes to `ids` (id, file, line) whether or not the rest of
    the item is valid, so a duplicate id is reported in the same pass as the other errors."""
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
    ctx = ParseContext(file, doc, errors)
    if not isinstance(doc.data, dict) or "rules" not in doc.data:
        ctx.error((), "a rule file is a mapping with a 'rules' list")
        return []
    check_keys(ctx, doc.data, (), {"rules"})
    raw_rules = doc.data["rules"]
    if not isinstance(raw_rules, list):
        ctx.error(("rules",), "'rules' must be a list")
        return []
    for index, raw in enumerate(raw_rules):
        if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"].strip():
            ids.append((raw["id"].strip(), file, ctx.line(("rules", index)) or 0))
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
    ids: list[tuple[str, str, int]] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        digest.update(path.name.encode() + b"\0" + text.encode() + b"\0")
        rules.extend(_parse_file(str(path), text, errors, ids))
    if not files:
        errors.append(ConfigError(str(directory), None, "", "no rule files (*.yaml) found"))
    seen: dict[str, str] = {}
    for rule_id, file, line in ids:
        if rule_id in seen:
            errors.append(
                ConfigError(file, line, "id", f"duplicate rule id {rule_id!r}: also defined at {seen[rule_id]}")
            )
        else:
            seen[rule_id] = f"{file}:{line}"
    if errors:
        # In reading order (file, then line), whichever check found them.
        raise ConfigInvalid(sorted(errors, key=lambda e: (e.file, e.line or 0)))
    return Ruleset(tuple(rules), digest.hexdigest())
