"""Owns reading YAML while remembering the line of every key and item, so errors can point at them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]


@dataclass
class Located:
    """Plain data from a YAML document plus the 1-based line of each key path."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line(self, path: KeyPath) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


def format_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class DuplicateKey(ValueError):
    def __init__(self, key: str, line: int) -> None:
        super().__init__(f"key {key!r} appears twice in the same mapping")
        self.line = line


def _convert(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if key in result:
                raise DuplicateKey(str(key), key_node.start_mark.line + 1)
            child = (*path, key)
            result[key] = _convert(value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, index), lines) for index, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load_located(text: str) -> Located:
    """Parse one YAML document. Raises yaml.YAMLError (with a mark) or DuplicateKey on bad input."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is None:
        return Located(None, {(): 1})
    lines: dict[KeyPath, int] = {}
    data = _convert(node, (), lines)
    return Located(data, lines)
