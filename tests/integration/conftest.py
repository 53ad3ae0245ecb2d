"""A local Ray for the integration tests: started once, stopped at the end, nothing else touched."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_local():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def tiny_config(cache: str, **sections) -> dict:
    """A 3-step trial on the tiny model: 2 prompts x G 4, 2 learner ranks."""
    base = {
        "model": {"source": "tiny-random", "name": "tiny-llama", "cache_dir": cache},
        "data": {"heldout_size": 4, "fewshot": 1, "synthetic": {"num_problems": 64}},
        "algorithm": {"group_size": 4, "alpha": 0.5, "clustering": "exact"},
        "train": {"steps": 3, "prompts_per_step": 2, "lr": 1e-3, "micro_batch_size": 2,
                  "checkpoint_every": 2},
        "rollout": {"engine": "hf", "max_new_tokens": 12},
        "learner": {"num_ranks": 2, "zero_stage": 2, "timeout_s": 300},
        "eval": {"every_steps": 2, "max_new_tokens": 8},
        "tracking": {"mlflow_uri": None},
    }
    for section, values in sections.items():
        base[section] = {**base[section], **values}
    return base
