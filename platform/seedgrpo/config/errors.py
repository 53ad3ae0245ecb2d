"""Config errors that name the file, the line, the dotted field, the value and what is allowed.

Every bad experiment file ends in one ``ConfigError`` holding one ``ConfigIssue`` per problem;
the CLI prints them and exits with status 2, no traceback. Pydantic's
messages are rewritten into that shape here, in one place.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["ConfigIssue", "ConfigError", "issues_from_validation", "short_repr", "suggest"]

# Caps on what one message may show: a hostile file can hold a megabyte-long key or value, or
# an alias-expanded structure, and an error must stay one readable line.
_MAX_SOURCE = 160
_MAX_PATH = 120
_MAX_MESSAGE = 400
_MAX_REPR = 60
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _MAX_REPR
_REPR.maxlong = 24
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4

_TYPE_WORDS = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
           "less_than_equal": "<="}


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: where (source file or ``--set``, line), which field, and what is wrong."""

    source: str
    path: str
    message: str
    line: int | None = None

    def render(self) -> str:
        """One line, whatever the input held: every part is cut to a bounded length and
        control characters (a newline in a key) are escaped."""
        source = _clip(self.source, _MAX_SOURCE)
        where = f"{source}:{self.line}" if self.line else source
        message = _clip(self.message, _MAX_MESSAGE)
        if not self.path:
            return f"{where}: {message}"
        joint = " " if self.message.startswith("=") else ": "
        return f"{where}: {_clip(self.path, _MAX_PATH)}{joint}{message}"


class ConfigError(ValueError):
    """A config that cannot be used, with every problem found."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [issue.render() for issue in self.issues]
        if len(lines) == 1:
            return lines[0]
        return f"{len(lines)} problems:\n" + "\n".join(f"  {line}" for line in lines)


def _clip(text: str, limit: int) -> str:
    """``text`` on one line and at most about ``limit`` characters (the middle is dropped)."""
    if len(text) > limit:
        text = f"{text[: limit * 2 // 3]}...{text[-(limit // 3 - 3):]}"
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        text = "".join(c if 32 <= ord(c) != 127 else repr(c)[1:-1] for c in text)
    return text


def short_repr(value: Any) -> str:
    """``repr(value)`` of bounded length, built without ever producing the full repr.

    A value from an alias-heavy YAML file can expand to billions of items; ``repr(value)[:60]``
    would build all of them first.

    >>> short_repr("x" * 10_000)[:12], len(short_repr("x" * 10_000)) <= 62
    ("'xxxxxxxxxxx", True)
    >>> short_repr([[1] * 1000] * 1000)
    '[[1, 1, 1, 1, ...], [1, 1, 1, 1, ...], [1, 1, 1, 1, ...], [1, 1, 1, 1, ...], ...]'
    """
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int too long to print (sys.int_max_str_digits)
        text = f"<{type(value).__name__} too large to show>"
    return _clip(text, 2 * _MAX_REPR)


_ALLOWED_LIST_CHARS = 200  # keeps an unknown-key message one short line in a big section


def _capped_list(names: Sequence[str]) -> str:
    """``names`` comma-joined, cut after about 200 characters with a count of the rest (the
    full list is in docs/CONFIG.md): the message stays one short line however big a section
    grows.

    >>> _capped_list(["a", "b"])
    'a, b'
    """
    shown: list[str] = []
    for n in names:
        if shown and len(", ".join([*shown, n])) > _ALLOWED_LIST_CHARS:
            return f"{', '.join(shown)} and {len(names) - len(shown)} more (docs/CONFIG.md)"
        shown.append(n)
    return ", ".join(shown)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close match exists, else empty."""
    if len(word) > 100:  # no field name is this long; and difflib is quadratic in it
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Field names of the model found at ``loc`` (for 'allowed keys' in unknown-key errors)."""
    from seedgrpo.config.overrides import field_annotation, strip_optional  # imports this module

    annotation, problem = field_annotation(model, [str(p) for p in loc])
    inner, _ = strip_optional(annotation)
    if problem is None and isinstance(inner, type) and issubclass(inner, BaseModel):
        return list(inner.model_fields)
    return []


def _describe(err: dict[str, Any], model: type[BaseModel]) -> str:
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    shown = short_repr(value)
    if kind == "extra_forbidden":
        name = str(err["loc"][-1])
        allowed = _fields_at(model, err["loc"][:-1])
        hint = suggest(name, allowed)
        return f"unknown key{hint}; allowed here: {_capped_list(allowed)}"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"= {shown} is not one of {ctx['expected']}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        return f"= {shown} must be {_BOUNDS[kind]} {bound}"
    if kind in ("too_short", "too_long"):
        return f"= {shown}: {err['msg'][0].lower()}{err['msg'][1:]}"
    if kind == "finite_number":
        return f"= {shown} must be a finite number"
    if kind == "float_type" and isinstance(value, int) and not isinstance(value, bool):
        return f"= {shown[:20]}... is too large for a number"
    if kind in _TYPE_WORDS:
        return f"= {shown} has the wrong type: expected {_TYPE_WORDS[kind]}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"]))
    return f"= {shown}: {err['msg']}"


def issues_from_validation(
    err: ValidationError,
    *,
    model: type[BaseModel],
    source: str,
    lines: dict[tuple[str, ...], int] | None = None,
    prefix: Sequence[str] = (),
) -> list[ConfigIssue]:
    """Translate pydantic errors into ``ConfigIssue``s; ``lines`` maps key paths to YAML lines."""
    issues = []
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"])
        # Errors inside search_space carry the parameter's dotted name as one loc element.
        full = tuple(prefix) + loc
        line = _line_for(full, lines or {})
        issues.append(ConfigIssue(source, ".".join(full), _describe(e, model), line))
    return issues


def _line_for(path: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    """Line of the deepest known ancestor of ``path`` in the YAML file."""
    for cut in range(len(path), 0, -1):
        if path[:cut] in lines:
            return lines[path[:cut]]
    return None
