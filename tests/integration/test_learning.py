"""End-to-end learning check: SEED-GRPO on the bundled SmolLM2-135M, synthetic arithmetic.

Greedy answers on the same held-out problems before and after training form pairs. Under "no
effect", a problem that changed from wrong to right is as likely as one that changed from right
to wrong, so with n discordant pairs the count b of wrong->right is Binomial(n, 1/2). The test
requires the exact one-sided p = P(X >= b) below 0.01 (McNemar's exact test) and a net gain.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from seedgrpo.config import ExperimentConfig
from seedgrpo.runtime.trial import TrialRunner

pytestmark = pytest.mark.slow

STEPS = 12


def sign_test_p(b: int, c: int) -> float:
    """One-sided exact p-value of b successes among b + c fair coin flips.

    >>> round(sign_test_p(8, 0), 5)  # 8 of 8: (1/2)^8
    0.00391
    """
    n = b + c
    return sum(math.comb(n, k) for k in range(b, n + 1)) / 2**n


def _correct(path: Path) -> dict[str, bool]:
    return {row["id"]: row["correct"] for row in map(json.loads, path.read_text().splitlines())}


def test_training_raises_heldout_accuracy(ray_local, model_cache: Path, tmp_path: Path) -> None:
    cfg = ExperimentConfig.model_validate({
        "model": {"source": "bundled", "name": "smollm2-135m-instruct",
                  "cache_dir": str(model_cache)},
        "data": {"fewshot": 1, "heldout_size": 64, "synthetic": {"num_problems": 500}},
        "algorithm": {"modulation": "linear", "alpha": 0.5, "group_size": 4,
                      "clustering": "exact"},
        "train": {"steps": STEPS, "prompts_per_step": 8, "lr": 2e-5, "micro_batch_size": 8,
                  "checkpoint_every": 0},
        "rollout": {"engine": "vllm", "max_new_tokens": 48},
        "learner": {"num_ranks": 1, "zero_stage": 2},
        "eval": {"every_steps": 0, "limit": 64, "max_new_tokens": 48},
        "tracking": {"mlflow_uri": None},
    })
    TrialRunner(cfg, tmp_path).run()
    before = _correct(tmp_path / "eval" / "heldout_step_000000.jsonl")
    after = _correct(tmp_path / "eval" / f"heldout_step_{STEPS:06d}.jsonl")
    assert before.keys() == after.keys() and len(before) == 64
    gained = sum(after[k] and not before[k] for k in before)
    lost = sum(before[k] and not after[k] for k in before)
    p = sign_test_p(gained, lost)
    summary = (f"held-out greedy pass@1 {sum(before.values())}/64 -> {sum(after.values())}/64; "
               f"{gained} gained, {lost} lost, one-sided p = {p:.2g}")
    print(summary)
    assert gained > lost and p < 0.01, summary
