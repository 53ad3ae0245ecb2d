"""Build a run's problem pools from ``data:`` config: training prompts, held-out set, shots.

The held-out set is the first ``heldout_size`` problems of a seeded shuffle of everything loaded,
so it is fixed by ``train.seed`` and never overlaps training. Few-shot examples are drawn the same
way from what remains (rows with a solution text) and are removed from training too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from seedgrpo.config.sections import DataConfig
from seedgrpo.data.jsonl import DataError, load_jsonl_problems, read_hub_rows, rows_to_problems
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
    rows = read_hub_rows(cfg.path or "", cfg.split, required=(cfg.problem_field,
                                                              cfg.answer_field),
                         hint=" (set data.problem_field / data.answer_field)")
    problems = rows_to_problems(rows, problem_field=cfg.problem_field,
                                answer_field=cfg.answer_field, default_id=cfg.path or "hub")
    if not problems:
        raise DataError(f"{cfg.path} (split '{cfg.split}'): holds no rows")
    return problems


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
