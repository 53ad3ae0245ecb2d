"""A trial resumes through the real runtime (Ray actors, DeepSpeed ranks) from the newest complete
checkpoint when the newest one is damaged, and its learners refuse a checkpoint another user
owns unless the config trusts it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from seedgrpo.config import ExperimentConfig
from seedgrpo.models.checkpoint_files import complete_steps
from seedgrpo.runtime.trial import TrainingFailed, TrainingLoop

from .conftest import tiny_config

NOBODY = 65534


def _runner(cache: Path, out: Path, steps: int, **train) -> TrainingLoop:
    cfg = ExperimentConfig.model_validate(tiny_config(
        str(cache), rollout={"engine": "hf", "max_new_tokens": 6},
        train={"steps": steps, "checkpoint_every": 1, "keep_checkpoints": 2, **train},
        eval={"every_steps": 0, "before_training": False, "max_new_tokens": 4}))
    runner = TrainingLoop(cfg, out)
    runner.reports = []
    runner.report = lambda step, metrics: runner.reports.append(step)
    return runner


@pytest.mark.slow  # about 2.5 min on 2 CPUs: three tiny trials with two DeepSpeed ranks
def test_a_torn_trainer_state_resumes_from_the_checkpoint_before(ray_local, model_cache: Path,
                                                                 tmp_path: Path,
                                                                 caplog) -> None:
    _runner(model_cache, tmp_path, steps=2).run()
    root = tmp_path / "checkpoints"
    assert complete_steps(root) == [1, 2]
    state = root / "trainer_state_000002.json"
    state.write_text(state.read_text()[:20])  # torn, as a power cut could leave it before
    (root / "latest").write_text("")

    if os.getuid() == 0:  # only root can give the checkpoint to another user
        for path in (root, *root.rglob("*")):
            os.chown(path, NOBODY, NOBODY)
        with pytest.raises(TrainingFailed, match=f"owned by uid {NOBODY}.*trust_checkpoint_owner"):
            _runner(model_cache, tmp_path, steps=3).run()
        trust = {"trust_checkpoint_owner": True}
    else:
        trust = {}

    resumed = _runner(model_cache, tmp_path, steps=3, **trust)
    with caplog.at_level(logging.WARNING, logger="seedgrpo.models.checkpoint_files"):
        resumed.run()
    assert resumed.reports == [2, 3]  # step 2 redone from the checkpoint at step 1
    assert "resuming from step_000001, the newest complete checkpoint" in caplog.text
    assert (root / "latest").read_text() == "step_000003"
    assert complete_steps(root) == [2, 3]  # step 1 pruned (keep 2), step 2 whole again
