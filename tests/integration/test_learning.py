"""Does SEED-GRPO training learn? The bundled SmolLM2-135M on the synthetic arithmetic task.

The held-out set is fixed (64 problems, chosen by the seed, never trained on); each evaluation
draws 4 samples per problem at the training temperature, so its score is the expected reward of
the policy. Before training, about 40% of these samples box no answer at all, so most of the
reward to be gained is the format the one-shot example shows, then arithmetic.

Statistics: per problem, d = (correct samples after) - (correct samples before), from -4 to 4.
Under the null hypothesis that training does not change the policy, the two evaluations of a
problem are exchangeable, so each d is as likely to be -d: the sign-flip (paired permutation)
test. Its exact one-sided p-value is the share of the 2^n sign assignments of the nonzero d
whose sum reaches the observed sum, counted exactly by dynamic programming. Problems are the
units (the 4 samples of one problem are not independent). The test requires p < 0.05 and a
rise of the mean reward of at least 0.05; on this machine p = 0.0045 (26 problems up, 12 down,
0.246 -> 0.379). The two evaluations use the same sampling seed, so an unchanged policy would
give identical samples: d = 0, never a false rise.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import pytest

from seedgrpo.config import ExperimentConfig
from seedgrpo.runtime.trial import TrialRunner

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

STEPS = 4


def sign_flip_p(diffs: list[int]) -> float:
    """Exact one-sided p of the sign-flip test: P(sum of +-|d_i| >= sum of d_i) over the 2^n
    equally likely sign assignments (zeros dropped).

    >>> sign_flip_p([1, 1, 1, 1, 1])  # 1 assignment of 32 reaches 5
    0.03125
    >>> sign_flip_p([2, -1]), sign_flip_p([])  # sums 3, 1, -1, -3: two of four reach 1
    (0.5, 1.0)
    """
    nonzero = [abs(d) for d in diffs if d]
    observed = sum(d for d in diffs if d)
    counts = {0: 1}  # sum -> number of sign assignments reaching it
    for d in nonzero:
        nxt: dict[int, int] = defaultdict(int)
        for total, ways in counts.items():
            nxt[total + d] += ways
            nxt[total - d] += ways
        counts = nxt
    return sum(w for t, w in counts.items() if t >= observed) / 2 ** len(nonzero)


def _correct_per_problem(path: Path) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for line in path.read_text().splitlines():
        row = json.loads(line)
        counts[row["id"]] += bool(row["correct"])
    return counts


def test_training_raises_heldout_reward_beyond_chance(ray_local, model_cache: Path,
                                                      tmp_path: Path) -> None:
    cfg = ExperimentConfig.model_validate({
        "model": {"source": "bundled", "name": "smollm2-135m-instruct",
                  "cache_dir": str(model_cache)},
        "data": {"fewshot": 1, "heldout_size": 64, "synthetic": {"num_problems": 500}},
        "algorithm": {"modulation": "linear", "alpha": 0.5, "group_size": 4,
                      "clustering": "exact"},
        "train": {"steps": STEPS, "prompts_per_step": 8, "lr": 3e-5, "micro_batch_size": 8,
                  "checkpoint_every": 0, "seed": 0},
        "rollout": {"engine": "hf", "max_new_tokens": 40, "temperature": 1.0},
        "learner": {"num_ranks": 1, "zero_stage": 2},
        "eval": {"benchmarks": ["heldout"], "every_steps": 0, "samples": 4,
                 "temperature": 1.0, "max_new_tokens": 40},
        "tracking": {"mlflow_uri": None},
    })
    t0 = time.monotonic()
    reports: dict[int, dict] = {}
    TrialRunner(cfg, tmp_path, report=lambda s, m: reports.__setitem__(s, m)).run()
    minutes = (time.monotonic() - t0) / 60

    before = _correct_per_problem(tmp_path / "eval" / "samples_step_000000.jsonl")
    after = _correct_per_problem(tmp_path / "eval" / f"samples_step_{STEPS:06d}.jsonl")
    assert before.keys() == after.keys() and len(before) == 64
    diffs = [after[i] - before[i] for i in before]
    up, down = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    p = sign_flip_p(diffs)
    mean_before = reports[0]["eval/heldout/pass_at_1"]
    mean_after = reports[STEPS]["eval/heldout/pass_at_1"]
    summary = (f"held-out reward {mean_before:.3f} -> {mean_after:.3f}; {up} problems up, "
               f"{down} down, sign-flip test p = {p:.2g}; {minutes:.1f} min")
    print(summary)
    assert mean_after >= mean_before + 0.05, summary
    assert p < 0.05, summary
