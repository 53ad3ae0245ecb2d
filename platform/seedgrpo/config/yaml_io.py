"""Safe YAML reading that remembers where every key was, for errors with line numbers.

Only ``yaml.safe_load`` semantics: no tags, no Python objects, nothing in a config is ever
executed. Syntax errors become ``ConfigIssue``s with the line and column.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from seedgrpo.config.errors import ConfigError, ConfigIssue

__all__ = ["LinePositions", "read_yaml", "parse_yaml_value"]

LinePositions = dict[tuple[str, ...], int]


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-5`` as a float, as YAML 1.2 does (YAML 1.1 wants ``1.0e-5``).

    Learning rates are written ``1e-6`` in every ML config; without this they load as strings.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def _positions(node: yaml.Node, prefix: tuple[str, ...], out: LinePositions,
               duplicates: list[tuple[tuple[str, ...], int, int]], seen: set[int]) -> None:
    """Record the line of every key path; collect keys written twice in one mapping.

    ``seen`` holds nodes already walked: YAML aliases point at one shared node, and walking it
    again for every alias would make an alias "bomb" take minutes.
    """
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            name = str(key_node.value)
            line = key_node.start_mark.line + 1
            if name in lines:
                duplicates.append(((*prefix, name), lines[name], line))
            lines[name] = line
            key = (*prefix, name)
            out.setdefault(key, line)
            _positions(value_node, key, out, duplicates, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            key = (*prefix, str(i))
            out.setdefault(key, item.start_mark.line + 1)
            _positions(item, key, out, duplicates, seen)


def read_yaml(path: Path, *, label: str) -> tuple[Any, LinePositions]:
    """Parse ``path``; return the data and a map from key paths to 1-based line numbers.

    ``label`` is how the file is named in messages (the path as the user typed it). A key
    written twice in one mapping is an error (YAML would silently keep the last one).
    """
    if not path.exists():
        hint = ""
        if path.parent.is_dir():
            near = sorted(p.name for p in path.parent.glob("*.yaml"))[:8]
            if near:
                hint = f"; files there: {', '.join(near)}"
        raise ConfigError([ConfigIssue(label, "", f"no such file{hint}")])
    if not path.is_file():
        raise ConfigError([ConfigIssue(label, "", "is a directory, not a YAML file")])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([ConfigIssue(label, "", f"cannot be read: {err}")]) from err
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        column = f", column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(
            [ConfigIssue(label, "", f"YAML syntax error{column}: {problem}", line)]
        ) from err
    except RecursionError as err:
        raise ConfigError([ConfigIssue(label, "", "is nested too deeply to be a config")]) from err
    positions: LinePositions = {}
    duplicates: list[tuple[tuple[str, ...], int, int]] = []
    if node is not None:
        _positions(node, (), positions, duplicates, set())
    if duplicates:
        raise ConfigError([
            ConfigIssue(label, ".".join(key), f"is written twice (lines {first} and {second}); "
                        "YAML would silently keep the last one", second)
            for key, first, second in duplicates
        ])
    return data, positions


def parse_yaml_value(text: str) -> Any:
    """A ``--set`` value read as YAML (``0.5`` -> float, ``[4, 8]`` -> list, ``true`` -> bool).

    Raises ``yaml.YAMLError`` for text that is not YAML, nested absurdly deep included.
    """
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError as err:
        raise yaml.YAMLError("the value is nested too deeply") from err
