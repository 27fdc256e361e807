"""Owns the typed reading of one YAML document: strict keys with did-you-mean, typed values, errors with lines."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from safety_monitor.ruleset.errors import ConfigError
from safety_monitor.ruleset.located_yaml import KeyPath, Located, format_path


@dataclass
class ParseContext:
    """One file being read: where errors go, and the line of every key path."""

    file: str
    doc: Located
    errors: list[ConfigError]

    def error(self, path: KeyPath, message: str) -> None:
        self.errors.append(ConfigError(self.file, self.doc.line(path), format_path(path), message))

    def line(self, path: KeyPath) -> int | None:
        return self.doc.line(path)


def did_you_mean(key: str, allowed: set[str] | frozenset[str]) -> str:
    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(sorted(allowed))}"


def suggestion(key: str, allowed: set[str] | frozenset[str]) -> str:
    """ " (did you mean 'x'?)" when a close match exists, else nothing (for messages that list the choices)."""
    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(ctx: ParseContext, mapping: dict[str, Any], path: KeyPath, allowed: set[str] | frozenset[str]) -> bool:
    """Report every key not in `allowed`; True when all are known."""
    ok = True
    for key in mapping:
        if key not in allowed:
            ctx.error((*path, key), f"{key!r} is not an option{did_you_mean(str(key), allowed)}")
            ok = False
    return ok


def grade(ctx: ParseContext, value: Any, path: KeyPath, *, allow_zero: bool = False) -> int | None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.error(path, f"{path[-1]} must be a whole CTCAE grade {low}-5, got {value!r}")
        return None
    if not low <= value <= 5:
        ctx.error(path, f"{path[-1]}: {value} is impossible: CTCAE grades run 1-5")
        return None
    return value


def string_list(ctx: ParseContext, value: Any, path: KeyPath) -> list[str] | None:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        ctx.error(path, f"{path[-1]} must be a non-empty list of names, got {value!r}")
        return None
    return [v.strip() for v in value]


def number(
    ctx: ParseContext,
    value: Any,
    path: KeyPath,
    *,
    above: float | None = None,
    below: float | None = None,
    hint: str = "",
) -> float | None:
    """A finite number, optionally strictly inside (above, below)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        ctx.error(path, f"{path[-1]} must be a number, got {value!r}")
        return None
    if (above is not None and value <= above) or (below is not None and value >= below):
        bounds = " and ".join(
            part
            for part in (
                f"above {above:g}" if above is not None else "",
                f"below {below:g}" if below is not None else "",
            )
            if part
        )
        ctx.error(path, f"{path[-1]} must be {bounds}, got {value!r}{hint}")
        return None
    return float(value)


def whole(ctx: ParseContext, value: Any, path: KeyPath, *, at_least: int = 0, hint: str = "") -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.error(path, f"{path[-1]} must be a whole number, got {value!r}")
        return None
    if value < at_least:
        ctx.error(path, f"{path[-1]} must be at least {at_least}, got {value}{hint}")
        return None
    return value


def flag(ctx: ParseContext, value: Any, path: KeyPath) -> bool | None:
    if not isinstance(value, bool):
        ctx.error(path, f"{path[-1]} must be true or false, got {value!r}")
        return None
    return value


def mapping(ctx: ParseContext, value: Any, path: KeyPath, what: str) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        ctx.error(path, f"{path[-1]} must be a mapping: {what}")
        return None
    return value
