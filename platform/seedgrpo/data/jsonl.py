"""Rows from JSON Lines files and HF datasets (the format of the benchmark files: id, problem,
answer), and the one converter from a row to a ``Problem`` (training data and benchmarks)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seedgrpo.data.problems import GoldAnswer, Problem

__all__ = ["DataError", "read_jsonl_rows", "read_hub_rows", "rows_to_problems",
           "load_jsonl_problems"]


class DataError(ValueError):
    """A data file that cannot be used; the message names the file, line and field."""


def read_jsonl_rows(path: str | Path, *, required: tuple[str, ...] = (),
                    hint: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(location, row)`` for every non-blank line; ``location`` is ``file:line``.

    A line that is not a JSON object, or lacks a ``required`` field, is an error naming the
    file and line (with ``hint`` saying which setting renames fields).
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: no such file")
    with open(file, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{file}:{number}: not valid JSON ({err.msg})") from err
            if not isinstance(row, dict):
                raise DataError(f"{file}:{number}: each line must be a JSON object")
            missing = [f for f in required if f not in row]
            if missing:
                raise DataError(f"{file}:{number}: no field {', '.join(map(repr, missing))}; "
                                f"the row has {', '.join(sorted(row))}{hint}")
            yield f"{file}:{number}", row


def read_hub_rows(dataset_id: str, split: str, *, required: tuple[str, ...] = (),
                  hint: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of an HF dataset (a hub id, or a local dataset directory), like ``read_jsonl_rows``.

    The hub is contacted only here, and only for an id that is not a local directory.
    """
    try:
        import datasets
    except ImportError:
        raise DataError(f"{dataset_id}: loading an HF dataset needs the `datasets` package "
                        "(pip install 'seedgrpo[hub]')") from None
    try:
        rows = datasets.load_dataset(dataset_id, split=split)
    except Exception as err:  # offline, unknown id, unknown split: all end the same way
        raise DataError(f"{dataset_id} (split '{split}'): cannot be loaded as an HF dataset "
                        f"({type(err).__name__}: {str(err)[:300]})") from err
    missing = [f for f in required if f not in rows.column_names]
    if missing:
        raise DataError(f"{dataset_id}: no column {', '.join(map(repr, missing))}; it has "
                        f"{', '.join(rows.column_names)}{hint}")
    for i, row in enumerate(rows):
        yield f"{dataset_id}[{split}][{i}]", dict(row)


def _line_or_index(location: str, index: int) -> str:
    """The line number of a ``file:line`` location (ids that point into the file), else the
    row index."""
    tail = location.rsplit(":", 1)[-1]
    return tail if tail.isdigit() else str(index)


def _tolerance(value: Any, location: str) -> float | None:
    """A row's ``error`` field: an absolute numeric tolerance, or None."""
    if value is None:
        return None
    try:
        tol = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{location}: field 'error' is {value!r}; it must be a number (an "
                        "absolute tolerance) or null") from None
    if not math.isfinite(tol) or tol < 0:
        raise DataError(f"{location}: field 'error' is {value!r}; it must be >= 0")
    return tol


def _row_to_problem(location: str, row: dict[str, Any], index: int, *, problem_field: str,
                    answer_field: str, solution_field: str, default_id: str) -> Problem:
    answer = str(row[answer_field]).strip()
    if not answer:
        raise DataError(f"{location}: field '{answer_field}' is empty; every row needs a gold "
                        "answer")
    others = row.get("answers")
    alternatives = tuple(str(a).strip() for a in others if str(a).strip() and
                         str(a).strip() != answer) if isinstance(others, list) else ()
    unit = row.get("unit")
    gold = GoldAnswer(answer, alternatives, unit if isinstance(unit, str) and unit else None,
                      _tolerance(row.get("error"), location))
    solution = row.get(solution_field)
    return Problem(
        id=str(row.get("id", f"{default_id}-{_line_or_index(location, index)}")),
        problem=str(row[problem_field]),
        gold=gold,
        solution=solution if isinstance(solution, str) else None,
    )


def rows_to_problems(rows: Iterator[tuple[str, dict[str, Any]]], *, problem_field: str,
                     answer_field: str, solution_field: str = "solution",
                     default_id: str = "row") -> list[Problem]:
    """Every row as a ``Problem``: the one converter, for training data and benchmarks alike.
    An empty answer or a bad tolerance is an error naming the row.

    Optional fields, whatever the source: ``solution`` (a worked solution, for few-shot
    prompts), ``answers`` (a list of other accepted answers), ``unit`` (a unit the answer may
    carry), ``error`` (an absolute numeric tolerance). Without an ``id`` field the id is
    ``<default_id>-<line>`` for a file row (it points into the file), else
    ``<default_id>-<row index>``.

    >>> rows = iter([("f.jsonl:3", {"q": "1+1?", "a": 2, "answers": ["two"]})])
    >>> (p,) = rows_to_problems(rows, problem_field="q", answer_field="a", default_id="f")
    >>> p.id, p.gold
    ('f-3', GoldAnswer(answer='2', alternatives=('two',), unit=None, abs_tol=None))
    """
    return [_row_to_problem(location, row, index, problem_field=problem_field,
                            answer_field=answer_field, solution_field=solution_field,
                            default_id=default_id)
            for index, (location, row) in enumerate(rows)]


def load_jsonl_problems(path: str | Path, *, problem_field: str = "problem",
                        answer_field: str = "answer", solution_field: str = "solution"
                        ) -> list[Problem]:
    """Every row of ``path`` as a ``Problem``; a bad line or a missing field is an error.

    ``id`` is the row's ``id`` field when present, else ``<file stem>-<line number>``.
    """
    rows = read_jsonl_rows(path, required=(problem_field, answer_field),
                           hint=" (set data.problem_field / data.answer_field)")
    problems = rows_to_problems(rows, problem_field=problem_field, answer_field=answer_field,
                                solution_field=solution_field, default_id=Path(path).stem)
    if not problems:
        raise DataError(f"{path}: holds no rows")
    return problems
