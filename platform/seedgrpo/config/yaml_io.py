"""Safe YAML reading that remembers where every key was, for errors with line numbers.

Only ``yaml.safe_load`` semantics: no tags, no Python objects, nothing in a config is ever
executed. Syntax errors become ``ConfigIssue``s with the line and column.

A config file is input from anyone, so reading it is bounded (docs/SECURITY.md): a file is
at most ``MAX_FILE_BYTES``; only regular files are opened (a FIFO would block forever); and the
document, with every alias expanded, holds at most ``MAX_VALUES`` values. Anchors and aliases
stay usable for what they are for (sharing a section), but a "billion laughs" file of nested
aliases is refused from its node graph, before anything walks the expanded data.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from seedgrpo.config.errors import ConfigError, ConfigIssue

__all__ = ["LinePositions", "MAX_FILE_BYTES", "MAX_VALUES", "YamlLimitError", "read_yaml",
           "parse_yaml_value"]

LinePositions = dict[tuple[str, ...], int]

MAX_FILE_BYTES = 1_000_000  # the largest shipped experiment is a few kB
MAX_VALUES = 100_000  # scalars, lists and mappings once aliases are expanded

_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


class YamlLimitError(yaml.YAMLError):
    """YAML text that parses but is too large once expanded, or holds an unreadable number."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


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


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Values in ``node`` with every alias expanded, computed once per shared node.

    Linear in the node graph, however large the expansion: nine levels of nine aliases are
    81 nodes here and 9**9 values once expanded.
    """
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a node under construction (YAML cannot alias an open node anyway)
    size = 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            size += _expanded_size(key_node, sizes) + _expanded_size(value_node, sizes)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, sizes)
    sizes[id(node)] = size
    return size


def _load_bounded(text: str) -> tuple[Any, yaml.Node | None]:
    """Compose ``text`` once, refuse it when its expansion is too large, then construct it.

    Raises ``yaml.YAMLError`` (``YamlLimitError`` for the limits) or ``RecursionError``.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        size = _expanded_size(node, {})
        if size > MAX_VALUES:
            raise YamlLimitError(
                f"holds {size:,} values once its YAML aliases (*name) are expanded; a config "
                f"holds at most {MAX_VALUES:,}: write the values out or use fewer aliases")
        try:
            return loader.construct_document(node), node
        except ValueError as err:  # int('9' * 5000): over sys.int_max_str_digits
            raise YamlLimitError(f"holds a number too long to read ({str(err)[:60]}...); "
                                 "write a number of sensible size") from err
    finally:
        loader.dispose()


def _file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be an experiment file, from ``stat`` alone (nothing is opened)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        hint = ""
        if path.parent.is_dir():
            near = sorted(p.name for p in path.parent.glob("*.yaml"))[:8]
            if near:
                hint = f"; files there: {', '.join(near)}"
        return f"no such file{hint}"
    except OSError as err:
        return f"cannot be read: {err.strerror or err}"
    for is_kind, what in _FILE_KINDS:
        if is_kind(info.st_mode):
            return f"is {what}, not a YAML file"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file, not a YAML file"
    if info.st_size > MAX_FILE_BYTES:
        return (f"is {info.st_size:,} bytes; a config file is at most {MAX_FILE_BYTES:,} "
                "bytes (experiment files are a few kB)")
    return None


def _read_text(path: Path, label: str) -> str:
    problem = _file_problem(path)
    if problem is not None:
        raise ConfigError([ConfigIssue(label, "", problem)])
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO after the stat, do not wait on it
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ConfigError([ConfigIssue(label, "", "is not a regular file, not a "
                                               "YAML file")])
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:  # it grew after the stat
            raise ConfigError([ConfigIssue(label, "", f"is larger than {MAX_FILE_BYTES:,} "
                                           "bytes; a config file is a few kB")])
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError([ConfigIssue(label, "", "is not UTF-8 text (byte "
                                       f"{err.start}); is it a YAML file?")]) from err
    except OSError as err:
        raise ConfigError([ConfigIssue(label, "", f"cannot be read: {err.strerror or err}")]
                          ) from err


def read_yaml(path: Path, *, label: str) -> tuple[Any, LinePositions]:
    """Parse ``path``; return the data and a map from key paths to 1-based line numbers.

    ``label`` is how the file is named in messages (the path as the user typed it). A key
    written twice in one mapping is an error (YAML would silently keep the last one). The
    limits in the module docstring apply.
    """
    text = _read_text(path, label)
    try:
        data, node = _load_bounded(text)
    except YamlLimitError as err:
        raise ConfigError([ConfigIssue(label, "", err.problem)]) from err
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

    Raises ``yaml.YAMLError`` for text that is not YAML, nested absurdly deep included, and
    ``YamlLimitError`` past the limits that files have (a ``--set`` is no back door).
    """
    if len(text) > MAX_FILE_BYTES:
        raise YamlLimitError(f"is {len(text):,} characters long; the limit is "
                             f"{MAX_FILE_BYTES:,}")
    try:
        return _load_bounded(text)[0]
    except RecursionError as err:
        raise yaml.YAMLError("the value is nested too deeply") from err
