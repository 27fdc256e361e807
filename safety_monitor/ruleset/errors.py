"""Owns configuration errors: each with file, line, key path and a plain hint, collected and reported together."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigError:
    file: str
    line: int | None
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line else self.file
        key = f" ({self.key_path})" if self.key_path else ""
        return f"Invalid config at {where}{key}: {self.message}"


class ConfigInvalid(Exception):
    """Raised with every error found, never just the first."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
