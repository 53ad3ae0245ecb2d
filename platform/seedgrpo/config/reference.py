"""Generate the config reference (docs/CONFIG.md) from the schema's field descriptions.

The descriptions in ``sections.py`` and ``schema.py`` are the only copy of the documentation; a
test fails when docs/CONFIG.md is out of date. Regenerate with ``make docs`` or
``python -m seedgrpo.config.reference > docs/CONFIG.md``.
"""

from __future__ import annotations

import os
import typing
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from seedgrpo.config.overrides import strip_optional
from seedgrpo.config.plugins import PLUGIN_KINDS, builtin_names
from seedgrpo.config.schema import MLFLOW_URI_ENV, OUTPUT_DIR_ENV, ExperimentConfig

__all__ = ["render_reference"]

_HEADER = """# Experiment file reference

Generated from the schema (`platform/seedgrpo/config/`) by `make docs`; do not edit by hand.
Every key is optional unless marked required; unknown keys are errors. Override any key on the
command line with `--set dotted.key=value`.
"""


def _type_name(annotation: Any) -> str:
    inner, optional = strip_optional(annotation)
    if typing.get_origin(inner) is Literal:
        text = " \\| ".join(f"`{a}`" for a in typing.get_args(inner))
    elif typing.get_origin(inner) is list:
        (item,) = typing.get_args(inner)
        text = f"list of {_type_name(item)}"
    elif typing.get_origin(inner) is dict:
        text = "mapping"
    else:
        text = getattr(inner, "__name__", str(inner))
    return f"{text} or null" if optional else text


def _field_type(field: FieldInfo) -> str:
    """The type column; a string checked against a registry lists the package's own names
    (and says when plug-ins may add more)."""
    extra = field.json_schema_extra
    kind = extra.get("registry") if isinstance(extra, dict) else None
    if kind is None:
        return _type_name(field.annotation)
    text = " \\| ".join(f"`{name}`" for name in builtin_names(str(kind)))
    return f"{text} \\| a plug-in's name" if kind in PLUGIN_KINDS else text


def _default(field: FieldInfo, value: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    return f"`{value}`"


def _bounds(field: FieldInfo) -> str:
    marks = []
    for meta in field.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                marks.append(f"{sign} {value}")
    return ", ".join(marks)


def _section(model: type[BaseModel], instance: BaseModel, prefix: str, out: list[str]) -> None:
    """Rows for ``model``'s fields; defaults are read from ``instance``, the section as its parent
    builds it (``resources.driver`` defaults to 0.25 CPUs although ``ResourceSpec`` says 1)."""
    rows = []
    nested = []
    for name, field in model.model_fields.items():
        inner, _ = strip_optional(field.annotation)
        path = f"{prefix}{name}"
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            nested.append((inner, path, field, getattr(instance, name)))
            continue
        value_type = (typing.get_args(inner) or (None, None))[-1]
        if typing.get_origin(inner) is dict and isinstance(value_type, type) and issubclass(
                value_type, BaseModel) and not any(
                f.is_required() for f in value_type.model_fields.values()):
            # a mapping of named sections (eval.custom_benchmarks): document one entry
            nested.append((value_type, f"{path}.<name>", field, value_type.model_construct()))
        description = (field.description or "").replace("|", "\\|")
        bounds = _bounds(field)
        if bounds:
            description += f" ({bounds})"
        default = _default(field, getattr(instance, name, field.default))
        rows.append(f"| `{path}` | {_field_type(field)} | {default} | "
                    f"{description} |")
    if rows:
        out += ["| key | type | default | meaning |", "|---|---|---|---|", *rows, ""]
    for inner, path, field, value in nested:
        out += [f"## `{path}`", "", field.description or "", ""]
        _section(inner, value, f"{path}.", out)


def render_reference() -> str:
    """The whole reference as Markdown."""
    out = [_HEADER]
    saved = {name: os.environ.pop(name, None) for name in (MLFLOW_URI_ENV, OUTPUT_DIR_ENV)}
    try:  # the built-in defaults, not this shell's environment defaults
        defaults = ExperimentConfig()
    finally:
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    _section(ExperimentConfig, defaults, "", out)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
