"""Problems from a JSON Lines file (the format of the benchmark files: id, problem, answer)."""

from __future__ import annotations

import json
from pathlib import Path

from seedgrpo.data.problems import Problem

__all__ = ["DataError", "load_jsonl_problems"]


class DataError(ValueError):
    """A data file that cannot be used; the message names the file, line and field."""


def load_jsonl_problems(path: str | Path, *, problem_field: str = "problem",
                        answer_field: str = "answer", solution_field: str = "solution"
                        ) -> list[Problem]:
    """Every row of ``path`` as a ``Problem``; a bad line or a missing field is an error.

    ``id`` is the row's ``id`` field when present, else ``<file stem>-<line number>``.
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: no such file (data.path)")
    problems: list[Problem] = []
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
            missing = [f for f in (problem_field, answer_field) if f not in row]
            if missing:
                raise DataError(
                    f"{file}:{number}: no field {', '.join(map(repr, missing))}; the row has "
                    f"{', '.join(sorted(row))} (set data.problem_field / data.answer_field)"
                )
            answer = str(row[answer_field]).strip()
            if not answer:
                raise DataError(f"{file}:{number}: field '{answer_field}' is empty")
            solution = row.get(solution_field)
            problems.append(Problem(
                id=str(row.get("id", f"{file.stem}-{number}")),
                problem=str(row[problem_field]),
                answer=answer,
                solution=solution if isinstance(solution, str) else None,
            ))
    if not problems:
        raise DataError(f"{file}: holds no rows")
    return problems
