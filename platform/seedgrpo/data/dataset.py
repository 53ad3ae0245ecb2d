"""Build a run's problem pools from ``data:`` config: training prompts, held-out set, shots.

The held-out set is the first ``heldout_size`` problems of a seeded shuffle of everything loaded,
so it is fixed by ``train.seed`` and never overlaps training. Few-shot examples are drawn the same
way from what remains (rows with a solution text) and are removed from training too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from seedgrpo.config.sections import DataConfig
from seedgrpo.data.jsonl import DataError, load_jsonl_problems
from seedgrpo.data.problems import Problem
from seedgrpo.data.synthetic import generate_arithmetic

__all__ = ["ProblemPools", "build_pools"]


@dataclass(frozen=True)
class ProblemPools:
    train: list[Problem]
    heldout: list[Problem]
    shots: list[Problem]


def _load(cfg: DataConfig, seed: int) -> list[Problem]:
    if cfg.source == "synthetic":
        return generate_arithmetic(cfg.synthetic, seed=seed)
    if cfg.source == "jsonl":
        return load_jsonl_problems(cfg.path or "", problem_field=cfg.problem_field,
                                   answer_field=cfg.answer_field)
    try:
        import datasets
    except ImportError:
        raise DataError("data.source 'hf' needs the `datasets` package: pip install datasets"
                        ) from None
    rows = datasets.load_dataset(cfg.path, split=cfg.split)
    missing = [f for f in (cfg.problem_field, cfg.answer_field) if f not in rows.column_names]
    if missing:
        raise DataError(f"{cfg.path}: no column {', '.join(missing)}; it has "
                        f"{', '.join(rows.column_names)}")
    return [Problem(str(row.get("id", i)), str(row[cfg.problem_field]),
                    str(row[cfg.answer_field]).strip(), row.get("solution"))
            for i, row in enumerate(rows)]


def build_pools(cfg: DataConfig, *, seed: int) -> ProblemPools:
    """Training, held-out and few-shot problems for one run."""
    problems = _load(cfg, seed)
    order = list(range(len(problems)))
    random.Random(f"pools:{seed}").shuffle(order)
    heldout = [problems[i] for i in order[: cfg.heldout_size]]
    rest = [problems[i] for i in order[cfg.heldout_size :]]
    shot_candidates = [p for p in rest if p.solution]
    if len(shot_candidates) < cfg.fewshot:
        raise DataError(f"data.fewshot = {cfg.fewshot} but only {len(shot_candidates)} training "
                        "rows have a solution text to show")
    shots = shot_candidates[: cfg.fewshot]
    shot_ids = {p.id for p in shots}
    train = [p for p in rest if p.id not in shot_ids]
    if not train:
        raise DataError(f"no training problems left: {len(problems)} loaded, "
                        f"{cfg.heldout_size} held out, {cfg.fewshot} used as shots")
    return ProblemPools(train, heldout, shots)
