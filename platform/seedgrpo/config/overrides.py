"""``--set a.b=value`` overrides, typed by the schema.

A value is read as YAML (``0.5``, ``[4, 8]``, ``true``) unless the field holds text, where it is
kept as typed (``--set model.name=123`` stays the string ``"123"``). Lists also accept commas
(``--set eval.benchmarks=aime24,amc23``). An unknown path fails with the keys allowed there.
The same key given twice is an error naming both, as a key written twice in a YAML file is: a
silent "last one wins" hides the typo in a long command line. Values obey the limits of files
(size, alias expansion; ``seedgrpo.config.yaml_io``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from seedgrpo.config.errors import ConfigError, ConfigIssue, suggest
from seedgrpo.config.renamed_keys import renamed_path
from seedgrpo.config.schema import ExperimentConfig
from seedgrpo.config.yaml_io import YamlLimitError, parse_yaml_value

__all__ = ["Override", "parse_overrides", "field_annotation", "strip_optional"]

_USAGE = "--set expects KEY=VALUE with a dotted key, e.g. --set algorithm.alpha=0.5"


@dataclass(frozen=True)
class Override:
    """One parsed ``--set``: the dotted key, its typed value and the text the user gave."""

    key: str
    value: Any
    text: str

    @property
    def label(self) -> str:
        return f"--set {self.text}"


def strip_optional(annotation: Any) -> tuple[Any, bool]:
    """(inner annotation, whether None is allowed) for ``X | None``."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def field_annotation(model: type[BaseModel], parts: Sequence[str]) -> tuple[Any, str | None]:
    """The annotation of the field at ``parts``, or (None, message) when the path does not exist."""
    current: Any = model
    for depth, part in enumerate(parts):
        inner, _ = strip_optional(current)
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            where = ".".join(parts[:depth])
            return None, f"{where} is a value, not a section; it has no key '{part}'"
        fields = inner.model_fields
        if part not in fields:
            where = ".".join(parts[:depth]) or "the top level"
            return None, (f"unknown key '{part}' in {where}{suggest(part, fields)}; "
                          f"allowed: {', '.join(fields)}")
        current = fields[part].annotation
    return current, None


def _is_text(annotation: Any) -> bool:
    inner, _ = strip_optional(annotation)
    if inner is str:
        return True
    if typing.get_origin(inner) is Literal:
        return all(isinstance(a, str) for a in typing.get_args(inner))
    return False


def _typed_value(annotation: Any, text: str) -> Any:
    inner, optional = strip_optional(annotation)
    if optional and text.strip() in ("null", "~", "none", "None"):
        return None
    if _is_text(annotation):
        return text
    value = parse_yaml_value(text)
    if typing.get_origin(inner) is list and isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def parse_overrides(items: Sequence[str]) -> list[Override]:
    """Parse every ``--set`` item; all problems are reported together."""
    parsed: list[Override] = []
    issues: list[ConfigIssue] = []
    first_by_key: dict[str, str] = {}
    for text in items:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            issues.append(ConfigIssue(f"--set {text}", "", _USAGE))
            continue
        key = renamed_path(key)  # an old spelling still works, with a warning
        if key in first_by_key:
            issues.append(ConfigIssue(f"--set {text}", key, f"is also set by --set "
                                      f"{first_by_key[key]}; give each key once"))
            continue
        first_by_key[key] = text
        try:
            if key == "search_space" or key.startswith("search_space."):
                value = parse_yaml_value(raw)
            else:
                annotation, problem = field_annotation(ExperimentConfig, key.split("."))
                if problem is not None:
                    issues.append(ConfigIssue(f"--set {text}", "", problem))
                    continue
                value = _typed_value(annotation, raw)
        except YamlLimitError as err:
            issues.append(ConfigIssue(f"--set {text}", key, f"the value {err.problem}"))
            continue
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or err
            issues.append(
                ConfigIssue(f"--set {text}", key, f"the value is not valid YAML: {problem}")
            )
            continue
        parsed.append(Override(key, value, text))
    if issues:
        raise ConfigError(issues)
    return parsed
