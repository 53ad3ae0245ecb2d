"""Safe YAML reading that remembers where every key was, for errors with line numbers.

Only ``yaml.safe_load`` semantics: no tags, no Python objects, nothing in a config is ever
executed. Syntax errors become ``ConfigIssue``s with the line and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from seedgrpo.config.errors import ConfigError, ConfigIssue

__all__ = ["LinePositions", "read_yaml", "parse_yaml_value"]

LinePositions = dict[tuple[str, ...], int]


def _positions(node: yaml.Node, prefix: tuple[str, ...], out: LinePositions) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            out[key] = key_node.start_mark.line + 1
            _positions(value_node, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            key = (*prefix, str(i))
            out[key] = item.start_mark.line + 1
            _positions(item, key, out)


def read_yaml(path: Path, *, label: str) -> tuple[Any, LinePositions]:
    """Parse ``path``; return the data and a map from key paths to 1-based line numbers.

    ``label`` is how the file is named in messages (the path as the user typed it).
    """
    if not path.exists():
        hint = ""
        if path.parent.is_dir():
            near = sorted(p.name for p in path.parent.glob("*.yaml"))[:8]
            if near:
                hint = f"; files there: {', '.join(near)}"
        raise ConfigError([ConfigIssue(label, "", f"no such file{hint}")])
    if not path.is_file():
        raise ConfigError([ConfigIssue(label, "", "is not a file")])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([ConfigIssue(label, "", f"cannot be read: {err}")]) from err
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        column = f", column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(
            [ConfigIssue(label, "", f"YAML syntax error{column}: {problem}", line)]
        ) from err
    positions: LinePositions = {}
    if node is not None:
        _positions(node, (), positions)
    return data, positions


def parse_yaml_value(text: str) -> Any:
    """A ``--set`` value read as YAML (``0.5`` -> float, ``[4, 8]`` -> list, ``true`` -> bool)."""
    return yaml.safe_load(text)
