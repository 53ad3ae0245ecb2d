"""The benchmark registry and its loaders: AIME24, AMC23, MATH500, Minerva-Math, OlympiadBench.

A benchmark is read from a data directory (``eval.data_dir``, else ``$SEEDGRPO_DATA_DIR``) that
holds ``<name>.jsonl``, JSON Lines with ``id``, ``problem`` and ``answer`` (docs/EVALUATION.md),
or from a JSON Lines file or an HF dataset named in ``eval.custom_benchmarks``. The project
never ships or requires the data: a missing file is an error that names the benchmark,
where it was looked for and how to provide it. It never evaluates on nothing.

Rows become ``seedgrpo.data.Problem``s through the one row converter,
``seedgrpo.data.jsonl.rows_to_problems``, which also reads the optional fields ``unit`` (a unit
the answer may carry), ``error`` (an absolute numeric tolerance) and ``answers`` (a list of
other accepted answers).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedgrpo.config.catalogue import BENCHMARK_SPECS, GRADING_RULES, BenchmarkSpec
from seedgrpo.config.sections import BenchmarkSourceConfig
from seedgrpo.data.jsonl import DataError, read_hub_rows, read_jsonl_rows, rows_to_problems
from seedgrpo.data.problems import Problem

__all__ = ["BENCHMARK_SPECS", "Benchmark", "BenchmarkSpec", "BenchmarkNotFound",
           "DATA_DIR_ENV", "load_benchmark", "select_subset"]

DATA_DIR_ENV = "SEEDGRPO_DATA_DIR"


class BenchmarkNotFound(DataError):
    """A benchmark whose rows cannot be found; the message says how to provide them."""


@dataclass(frozen=True)
class Benchmark:
    name: str
    grading: str
    problems: list[Problem]
    source: str  # the file or dataset the rows came from


def _rows(name: str, source: BenchmarkSourceConfig | None, data_dir: str | None
          ) -> tuple[Iterator[tuple[str, dict[str, Any]]], str, str, str, str]:
    """(rows, where, grading, problem_field, answer_field) for one benchmark."""
    if source is not None:
        required = (source.problem_field, source.answer_field)
        hint = f" (set eval.custom_benchmarks.{name}.problem_field / answer_field)"
        if source.path is not None:
            path = Path(source.path).expanduser()
            if not path.is_file():
                raise BenchmarkNotFound(
                    f"benchmark '{name}': no file {path} (eval.custom_benchmarks.{name}.path); "
                    "point it at a JSON Lines file with one problem per line")
            rows = read_jsonl_rows(path, required=required, hint=hint)
            where = str(path)
        else:
            rows = read_hub_rows(source.hub_id or "", source.split, required=required,
                                 hint=hint)
            where = f"{source.hub_id} (split {source.split})"
        return rows, where, source.grading, source.problem_field, source.answer_field
    spec = BENCHMARK_SPECS.get(name)
    if spec is None:
        raise BenchmarkNotFound(f"unknown benchmark '{name}'; standard ones: "
                                f"{', '.join(BENCHMARK_SPECS)} (others go in "
                                "eval.custom_benchmarks)")
    directory, origin = (data_dir, "eval.data_dir") if data_dir else (
        os.environ.get(DATA_DIR_ENV), f"${DATA_DIR_ENV}")
    how = (f"set eval.data_dir (seedgrpo-eval: --data-dir) or ${DATA_DIR_ENV} to a directory "
           f"holding {spec.filename} (JSON Lines with id, problem, answer; see "
           f"docs/EVALUATION.md), or give eval.custom_benchmarks.{name} a path or an HF hub_id")
    if not directory:
        raise BenchmarkNotFound(f"benchmark '{name}': no data directory to look in (neither "
                                f"eval.data_dir nor ${DATA_DIR_ENV} is set); {how}")
    path = Path(directory).expanduser() / spec.filename
    if not path.is_file():
        raise BenchmarkNotFound(f"benchmark '{name}': {path} does not exist (data directory "
                                f"from {origin}); {how}")
    return read_jsonl_rows(path, required=("problem", "answer")), str(path), spec.grading, \
        "problem", "answer"


def select_subset(problems: list[Problem], limit: int | None, seed: int) -> list[Problem]:
    """``limit`` problems chosen by ``seed`` (in file order), or all of them.

    The same (benchmark, limit, seed) always gives the same problems, so evaluations of one
    sweep's trials, and of a trial before and after training, are on the same subset.

    >>> from seedgrpo.data.problems import GoldAnswer
    >>> ps = [Problem(str(i), "", GoldAnswer("1")) for i in range(10)]
    >>> [p.id for p in select_subset(ps, 3, seed=0)] == [p.id for p in select_subset(ps, 3, 0)]
    True
    """
    if limit is None or limit >= len(problems):
        return list(problems)
    chosen = sorted(random.Random(f"eval-subset:{seed}").sample(range(len(problems)), limit))
    return [problems[i] for i in chosen]


def load_benchmark(name: str, *, data_dir: str | None = None,
                   custom: dict[str, BenchmarkSourceConfig] | None = None,
                   limit: int | None = None, seed: int = 0) -> Benchmark:
    """The rows of benchmark ``name`` (``limit`` of them, chosen by ``seed``)."""
    source = (custom or {}).get(name)
    rows, where, grading, problem_field, answer_field = _rows(name, source, data_dir)
    if grading not in GRADING_RULES:  # the config's Literal and the rules agree (tested)
        raise DataError(f"benchmark '{name}': unknown grading rule '{grading}'")
    problems = rows_to_problems(rows, problem_field=problem_field, answer_field=answer_field,
                                default_id=name)
    if not problems:
        raise BenchmarkNotFound(f"benchmark '{name}': {where} holds no rows")
    ids = [p.id for p in problems]
    if len(set(ids)) < len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"benchmark '{name}': {where} has the id '{dup}' more than once; ids "
                        "name the samples of an evaluation and must be unique")
    return Benchmark(name, grading, select_subset(problems, limit, seed), where)
