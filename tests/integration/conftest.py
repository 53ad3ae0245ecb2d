"""A local Ray for the integration tests: started once, stopped at the end, nothing else touched."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """Ray started as seedgrpo-train starts it, with 4 logical CPUs whatever the machine has."""
    import ray

    from seedgrpo.runtime.local_ray import start_local_ray

    start_local_ray(num_cpus=4)
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
        "learner": {"num_ranks": 2, "zero_stage": 2},
        "resources": {"call_timeout_s": 300},
        "eval": {"every_steps": 2, "max_new_tokens": 8},
        "tracking": {"mlflow_uri": None},
    }
    for section, values in sections.items():
        base[section] = {**base[section], **values}
    return base


def run_tiny_trial(cache: Path, out: Path, *, actors=None, report=None, rollout=None,
                   train=None):
    """A 4-step tiny trial (checkpoints at 2 and 4, HF rollouts, no evaluation) on ``actors``
    when given; ``runner.reports`` keeps every step's metrics (``report`` also sees them, e.g.
    to interrupt) and the runner keeps its actors for the next trial."""
    from seedgrpo.config.schema import ExperimentConfig
    from seedgrpo.runtime.trial import TrainingLoop

    cfg = ExperimentConfig.model_validate(tiny_config(
        str(cache), rollout={"engine": "hf", "max_new_tokens": 6, **(rollout or {})},
        train={"steps": 4, "checkpoint_every": 2, **(train or {})},
        eval={"every_steps": 0, "before_training": False, "max_new_tokens": 4}))
    runner = TrainingLoop(cfg, out, actors=actors)
    runner.reports = {}

    def keep(step: int, metrics: dict) -> None:
        runner.reports[step] = metrics
        if report is not None:
            report(step, metrics)

    runner.report = keep
    runner.run(keep_actors=True)
    return runner
